"""A client session closed before its CONNECT request could go out (the request waits for the
server's SETTINGS, RFC 9220 §3) cancels the request (H3_REQUEST_CANCELLED, RFC 9114 §4.1.1)
and leaves the connection and its other sessions alone. Its close used to put a capsule on a
stream that never carried HEADERS: a connection error (RFC 9114 §4.1) at the server, which
took every other session on the connection along."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession
from pywebtransport.types import CloseCause
from tests.integration.conftest import running_server
from tests.integration.peers import client_connection

pytestmark = pytest.mark.timeout(60)


async def test_closing_a_request_still_waiting_for_settings_cancels_only_it(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    arrived: asyncio.Queue[str] = asyncio.Queue()

    async def handler(session: WebTransportSession) -> None:
        await arrived.put(session.path)
        await session.wait_closed()

    async with running_server(server_config, {"/a": handler, "/b": handler}) as (server, _):
        host, port = server.local_address
        connection = await client_connection(client_config, port)
        try:
            connection.connect()
            # Both requests wait in the engine for the server's SETTINGS.
            first = connection.request_session(path="/a", authority=f"{host}:{port}")
            second = connection.request_session(path="/b", authority=f"{host}:{port}")
            await first.close(error_code=7, reason="changed my mind")
            assert first.is_closed and first.close_cause is CloseCause.LOCAL_CLOSE
            assert (first.close_code, first.close_reason) == (7, "changed my mind")
            await connection.wait_connected(timeout=10)
            await connection.wait_session_ready(second, timeout=10)
            assert await asyncio.wait_for(arrived.get(), 10) == "/b"
            stream = await second.create_bidirectional_stream()
            await stream.write_all(b"still here", end_stream=True)
            assert not connection.is_closed and arrived.empty()  # /a never reached a handler
            await second.close()
        finally:
            await connection.close()
