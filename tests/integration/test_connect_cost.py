"""What a connect costs besides QUIC: an IP literal is not sent through the resolver, a name
still is (and a name that does not resolve fails naming it), and the waits of a connect and
of a closed client's socket end on time, on cancellation and on the connection's end."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig
from pywebtransport.connection import WebTransportConnection
from pywebtransport.exceptions import ClientError, ConnectionRefusedError, HandshakeError, TimeoutError
from pywebtransport.server import WebTransportServer
from tests.integration.peers import client_connection
from tests.integration.test_connect_errors import closed_port


class _Resolver:
    """Stands in for the loop's ``getaddrinfo``: records every host asked for and answers
    127.0.0.1 for the names in ``known`` (anything else fails as an unknown name)."""

    def __init__(self, known: tuple[str, ...] = ()) -> None:
        self.asked: list[str] = []
        self.known = known

    async def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.asked.append(str(host))
        if host not in self.known:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", ("127.0.0.1", int(port)))]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Resolver]:
    fake = _Resolver(known=("wt.test",))
    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", lambda _loop, *args, **kwargs: fake(*args, **kwargs))
    yield fake


async def test_an_ip_literal_host_is_connected_without_the_resolver(
        echo_server: tuple[WebTransportServer, str], client_config: ClientConfig, resolver: _Resolver) -> None:
    _, base = echo_server
    async with WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/echo")
        assert session.is_ready
        assert session.connection is not None
        assert session.connection.remote_address == ("127.0.0.1", int(base.rsplit(":", 1)[1]))
        await session.close()
    assert resolver.asked == []


async def test_an_ipv6_literal_host_is_not_sent_through_the_resolver(resolver: _Resolver) -> None:
    port = closed_port()
    config = ClientConfig(connect_timeout=0.5, max_retries=0)
    async with WebTransportClient(config=config) as client:
        # Whether or not this host has IPv6, the answer must not come from the resolver.
        with pytest.raises((ConnectionRefusedError, TimeoutError, OSError)):
            await client.connect(f"https://[::1]:{port}/")
    assert resolver.asked == []


async def test_a_host_name_is_still_resolved(echo_server: tuple[WebTransportServer, str],
                                             client_config: ClientConfig, resolver: _Resolver) -> None:
    _, base = echo_server
    port = int(base.rsplit(":", 1)[1])
    async with WebTransportClient(config=client_config) as client:
        session = await client.connect(f"https://wt.test:{port}/echo")
        assert session.is_ready
        assert session.connection is not None
        assert session.connection.remote_address == ("127.0.0.1", port)
        await session.close()
    assert resolver.asked == ["wt.test"]


async def test_a_host_name_that_does_not_resolve_fails_naming_it(resolver: _Resolver) -> None:
    async with WebTransportClient(config=ClientConfig(max_retries=0)) as client:
        with pytest.raises(ClientError, match="'nowhere.test'"):
            await client.connect("https://nowhere.test:4433/")
    assert resolver.asked == ["nowhere.test"]


async def test_a_refused_ip_literal_fails_at_once_without_the_resolver(resolver: _Resolver) -> None:
    config = ClientConfig(connect_timeout=10.0, max_retries=0)
    async with WebTransportClient(config=config) as client:
        with pytest.raises(ConnectionRefusedError):
            await client.connect(f"https://127.0.0.1:{closed_port()}/")
    assert resolver.asked == []


async def test_wait_connected_times_out_on_a_silent_peer_and_can_wait_again() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        connection = await client_connection(ClientConfig(verify_mode=False), silent.getsockname()[1])
        connection.connect()
        with pytest.raises(TimeoutError, match="no reply at all"):
            await connection.wait_connected(timeout=0.2)
        # The timed-out wait closed the connection: a second wait returns its failure at once.
        with pytest.raises(HandshakeError, match="timed out"):
            await asyncio.wait_for(connection.wait_connected(timeout=None), 5.0)
    finally:
        silent.close()


async def test_a_cancelled_wait_connected_leaves_the_connection_usable(
        echo_server: tuple[WebTransportServer, str], client_config: ClientConfig) -> None:
    _, base = echo_server
    connection = await client_connection(client_config, int(base.rsplit(":", 1)[1]))
    try:
        connection.connect()
        entered = asyncio.get_running_loop().create_future()

        async def wait() -> None:
            entered.set_result(None)  # the same step then enters wait_connected
            await connection.wait_connected(timeout=10.0)

        waiting = asyncio.ensure_future(wait())
        await asyncio.wait_for(entered, 5.0)  # it is waiting now
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await connection.wait_connected(timeout=10.0)  # a new wait still sees HTTP/3 come up
        assert connection.is_connected
    finally:
        await connection.close()


async def test_below_its_limits_a_server_admits_a_client_without_a_pass_over_its_connections(
        echo_server: tuple[WebTransportServer, str], client_config: ClientConfig,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, base = echo_server
    import pywebtransport.server.server as server_module

    checked: list[WebTransportConnection] = []
    is_live = server_module._is_live

    def counting_is_live(connection: WebTransportConnection) -> bool:
        checked.append(connection)
        return is_live(connection)

    async with WebTransportClient(config=client_config) as client:
        sessions = [await client.connect(f"{base}/echo") for _ in range(3)]
        monkeypatch.setattr(server_module, "_is_live", counting_is_live)
        sessions.append(await client.connect(f"{base}/echo"))
        assert checked == []  # neither limit is near: no connection was looked at
        assert len(server.connections) == 4
        for session in sessions:
            await session.close()
