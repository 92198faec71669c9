"""The receive buffer of a stream (pywebtransport/stream_reader.py) against a recording
port: bytes come out whole and in order however they were cut, and the credit handed back
adds up to exactly what arrived (no byte counted twice, none forgotten)."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace
from typing import Any

from pywebtransport._protocol import events as ev
from pywebtransport.stream import WebTransportReceiveStream

STREAM_ID = 3


class RecordingPort:
    """The few SessionPort members a receive stream uses, recording the credit it returns."""

    session_id = 0

    def __init__(self) -> None:
        self.config = SimpleNamespace(read_timeout=None)
        self.consumed = 0

    def stream_consume(self, stream_id: int, amount: int) -> None:
        assert stream_id == STREAM_ID and amount > 0
        self.consumed += amount

    def stream_finished(self, stream_id: int) -> None:
        pass

    def closed_error(self, message: str) -> None:
        return None


def receiving(port: RecordingPort) -> WebTransportReceiveStream:
    session: Any = port
    return WebTransportReceiveStream(session=session, stream_id=STREAM_ID)


def arrive(stream: WebTransportReceiveStream, data: bytes, *, fin: bool = False) -> None:
    stream.handle_event(ev.StreamDataReceived(0, STREAM_ID, data, fin))


async def test_one_large_chunk_read_in_small_records_comes_out_whole_and_credited_once() -> None:
    """QUIC hands a whole window over as one chunk when a gap fills; small reads of it are
    cut off the front in place (they used to copy the rest of the chunk every time)."""
    port = RecordingPort()
    stream = receiving(port)
    data = os.urandom(1 << 20)
    arrive(stream, data, fin=True)
    records = [await stream.readexactly(16) for _ in range(len(data) // 16)]
    assert b"".join(records) == data
    assert port.consumed == len(data)
    assert await stream.read() == b"" and stream.at_eof


async def test_readuntil_credits_what_it_holds_once_and_a_later_take_adds_nothing() -> None:
    port = RecordingPort()
    stream = receiving(port)
    arrive(stream, b"a" * 5000)
    line = stream.readline()
    waiting_on = line.send(None)  # runs readline up to its wait for more bytes
    assert isinstance(waiting_on, asyncio.Future) and not waiting_on.done()
    assert port.consumed == 5000  # credit for the partial line it holds
    arrive(stream, b"b" * 3000 + b"\ntail")
    assert waiting_on.done()
    try:
        line.send(None)
    except StopIteration as done:
        assert done.value == b"a" * 5000 + b"b" * 3000 + b"\n"
    else:
        raise AssertionError("readline did not return once the separator came")
    assert port.consumed == 5000 + 3001  # the held part is not credited twice
    assert await stream.readexactly(4) == b"tail"
    assert port.consumed == 5000 + 3001 + 4  # every byte exactly once
