"""Reads are cancel-safe: bytes leave the buffer only when a read returns them.

``readexactly(n)`` used to take whatever had arrived and then wait for the rest, holding the
first part in a local list; cancelled there (``asyncio.wait_for``, ``asyncio.timeout``, a
task cancelled) or stopped by ``read_timeout``, it dropped that part and the stream's framing
was lost. ``read()`` until EOF did the same, and two tasks in ``readexactly`` got pieces of
each other's data. As asyncio.StreamReader does, a read now takes nothing until it can
return (found by an API bug hunt).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import TimeoutError as ReadTimeoutError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportStream
from pywebtransport.utils import SelfSignedCertificate

from .conftest import eventually, running_server

pytestmark = pytest.mark.timeout(60)

WINDOW = 64 * 1024


def suspended(task: asyncio.Task[bytes]) -> bool:
    """The task has run up to an ``await`` and waits there."""
    return inspect.getcoroutinestate(task.get_coro()) == inspect.CORO_SUSPENDED  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def stream_pair(server_config: ServerConfig, certificate: SelfSignedCertificate,
                      **client_options: float | int) -> AsyncIterator[tuple[WebTransportStream, WebTransportStream]]:
    """Our client's bidirectional stream and the server's end of it (``WINDOW``-byte windows)."""
    peers: asyncio.Queue[WebTransportStream] = asyncio.Queue()

    async def handler(session: WebTransportSession) -> None:
        async for stream in session.incoming_bidirectional_streams():
            await peers.put(stream)

    config = ClientConfig(server_certificate_hashes=[certificate.sha256], stream_buffer_size=WINDOW,
                          **client_options)  # type: ignore[arg-type]
    async with running_server(server_config.replace(stream_buffer_size=WINDOW), {"/r": handler}) as (_, base), \
            WebTransportClient(config=config) as client:
        session = await client.connect(f"{base}/r")
        stream = await session.create_bidirectional_stream()
        stream.write(b"!")
        await stream.drain()
        peer = await asyncio.wait_for(peers.get(), 10)
        assert await peer.readexactly(1) == b"!"
        yield stream, peer


async def _waiting_readers(*reads: Coroutine[Any, Any, bytes]) -> list[asyncio.Task[bytes]]:
    """A task per read, returned once each one waits inside its read."""
    tasks = [asyncio.ensure_future(read) for read in reads]
    for task in tasks:
        await eventually(lambda task=task: suspended(task))  # type: ignore[misc]
    return tasks


async def _cancel_while_waiting(task: asyncio.Task[bytes]) -> None:
    await eventually(lambda: suspended(task))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancelled_readexactly_leaves_what_arrived_for_the_next_read(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    async with stream_pair(server_config, certificate) as (stream, peer):
        peer.write(b"HELLO")
        await eventually(lambda: stream.bytes_received >= 5)  # 5 of the 10 are here
        await _cancel_while_waiting(asyncio.ensure_future(stream.readexactly(10)))
        peer.write(b"WORLD")
        await peer.close()
        assert await asyncio.wait_for(stream.readexactly(10), 10) == b"HELLOWORLD"
        assert await asyncio.wait_for(stream.read(), 10) == b""


async def test_a_readexactly_stopped_by_the_read_timeout_can_be_retried(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    async with stream_pair(server_config, certificate, read_timeout=0.3) as (stream, peer):
        peer.write(b"HELLO")
        await eventually(lambda: stream.bytes_received >= 5)
        with pytest.raises(ReadTimeoutError):
            await stream.readexactly(10)
        peer.write(b"WORLD")
        assert await asyncio.wait_for(stream.readexactly(10), 10) == b"HELLOWORLD"


async def test_a_cancelled_read_to_eof_leaves_what_arrived_for_the_next_read(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    async with stream_pair(server_config, certificate) as (stream, peer):
        peer.write(b"HELLO")
        await eventually(lambda: stream.bytes_received >= 5)
        await _cancel_while_waiting(asyncio.ensure_future(stream.read()))
        peer.write(b"WORLD")
        await peer.close()
        assert await asyncio.wait_for(stream.read(), 10) == b"HELLOWORLD"


async def test_tasks_reading_exactly_at_once_each_get_whole_reads(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    async with stream_pair(server_config, certificate) as (stream, peer):
        readers = await _waiting_readers(stream.readexactly(6), stream.readexactly(6))
        for i, piece in enumerate((b"111", b"222", b"333", b"444")):
            peer.write(piece)
            await eventually(lambda i=i: stream.bytes_received >= 3 * (i + 1))  # type: ignore[misc]
        got = await asyncio.wait_for(asyncio.gather(*readers), 10)
        assert sorted(got) == [b"111222", b"333444"]


async def test_tasks_reading_lines_at_once_each_get_one_line(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    # A readline() that waited while another task took a line resumed its search past a
    # separator that had moved forward, and returned two lines as one (found by a bug hunt).
    async with stream_pair(server_config, certificate) as (stream, peer):
        first, second = await _waiting_readers(stream.readline(), stream.readline())
        peer.write(b"abc")  # searched by both, no separator yet
        await eventually(lambda: stream.bytes_received >= 3)
        peer.write(b"\nx\n")
        lines = await asyncio.wait_for(asyncio.gather(first, second), 10)
        assert sorted(lines) == [b"abc\n", b"x\n"]  # whichever task woke first


async def test_a_line_reader_wakes_for_a_separator_that_arrives_after_another_task_read(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    # Bytes another task takes shrink the buffer: a wait for "more than searched" would then
    # sleep through the separator's arrival. Arrivals are what end the wait.
    async with stream_pair(server_config, certificate) as (stream, peer):
        line = asyncio.ensure_future(stream.readline())
        await eventually(lambda: suspended(line))
        peer.write(b"abcd")
        await eventually(lambda: stream.bytes_received >= 4)
        assert await asyncio.wait_for(stream.readexactly(3), 10) == b"abc"  # another task's read
        peer.write(b"\n")
        assert await asyncio.wait_for(line, 10) == b"d\n"


async def test_readexactly_of_more_than_the_stream_window_completes(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    """Nothing is taken until all of it is there, so the held bytes' credit must go back while
    it waits, or the peer could never send past one window."""
    async with stream_pair(server_config, certificate) as (stream, peer):
        payload = bytes(range(256)) * (3 * WINDOW // 256)
        sending = asyncio.ensure_future(peer.write_all(payload, end_stream=True))
        assert await asyncio.wait_for(stream.readexactly(len(payload)), 20) == payload
        await asyncio.wait_for(sending, 10)


async def test_a_reader_that_another_task_beat_to_the_bytes_keeps_waiting(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    # Two tasks in read(n): the one that woke for bytes the other had taken returned b"" (which
    # means EOF) with the stream still open, and ``async for`` over it ended early.
    async with stream_pair(server_config, certificate) as (stream, peer):
        readers = await _waiting_readers(stream.read(100), stream.read(100))
        peer.write(b"first")
        done, _ = await asyncio.wait(readers, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert [task.result() for task in done] == [b"first"]  # one reader; the other still waits
        assert not stream.at_eof
        peer.write(b"second")
        await peer.close()
        assert sorted(await asyncio.wait_for(asyncio.gather(*readers), 10)) == [b"first", b"second"]
