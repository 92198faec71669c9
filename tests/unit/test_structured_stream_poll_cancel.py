"""StructuredStream.receive_obj(timeout=0) cancelled in the very loop pass that decoded a
message: the message (or its error) is kept for the next receive, in order.

The stream is a stand-in whose bytes are all there, so each poll decodes at once; the
cancellation is scheduled right behind the poll's first step, which makes it land after the
inner decode finished and before the poll takes the result.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from pywebtransport.messaging import JSONSerializer, StructuredStream, UnknownMessageTypeError
from pywebtransport.messaging.framing import encode_frame


@dataclass
class Msg:
    n: int


class BufferedStream:
    """Stands in for WebTransportStream: everything was received already; read() never waits."""

    stream_id = 0
    is_closed = False

    def __init__(self, data: bytes) -> None:
        self._buffer = bytearray(data)

    async def read(self, max_bytes: int = -1) -> bytes:
        size = len(self._buffer) if max_bytes < 0 else max_bytes
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _frame(type_id: int, obj: Any) -> bytes:
    return encode_frame(type_id, JSONSerializer().serialize(obj))


def _structured(data: bytes) -> StructuredStream:
    return StructuredStream(stream=BufferedStream(data), serializer=JSONSerializer(),  # type: ignore[arg-type]
                            registry={1: Msg})


async def _poll_cancelled_in_the_same_pass(typed: StructuredStream) -> None:
    """receive_obj(timeout=0), cancelled as a TaskGroup sibling or an expiring timeout would."""
    poller = asyncio.ensure_future(typed.receive_obj(timeout=0))

    async def cancel() -> None:
        poller.cancel()

    # Ready queue: [poller's first step, cancel]. The poller schedules its inner decode and
    # yields; cancel() runs; the inner decode finishes a whole message; the poller resumes
    # cancelled.
    canceller = asyncio.ensure_future(cancel())
    with pytest.raises(asyncio.CancelledError):
        await poller
    await canceller


async def test_a_poll_cancelled_after_decoding_keeps_the_message_for_the_next_receive() -> None:
    typed = _structured(b"".join(_frame(1, Msg(i)) for i in range(3)))
    await _poll_cancelled_in_the_same_pass(typed)
    assert [await typed.receive_obj(timeout=1) for _ in range(3)] == [Msg(0), Msg(1), Msg(2)]
    assert typed.messages_received == 3


async def test_the_kept_message_comes_first_for_every_way_of_receiving() -> None:
    typed = _structured(b"".join(_frame(1, Msg(i)) for i in range(3)))
    await _poll_cancelled_in_the_same_pass(typed)
    assert await typed.receive_obj(timeout=0) == Msg(0)  # a poll takes it without decoding more
    await _poll_cancelled_in_the_same_pass(typed)
    assert [obj async for obj in typed] == [Msg(1), Msg(2)]  # so does async for, then it ends


async def test_an_error_about_the_message_decoded_for_a_cancelled_poll_is_raised_in_its_turn() -> None:
    typed = _structured(_frame(7, Msg(0)) + _frame(1, Msg(1)))
    await _poll_cancelled_in_the_same_pass(typed)
    with pytest.raises(UnknownMessageTypeError) as info:
        await typed.receive_obj(timeout=1)
    assert info.value.type_id == 7
    assert await typed.receive_obj(timeout=1) == Msg(1)
