"""``drain()`` never spins and never waits for what cannot come: after our FIN it returns,
after a reset it raises, and any number of tasks may wait in it at once.

Each test holds the peer's reads back (so bytes stay unacknowledged past a small window)
and releases them with an event, never with a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import StreamClosedError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportStream
from pywebtransport.utils import SelfSignedCertificate

from .conftest import eventually, running_server

pytestmark = pytest.mark.timeout(60)

WINDOW = 64 * 1024
BURST = 400_000  # far past one window: most of it stays unacknowledged while the peer does not read

Handler = Callable[[WebTransportSession], Awaitable[None]]


def suspended(task: asyncio.Task[None]) -> bool:
    """The task has run up to an ``await`` and is waiting there (not merely scheduled)."""
    return inspect.getcoroutinestate(task.get_coro()) == inspect.CORO_SUSPENDED  # type: ignore[arg-type]


def holding_reads(release: asyncio.Event, *, fin_first: bool = False) -> Handler:
    """A handler that reads nothing of a stream until ``release``, then everything."""

    async def handler(session: WebTransportSession) -> None:
        async for stream in session.incoming_streams():
            if fin_first and isinstance(stream, WebTransportStream):
                await stream.close()  # our FIN at once
            await release.wait()
            await stream.read()
        await session.wait_closed()

    return handler


@contextlib.asynccontextmanager
async def held_session(server_config: ServerConfig, certificate: SelfSignedCertificate, *,
                       fin_first: bool = False) -> AsyncIterator[WebTransportSession]:
    """A session (``WINDOW``-byte stream windows both ways) whose peer reads nothing until the
    block ends."""
    release = asyncio.Event()
    client_config = ClientConfig(server_certificate_hashes=[certificate.sha256], stream_buffer_size=WINDOW)
    async with running_server(server_config.replace(stream_buffer_size=WINDOW),
                              {"/x": holding_reads(release, fin_first=fin_first)}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        try:
            yield await client.connect(f"{base}/x")
        finally:
            release.set()


async def test_drain_after_our_fin_returns_while_bytes_are_unacknowledged(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    """Both directions finished in the engine (our FIN, the peer's FIN unread) with bytes in
    flight: the engine answers a write watch at once, and drain() used to loop on that answer
    forever without letting the event loop run."""
    async with held_session(server_config, certificate, fin_first=True) as session:
        stream = await session.create_bidirectional_stream()
        stream.write(b"x" * BURST)
        await eventually(lambda: stream.at_eof)  # the peer's FIN arrived; nothing read
        await stream.close()
        assert stream.write_buffer_size > WINDOW
        await asyncio.wait_for(stream.drain(), 5)  # nothing left to pace after FIN


async def test_a_task_waiting_in_drain_returns_when_another_sends_fin(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    async with held_session(server_config, certificate) as session:
        for stream in (await session.create_bidirectional_stream(), await session.create_unidirectional_stream()):
            stream.write(b"x" * BURST)
            drainer = asyncio.ensure_future(stream.drain())
            await eventually(lambda: suspended(drainer))  # noqa: B023 - awaited before the loop goes on
            await stream.close()
            await asyncio.wait_for(drainer, 5)
            await asyncio.wait_for(stream.drain(), 5)  # and later calls return at once


async def test_two_tasks_waiting_in_drain_both_return_once_the_peer_reads(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    """One waiter per task: a second drain() used to replace the first one's future, which
    then waited forever (two tasks calling StructuredStream.send_obj do this)."""
    release = asyncio.Event()
    async with running_server(server_config.replace(stream_buffer_size=WINDOW),
                              {"/x": holding_reads(release)}) as (_, base), \
            WebTransportClient(config=ClientConfig(server_certificate_hashes=[certificate.sha256],
                                                   stream_buffer_size=WINDOW)) as client:
        session = await client.connect(f"{base}/x")
        stream = await session.create_bidirectional_stream()

        async def send() -> None:
            stream.write(b"\0" * BURST)
            await stream.drain()

        senders = [asyncio.ensure_future(send()) for _ in range(2)]
        await eventually(lambda: all(suspended(s) for s in senders))
        release.set()  # the peer reads: both writers must come back
        await asyncio.wait_for(asyncio.gather(*senders), 10)
        await stream.close()


async def test_drain_after_a_reset_raises_at_once(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    async with held_session(server_config, certificate) as session:
        for stream in (await session.create_bidirectional_stream(), await session.create_unidirectional_stream()):
            stream.write(b"x" * BURST)
            stream.abort(3)
            with pytest.raises(StreamClosedError):
                await asyncio.wait_for(stream.drain(), 5)


@pytest.mark.parametrize("unidirectional", [True, False], ids=["uni", "bidi"])
async def test_write_buffer_size_counts_what_the_application_wrote_not_the_stream_header(
        server_config: ServerConfig, certificate: SelfSignedCertificate, unidirectional: bool) -> None:
    async with held_session(server_config, certificate) as session:
        stream = await (session.create_unidirectional_stream() if unidirectional
                        else session.create_bidirectional_stream())
        assert stream.write_buffer_size == 0  # QUIC holds the 2-3 byte header, which nobody wrote
        stream.write(b"a" * 1000)
        assert stream.write_buffer_size == 1000
