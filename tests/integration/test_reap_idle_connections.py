"""At ``max_connections``, connections without a session are reaped before a new client is
refused (over real UDP on loopback): the one idle the longest, once idle longer than
``pre_session_grace``, gets CONNECTION_CLOSE with a clear reason and the new client is
admitted; a connection carrying a session, or one younger than the grace, is never reaped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

import pywebtransport.server.server as server_module
from pywebtransport._io import UdpEndpoint
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection import WebTransportConnection, build_quic_configuration
from pywebtransport.exceptions import ConnectionRefusedError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession

from .conftest import running_server
from .peers import RawPeer

pytestmark = pytest.mark.timeout(90)

WAIT = 10.0


def with_grace(config: ServerConfig, grace: float) -> ServerConfig:
    """``config`` with ``pre_session_grace`` set."""
    return config.replace(pre_session_grace=grace)


@asynccontextmanager
async def started(config: ServerConfig) -> AsyncIterator[tuple[WebTransportServer, str]]:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    async with running_server(config, {"/echo": handler}) as (server, base):
        yield server, base


@asynccontextmanager
async def sessionless(server: WebTransportServer, config: ClientConfig) -> AsyncIterator[WebTransportConnection]:
    """A client connection with HTTP/3 up and no session, ever."""
    endpoint = await UdpEndpoint.open(local_addr=("127.0.0.1", 0), remote_addr=server.local_address)
    connection = WebTransportConnection(config=config, endpoint=endpoint,
                                        quic_configuration=build_quic_configuration(config, server_name="localhost"),
                                        remote_address=server.local_address, owns_endpoint=True)
    endpoint.attach_client(connection)
    connection.connect()
    try:
        await connection.wait_connected(timeout=WAIT)
        yield connection
    finally:
        await connection.close()
        await connection.wait_closing_period(timeout=WAIT)


async def test_an_idle_connection_without_a_session_is_closed_to_admit_a_new_client(
        server_config, client_config) -> None:
    config = with_grace(server_config.replace(max_connections=1), 0.0)
    async with started(config) as (server, base), sessionless(server, client_config) as idle, \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/echo")  # refused without reaping
        assert session.is_ready
        await asyncio.wait_for(idle.wait_closed(), WAIT)  # told by CONNECTION_CLOSE, not its idle timeout
        diagnostics = idle.diagnostics()
        assert diagnostics["close_reason"] == server_module.REAP_REASON
        assert diagnostics["close_code"] == 0x100  # H3_NO_ERROR
        stats = server.get_stats()
        assert (stats["connections_reaped"], stats["connections_refused"], stats["connections"]) == (1, 0, 1)


async def test_the_connection_idle_the_longest_goes_first(server_config, client_config) -> None:
    config = with_grace(server_config.replace(max_connections=2), 0.0)
    async with started(config) as (server, base), sessionless(server, client_config) as older, \
            sessionless(server, client_config) as younger, WebTransportClient(config=client_config) as client:
        await client.connect(f"{base}/echo")
        await asyncio.wait_for(older.wait_closed(), WAIT)
        assert not younger.is_closed
        assert server.get_stats()["connections_reaped"] == 1


async def test_a_connection_with_a_session_is_never_reaped(server_config, client_config) -> None:
    config = with_grace(server_config.replace(max_connections=1), 0.0)
    async with started(config) as (server, base), WebTransportClient(config=client_config) as first, \
            WebTransportClient(config=client_config) as second:
        kept = await first.connect(f"{base}/echo")
        with pytest.raises(ConnectionRefusedError, match="CONNECTION_REFUSED"):  # at once
            await second.connect(f"{base}/echo")
        assert kept.is_ready and not kept.is_closed
        stats = server.get_stats()
        assert (stats["connections_reaped"], stats["connections_refused"]) == (0, 1)


async def test_a_connection_younger_than_the_grace_is_not_reaped(server_config, client_config) -> None:
    config = with_grace(server_config.replace(max_connections=1), 600.0)
    async with started(config) as (server, base), sessionless(server, client_config) as idle, \
            WebTransportClient(config=client_config) as client:
        with pytest.raises(ConnectionRefusedError):
            await client.connect(f"{base}/echo")
        assert not idle.is_closed
        stats = server.get_stats()
        assert (stats["connections_reaped"], stats["connections_refused"]) == (0, 1)


@pytest.fixture
def raw_peer() -> Iterator[list[RawPeer]]:
    peers: list[RawPeer] = []
    yield peers
    for peer in peers:
        peer.close()


async def test_a_handshake_that_stalls_is_reaped_too(server_config, client_config, raw_peer) -> None:
    config = with_grace(server_config.replace(max_connections=1), 0.0)
    async with started(config) as (server, base), WebTransportClient(config=client_config) as client:
        peer = RawPeer(server.local_address)
        raw_peer.append(peer)
        peer.send_initial()
        await peer.receive()  # the server's handshake flight: the connection exists
        (stalled,) = server.connections
        session = await client.connect(f"{base}/echo")
        assert session.is_ready
        await asyncio.wait_for(stalled.wait_closed(), WAIT)
        assert server.get_stats()["connections_reaped"] == 1
