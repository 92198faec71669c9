"""``client.close()`` under a pending ``connect()`` fails it with ClientError ("the client was
closed while connecting"), whatever stage the connect had reached, as its retry path always
did: not with a HandshakeError blaming the peer for a close made here, nor with the session's
SessionClosedError.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import ClientError, HandshakeError, SessionClosedError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0  # bounds a hang only
#: Far longer than any test here: a connect that ends did not wait out its timeout.
LONG = 30.0


class _Listener(asyncio.DatagramProtocol):
    """A server that stopped answering: reads everything, answers nothing, and says when the
    first datagram (the client's Initial: the connect is under way) came."""

    def __init__(self) -> None:
        self.heard = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.heard.set()


@asynccontextmanager
async def silent_peer() -> AsyncIterator[tuple[_Listener, str]]:
    listener = _Listener()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: listener, local_addr=("127.0.0.1", 0))
    try:
        yield listener, f"https://127.0.0.1:{transport.get_extra_info('sockname')[1]}/x"
    finally:
        transport.close()


@asynccontextmanager
async def undecided_server(server_config: ServerConfig) -> AsyncIterator[tuple[asyncio.Event, str]]:
    """A server whose decider never answers the CONNECT request; yields an event set once it
    has been asked, and the URL."""
    asked = asyncio.Event()
    never = asyncio.Event()

    async def decider(session: WebTransportSession) -> int | None:
        asked.set()
        await never.wait()
        return None

    async def handler(session: WebTransportSession) -> None:  # pragma: no cover - never accepted
        await session.wait_closed()

    async with WebTransportServer(config=server_config, handler=handler, decider=decider) as server:
        host, port = server.local_address
        yield asked, f"https://{host}:{port}/waiting"


async def test_closing_the_client_during_the_handshake_fails_connect_with_client_error(
        client_config: ClientConfig) -> None:
    async with silent_peer() as (peer, url):
        client = WebTransportClient(config=client_config.replace(connect_timeout=LONG))
        connecting = asyncio.ensure_future(client.connect(url))
        await asyncio.wait_for(peer.heard.wait(), WAIT)
        await client.close()
        with pytest.raises(ClientError, match="the client was closed while connecting") as info:
            await asyncio.wait_for(connecting, WAIT)
    assert not isinstance(info.value, HandshakeError)
    assert isinstance(info.value.__cause__, HandshakeError)  # what the closed connection said
    assert client.connections == []


async def test_closing_the_client_while_the_connect_request_is_unanswered_fails_connect_with_client_error(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with undecided_server(server_config) as (asked, url):
        client = WebTransportClient(config=client_config.replace(connect_timeout=LONG))
        connecting = asyncio.ensure_future(client.connect(url))
        await asyncio.wait_for(asked.wait(), WAIT)
        await client.close()
        with pytest.raises(ClientError, match="the client was closed while connecting") as info:
            await asyncio.wait_for(connecting, WAIT)
    assert isinstance(info.value.__cause__, SessionClosedError)


async def test_closing_the_client_during_the_first_attempt_of_sessions_raises_client_error(
        client_config: ClientConfig) -> None:
    async with silent_peer() as (peer, url):
        client = WebTransportClient(config=client_config.replace(connect_timeout=LONG))
        sessions = client.sessions(url)
        first = asyncio.ensure_future(sessions.__anext__())
        await asyncio.wait_for(peer.heard.wait(), WAIT)
        await client.close()
        with pytest.raises(ClientError, match="the client was closed while connecting"):
            await asyncio.wait_for(first, WAIT)
        assert sessions.attempts == 1  # not retried: a closed client cannot connect
        with pytest.raises(StopAsyncIteration):
            await sessions.__anext__()
