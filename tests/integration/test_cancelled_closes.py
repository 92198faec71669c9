"""Cancellation cleans up: a cancelled ``session.close()`` still closes the session, and a
cancelled ``connection.open_session()`` leaves no session behind.

``session.close()`` waits (the linger, up to ``close_timeout``) for finished streams to be
acknowledged; a caller that stops waiting (``asyncio.wait_for``, a cancelled task) must not
leave the session open on both ends. A session requested by an ``open_session()`` whose caller
gave up has no owner: it must not become established and keep the connection alive.
"""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.manager import SessionManager
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.types import SessionState

from .conftest import running_server

pytestmark = pytest.mark.timeout(60)

#: More than the server grants a stream before it reads: the FIN after it cannot be
#: acknowledged while the server does not read, so close() lingers its whole close_timeout.
UNREAD = b"y" * (3 << 20)


@pytest.fixture
def lingering_config(client_config: ClientConfig) -> ClientConfig:
    """A client whose session close lingers long (30 s) for unacknowledged finished streams."""
    return client_config.replace(close_timeout=30.0)


class Holder:
    """Server side: keeps every session unread and reports how each one closed."""

    def __init__(self) -> None:
        self.sessions: asyncio.Queue[WebTransportSession] = asyncio.Queue()
        self.closed: asyncio.Queue[tuple[int | None, str | None]] = asyncio.Queue()

    async def handler(self, session: WebTransportSession) -> None:
        await self.sessions.put(session)
        await session.wait_closed()
        await self.closed.put((session.close_code, session.close_reason))


async def _lingering_session(client: WebTransportClient, base: str) -> WebTransportSession:
    """A session with a finished stream the server never reads: its close lingers."""
    session = await client.connect(f"{base}/h")
    stream = await session.create_unidirectional_stream()
    stream.write(UNREAD)
    await stream.close()
    return session


@pytest.mark.parametrize("close_connection", [False, True], ids=["session", "close_connection"])
async def test_a_cancelled_session_close_still_closes_the_session(server_config: ServerConfig,
                                                                  lingering_config: ClientConfig,
                                                                  close_connection: bool) -> None:
    holder = Holder()
    async with running_server(server_config, {"/h": holder.handler}) as (_, base), \
            WebTransportClient(config=lingering_config) as client:
        session = await _lingering_session(client, base)
        connection = session.connection
        assert connection is not None
        closing = asyncio.ensure_future(session.close(error_code=9, reason="cut short",
                                                      close_connection=close_connection))
        # The caller gives up long before the 30 s linger is over.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(closing, 0.2)
        assert closing.cancelled()
        # Closed at once, not after the linger: the peer is told with the code and reason.
        assert session.is_closed and session.state is SessionState.CLOSED
        assert session.close_code == 9
        assert await asyncio.wait_for(holder.closed.get(), 10) == (9, "cut short")
        if close_connection:
            await asyncio.wait_for(connection.wait_closed(), 10)
        await session.close()  # a later close returns at once


async def test_a_session_left_by_a_cancelled_task_in_async_with_is_closed(server_config: ServerConfig,
                                                                          lingering_config: ClientConfig) -> None:
    holder = Holder()
    async with running_server(server_config, {"/h": holder.handler}) as (_, base), \
            WebTransportClient(config=lingering_config) as client:
        session = await _lingering_session(client, base)
        in_exit = asyncio.Event()

        async def use() -> None:
            async with session:
                in_exit.set()  # the exit's close() runs on, up to its linger, before the test does

        task = asyncio.ensure_future(use())
        # This test runs again only once the task is suspended: in the close's linger.
        await asyncio.wait_for(in_exit.wait(), 10)
        assert not task.done() and not session.is_closed
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert session.is_closed
        assert await asyncio.wait_for(holder.closed.get(), 10) == (0, "")


async def test_a_cancelled_session_manager_shutdown_still_closes_its_sessions(server_config: ServerConfig,
                                                                              lingering_config: ClientConfig) -> None:
    holder = Holder()
    async with running_server(server_config, {"/h": holder.handler}) as (_, base), \
            WebTransportClient(config=lingering_config) as client:
        sessions = [await _lingering_session(client, base) for _ in range(2)]
        async with SessionManager(max_sessions=10) as manager:
            for session in sessions:
                await manager.add_session(session=session)
            with pytest.raises(asyncio.TimeoutError):  # the caller bounds the shutdown
                await asyncio.wait_for(manager.shutdown(), 0.2)
            assert all(session.is_closed for session in sessions)
        closes = [await asyncio.wait_for(holder.closed.get(), 10) for _ in sessions]
        assert closes == [(0, "session manager shutting down")] * 2


async def test_a_cancelled_open_session_leaves_no_session_behind(server_config: ServerConfig,
                                                                 client: WebTransportClient) -> None:
    gate = asyncio.Event()
    slow_sessions: asyncio.Queue[WebTransportSession] = asyncio.Queue()
    handled: list[str] = []

    async def decider(session: WebTransportSession) -> bool:
        if session.path == "/slow":
            await slow_sessions.put(session)
            await gate.wait()  # the answer comes only after the client gave up
        return True

    async def handler(session: WebTransportSession) -> None:
        handled.append(session.path)
        await session.wait_closed()

    server = WebTransportServer(config=server_config, decider=decider)
    server.add_route("/fast", handler)
    server.add_route("/slow", handler)
    async with server:
        host, port = server.local_address
        first = await client.connect(f"https://{host}:{port}/fast")
        connection = first.connection
        assert connection is not None
        requested = []
        for _ in range(3):
            opening = asyncio.ensure_future(connection.open_session(path="/slow", authority=f"{host}:{port}"))
            requested.append(await asyncio.wait_for(slow_sessions.get(), 10))  # the server waits to decide
            opening.cancel()  # the caller gives up before the answer
            with pytest.raises(asyncio.CancelledError):
                await opening
        # Closed at once on the client: nothing but the user's own session is left.
        assert connection.sessions == [first]
        # The server hears of each close and never runs a handler for them.
        await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in requested)), 10)
        gate.set()
        # The client closes its connection after its last session: nothing keeps it alive.
        await first.close()
        await asyncio.wait_for(connection.wait_closed(), 10)
        assert handled == ["/fast"]
