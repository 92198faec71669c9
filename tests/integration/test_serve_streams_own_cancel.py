"""A stream handler that ends by a CancelledError of its own (it awaited a helper task or future
that was cancelled; nobody cancelled the handler) has its stream reset with code 1 and a
warning logged, like a failing handler: its peer must not wait on the stream for good, as the
server treats the same in a session handler (server/sessions.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import StreamResetError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import StreamType, WebTransportStream
from tests.integration.conftest import running_server


async def test_a_handler_ending_by_its_own_cancellation_does_not_leave_its_stream_open(
        server_config: ServerConfig, client_config: ClientConfig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")
    ended = asyncio.Event()

    async def handler(stream: StreamType) -> None:
        assert isinstance(stream, WebTransportStream)
        await stream.read()
        helper = asyncio.ensure_future(asyncio.Event().wait())
        helper.cancel()  # say, a shared job this request waited on was cancelled elsewhere
        try:
            await helper  # raises CancelledError: the handler ends "cancelled"
        finally:
            ended.set()

    async def route(session: WebTransportSession) -> None:
        await session.serve_streams(handler)

    async with (running_server(server_config, {"/c": route}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/c")
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"request", end_stream=True)
        await asyncio.wait_for(ended.wait(), 10)
        # Expected: reset with code 1 as for any handler that did not finish its work.
        # Actual: no reset, no FIN; read() waits until the session ends (wait_for times out).
        with pytest.raises(StreamResetError) as reset:
            await asyncio.wait_for(stream.read(), 5)
        assert reset.value.error_code == 1
        await session.close()
