"""``session.ready()``: one future settled by whichever comes first (established, rejected or
closed, the timeout), nothing left behind on the session when the wait ends
(pywebtransport/session/lifecycle.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import SessionClosedError, SessionRejectedError
from pywebtransport.exceptions import TimeoutError as WebTransportTimeoutError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.types import SessionState

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


class Pending:
    """A client session the server has not answered yet; ``gate`` decides (None accepts, an
    int rejects with that status)."""

    def __init__(self, session: WebTransportSession, gate: asyncio.Future[int | None]) -> None:
        self.session = session
        self.gate = gate

    def waiters(self) -> tuple[int, int]:
        """Futures waiting on the session's ready and closed latches (the pending
        ``open_session`` call holds one on each)."""
        ready, closed = self.session._ready_event, self.session._closed_event
        return len(ready._futures or ()), len(closed._futures or ())


@asynccontextmanager
async def pending_session(server_config: ServerConfig, client_config: ClientConfig) -> AsyncIterator[Pending]:
    gates: asyncio.Queue[asyncio.Future[int | None]] = asyncio.Queue()

    async def decider(session: WebTransportSession) -> int | None:
        if session.path != "/gated":
            return None
        gate: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        await gates.put(gate)
        return await gate

    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    async with WebTransportServer(config=server_config, handler=handler, decider=decider) as server, \
            WebTransportClient(config=client_config) as client:
        host, port = server.local_address
        first = await client.connect(f"https://{host}:{port}/open")
        connection = first.connection
        assert connection is not None
        opening = asyncio.ensure_future(connection.open_session(path="/gated", authority=f"{host}:{port}",
                                                                timeout=WAIT))
        gate = await asyncio.wait_for(gates.get(), WAIT)  # the server holds the request now
        [session] = [s for s in connection.sessions if s.path == "/gated"]
        assert session.state is SessionState.CONNECTING
        try:
            yield Pending(session, gate)
        finally:
            if not gate.done():
                gate.set_result(None)
            await asyncio.gather(opening, return_exceptions=True)


async def waiting_ready(session: WebTransportSession, timeout: float) -> asyncio.Task[None]:
    """``session.ready(timeout)`` in a task, returned once the task is inside ``ready()`` (its
    flag is set in the same step that enters it)."""
    entered = asyncio.get_running_loop().create_future()

    async def run() -> None:
        entered.set_result(None)
        await session.ready(timeout=timeout)

    task = asyncio.ensure_future(run())
    await asyncio.wait_for(entered, WAIT)
    return task


async def test_ready_returns_once_the_server_accepts(server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with pending_session(server_config, client_config) as pending:
        before = pending.waiters()
        waiting = await waiting_ready(pending.session, WAIT)
        assert not waiting.done()
        pending.gate.set_result(None)
        await asyncio.wait_for(waiting, WAIT)
        assert pending.session.is_ready
        assert pending.waiters() == (0, 0) and before == (1, 1)
        await pending.session.ready(timeout=WAIT)  # established once: at once from now on


async def test_ready_raises_the_rejection(server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with pending_session(server_config, client_config) as pending:
        waiting = await waiting_ready(pending.session, WAIT)
        pending.gate.set_result(403)
        with pytest.raises(SessionRejectedError) as raised:
            await asyncio.wait_for(waiting, WAIT)
        assert raised.value.status_code == 403
        with pytest.raises(SessionRejectedError):  # and again, at once
            await pending.session.ready(timeout=WAIT)


async def test_ready_raises_when_the_session_closes_before_it_was_ready(server_config: ServerConfig,
                                                                        client_config: ClientConfig) -> None:
    async with pending_session(server_config, client_config) as pending:
        waiting = await waiting_ready(pending.session, WAIT)
        await pending.session.close(reason="changed my mind")
        with pytest.raises(SessionClosedError):
            await asyncio.wait_for(waiting, WAIT)
        assert not pending.session.is_ready


async def test_ready_times_out_and_leaves_no_waiter_behind(server_config: ServerConfig,
                                                           client_config: ClientConfig) -> None:
    async with pending_session(server_config, client_config) as pending:
        before = pending.waiters()
        with pytest.raises(WebTransportTimeoutError, match="not ready within"):
            await pending.session.ready(timeout=0.05)
        assert pending.waiters() == before  # the wait that gave up left nothing on the latches
        assert pending.session.state is SessionState.CONNECTING
        pending.gate.set_result(None)  # the session still becomes ready
        await pending.session.ready(timeout=WAIT)


async def test_a_cancelled_ready_leaves_no_waiter_behind(server_config: ServerConfig,
                                                         client_config: ClientConfig) -> None:
    async with pending_session(server_config, client_config) as pending:
        before = pending.waiters()
        waiting = await waiting_ready(pending.session, WAIT)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert pending.waiters() == before
        pending.gate.set_result(None)
        await pending.session.ready(timeout=WAIT)
