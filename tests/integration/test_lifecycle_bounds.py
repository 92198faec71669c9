"""Closing ends what it should, in bounded time: a connect pending when its client closes
opens nothing and retries nothing; a server's close does not wait forever for a handler
that swallows its cancellation; a closed server refuses to start again instead of
pretending to serve.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import ClientError, ServerError, WebTransportError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession

from .conftest import eventually, running_server
from .test_connect_errors import _Silent, udp_peer

pytestmark = pytest.mark.timeout(60)


async def test_a_connect_waiting_for_the_resolver_opens_nothing_once_the_client_closed(
        server_config: ServerConfig, client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    entered, gate = asyncio.Event(), asyncio.Event()
    resolve = loop.getaddrinfo

    async def gated_getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await gate.wait()
        return await resolve(*args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", gated_getaddrinfo)

    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    async with running_server(server_config, {"/x": handler}) as (server, base):
        port = base.rsplit(":", 1)[1]
        client = WebTransportClient(config=client_config)
        connecting = asyncio.ensure_future(client.connect(f"https://localhost:{port}/x"))  # a name: the resolver
        await asyncio.wait_for(entered.wait(), 10)
        await client.close()
        gate.set()
        with pytest.raises(ClientError, match="closed while connecting"):
            await asyncio.wait_for(connecting, 10)
        assert client.connections == [] and server.sessions_accepted == 0 and server.connections == []


async def test_a_client_closed_during_a_connect_does_not_retry_it(client_config: ClientConfig) -> None:
    config = client_config.replace(max_retries=3, retry_delay=0.05, connect_timeout=2.0)
    async with udp_peer(_Silent()) as port:
        client = WebTransportClient(config=config)
        connecting = asyncio.ensure_future(client.connect(f"https://127.0.0.1:{port}/x"))
        await eventually(lambda: bool(client.connections))  # the first attempt is under way
        await client.close()
        with pytest.raises(WebTransportError):
            await asyncio.wait_for(connecting, 10)
        assert client.connect_failures == 1  # not 4: the attempts left were not made
        assert client.connections == []


async def test_server_close_is_bounded_by_close_timeout_when_a_handler_swallows_its_cancellation(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    release = asyncio.Event()
    swallowed = asyncio.Event()

    async def handler(session: WebTransportSession) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
            await release.wait()  # ignores the server's cancellation until the test lets go

    server = WebTransportServer(config=server_config.replace(close_timeout=0.5))
    server.add_route("/x", handler)
    await server.start()
    host, port = server.local_address
    try:
        async with WebTransportClient(config=client_config) as client:
            await client.connect(f"https://{host}:{port}/x")
            await asyncio.wait_for(server.close(), 10)  # waited for the handler forever before
            assert swallowed.is_set() and not server.is_serving
    finally:
        release.set()


async def test_a_closed_server_refuses_to_start_again(server_config: ServerConfig) -> None:
    server = WebTransportServer(config=server_config)
    await server.start()
    await server.close()
    with pytest.raises(ServerError, match="closed"):
        await server.start()
    never_started = WebTransportServer(config=server_config)
    await never_started.close()
    with pytest.raises(ServerError, match="closed"):
        await never_started.start()  # it used to bind a socket that refused everyone and leaked
