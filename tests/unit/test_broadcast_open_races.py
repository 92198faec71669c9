"""StreamBroadcaster: a stream that opens after close() or discard() is finished, never kept.

Sessions here are stand-ins whose stream opening waits on a gate the test controls, so each
race happens at exactly the point under test.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pywebtransport.broadcast import StreamBroadcaster
from pywebtransport.exceptions import StreamClosedError


class FakeSendStream:
    """Records what was written and whether it was finished (FIN)."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.write_buffer_size = 0
        self.written: list[bytes] = []
        self.finished = False

    def write(self, data: bytes) -> None:
        if self.finished:
            raise StreamClosedError(f"stream {self.stream_id} is closed for writing")
        self.written.append(bytes(data))

    async def close(self) -> None:
        self.finished = True


class GatedSession:
    """A session whose ``create_unidirectional_stream`` waits until ``gate`` is set; ``opening``
    is set once a caller is waiting there."""

    def __init__(self, session_id: int, *, gated: bool = True) -> None:
        self.session_id = session_id
        self.is_closed = False
        self.close_code = None
        self.close_reason = None
        self.opening = asyncio.Event()
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.streams: list[FakeSendStream] = []

    async def create_unidirectional_stream(self, *, timeout: float | None = None) -> FakeSendStream:
        self.opening.set()
        await self.gate.wait()
        stream = FakeSendStream(len(self.streams) * 4 + 3)
        self.streams.append(stream)
        return stream


def sessions(*items: GatedSession) -> Any:
    return list(items)


async def test_a_stream_opened_after_close_is_finished_and_not_kept() -> None:
    slow, other = GatedSession(1), GatedSession(2, gated=False)
    broadcaster = StreamBroadcaster()
    sending = asyncio.ensure_future(broadcaster.send(sessions(slow, other), b"m1"))
    await slow.opening.wait()  # the send waits on slow's stream now
    await broadcaster.close()
    slow.gate.set()
    result = await sending

    assert broadcaster.stream_count == 0 and broadcaster.stream_for(slow) is None  # type: ignore[arg-type]
    (stream,) = slow.streams
    assert stream.finished and stream.written == []  # FIN at once, the message not written
    assert other.streams == []  # the session after it gets no stream opened after close()
    assert (result.sent, result.dropped, result.failed) == (0, 0, 2)
    assert all(isinstance(error, RuntimeError) and "closed" in str(error) for _, error in result.failures)


async def test_a_stream_opened_after_discard_of_its_session_is_finished_and_not_kept() -> None:
    slow, other = GatedSession(1), GatedSession(2, gated=False)
    broadcaster = StreamBroadcaster()
    sending = asyncio.ensure_future(broadcaster.send(sessions(slow, other), b"m1"))
    await slow.opening.wait()
    await broadcaster.discard(slow)  # type: ignore[arg-type]
    slow.gate.set()
    result = await sending

    (stream,) = slow.streams
    assert stream.finished and stream.written == []
    assert broadcaster.stream_for(slow) is None  # type: ignore[arg-type]
    assert broadcaster.stream_for(other) is other.streams[0]  # type: ignore[arg-type]
    assert other.streams[0].written == [b"m1"] and not other.streams[0].finished
    assert (result.sent, result.failed) == (1, 1)
    ((failed, error),) = result.failures
    assert failed is slow and "discard" in str(error)

    # A later send to it opens a new stream, as for any session never broadcast to.
    assert (await broadcaster.send(sessions(slow), b"m2")).sent == 1
    assert slow.streams[1].written == [b"m2"] and broadcaster.stream_for(slow) is slow.streams[1]  # type: ignore[arg-type]
    await broadcaster.close()
    assert all(s.finished for s in slow.streams + other.streams)


async def test_concurrent_sends_to_a_new_session_keep_one_stream_and_finish_the_other() -> None:
    session = GatedSession(1)
    broadcaster = StreamBroadcaster()
    first = asyncio.ensure_future(broadcaster.send(sessions(session), b"a"))
    second = asyncio.ensure_future(broadcaster.send(sessions(session), b"b"))
    await session.opening.wait()
    session.gate.set()
    results = await asyncio.gather(first, second)

    assert [r.sent for r in results] == [1, 1]
    kept = broadcaster.stream_for(session)  # type: ignore[arg-type]
    assert broadcaster.stream_count == 1 and kept is not None
    assert sorted(kept.written) == [b"a", b"b"]  # type: ignore[attr-defined]
    extra = [s for s in session.streams if s is not kept]
    assert len(extra) == 1 and extra[0].finished and extra[0].written == []
    await broadcaster.close()
    assert all(s.finished for s in session.streams)
