"""How a session's end is reported: ``drain()`` after the close raises the session's
SessionClosedError (code, reason, cause) as every other operation does, not a bare
SessionError; and a server's own refusal of a request is not reported as the peer's doing
(``by_peer`` False in its SESSION_CLOSED; a client learning of the refusal says True)."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.events import Event, EventType
from pywebtransport.exceptions import SessionClosedError, SessionRejectedError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.types import CloseCause
from tests.integration.conftest import running_server

pytestmark = pytest.mark.timeout(60)


async def test_drain_after_close_raises_the_sessions_closed_error(server_config: ServerConfig,
                                                                   client_config: ClientConfig) -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()
        if outcome.done():  # the second session of the test: nothing to report
            return
        try:
            await session.drain()
        except BaseException as exc:  # reported to the test
            outcome.set_result(exc)
        else:
            outcome.set_result(None)

    async with (running_server(server_config, {"/d": handler}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/d")
        # A second session keeps the client's connection open after the first closes.
        other = await session.connection.open_session(path="/d", authority=base.removeprefix("https://"))
        await session.close(error_code=11, reason="done")
        with pytest.raises(SessionClosedError) as client_side:
            await session.drain()
        assert client_side.value.error_code == 11 and client_side.value.cause is CloseCause.LOCAL_CLOSE
        server_side = await asyncio.wait_for(outcome, 10)
        assert isinstance(server_side, SessionClosedError), repr(server_side)
        assert server_side.error_code == 11 and server_side.reason == "done"
        assert server_side.cause is CloseCause.PEER_CLOSE
        await other.close()


async def test_a_servers_own_rejection_is_not_reported_as_the_peers(server_config: ServerConfig,
                                                                     client_config: ClientConfig) -> None:
    closed: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

    async def decider(session: WebTransportSession) -> bool:
        session.events.once(EventType.SESSION_CLOSED, closed.set_result)
        return False

    async def handler(session: WebTransportSession) -> None:  # never runs
        await session.wait_closed()

    server = WebTransportServer(config=server_config, decider=decider)
    server.add_route("/r", handler)
    async with server, WebTransportClient(config=client_config) as client:
        host, port = server.local_address
        with pytest.raises(SessionRejectedError):
            await client.connect(f"https://{host}:{port}/r")
        event = await asyncio.wait_for(closed, 10)
        assert event.data["cause"] is CloseCause.REJECTED
        assert event.data["by_peer"] is False, event.data
