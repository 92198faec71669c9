"""When the QUIC library itself raises on a datagram its state can no longer be trusted:
the connection closes at once with H3_INTERNAL_ERROR and a connect under way raises a
ConnectionError that names the failure, instead of waiting out ``connect_timeout``."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from pywebtransport._protocol.engine import WebTransportEngine
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import ConnectionError
from pywebtransport.session import WebTransportSession

from .conftest import running_server

pytestmark = pytest.mark.timeout(60)


class _FailingFrom:
    """Makes the engine that receives from ``port`` (the client's, from the server) raise."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.port: int | None = None
        self.raised = 0
        receive = WebTransportEngine.receive_datagram

        def receive_datagram(engine: WebTransportEngine, data: bytes, addr: tuple[str, int], now: float) -> None:
            if self.port is not None and addr[1] == self.port:
                self.raised += 1
                raise RuntimeError("the library broke")
            receive(engine, data, addr, now)

        monkeypatch.setattr(WebTransportEngine, "receive_datagram", receive_datagram)


async def _hold(session: WebTransportSession) -> None:
    await session.wait_closed()


async def test_a_connect_fails_at_once_with_the_library_error_not_at_its_timeout(
        server_config: ServerConfig, client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = _FailingFrom(monkeypatch)
    config = dataclasses.replace(client_config, connect_timeout=45.0)
    async with running_server(server_config, {"/": _hold}) as (server, base):
        failing.port = server.local_address[1]
        async with WebTransportClient(config=config) as client:
            with pytest.raises(ConnectionError, match="QUIC library failed on a datagram.*the library broke"):
                await client.connect(f"{base}/")
    assert failing.raised == 1  # the connection was closed after the first: nothing more reached it


async def test_an_open_session_ends_when_the_library_fails_later(
        server_config: ServerConfig, client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = _FailingFrom(monkeypatch)
    server_side_closed = asyncio.Event()

    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()
        server_side_closed.set()

    async with running_server(server_config, {"/": handler}) as (server, base), \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/")
        failing.port = server.local_address[1]
        stream = await session.create_bidirectional_stream()
        stream.write(b"provoke an answer")  # the server's ACK is what the client fails on
        await asyncio.wait_for(session.wait_closed(), 30)
        assert session.is_closed and failing.raised == 1
        # the client's CONNECTION_CLOSE reached the server: its session ended too
        await asyncio.wait_for(server_side_closed.wait(), 30)
