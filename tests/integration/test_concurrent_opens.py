"""Hundreds of concurrent stream opens over UDP against small limits: the old engine opened
a real stream when QUIC's own limit was full and dropped it, so a burst of 200
create_bidirectional_stream() calls stalled the session for good (5 runs of 5)."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession

from .conftest import running_server

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("session_streams", [8, 1000])  # session credit small, or QUIC's 128 the limit
async def test_two_hundred_concurrent_opens_all_complete_and_leave_nothing_open(
        server_config: ServerConfig, client_config: ClientConfig, session_streams: int) -> None:
    handled: list[int] = []

    async def echo(session: WebTransportSession) -> None:
        async for stream in session.incoming_bidirectional_streams():
            data = await stream.read()
            await stream.write_all(data, end_stream=True)
            handled.append(stream.stream_id)

    config = server_config.replace(initial_max_streams_bidi=session_streams)
    async with running_server(config, {"/echo": echo}) as (server, base), \
            WebTransportClient(config=client_config.replace(stream_creation_timeout=60)) as client:
        session = await client.connect(f"{base}/echo")

        async def round_trip(index: int) -> bytes:
            stream = await session.create_bidirectional_stream()
            await stream.write_all(index.to_bytes(2, "big"), end_stream=True)
            return await stream.read()

        replies = await asyncio.wait_for(asyncio.gather(*(round_trip(i) for i in range(200))), 60)
        assert replies == [i.to_bytes(2, "big") for i in range(200)]
        assert len(handled) == 200  # every stream the client opened reached a handler once
        (connection,) = server.connections
        engine = connection.protocol_handler
        await session.close()
        # Nothing is left open on the server: no orphan stream holds credit or a handler.
        left = engine.session_snapshot(session.session_id)
        assert left is None or left.open_streams == 0
