"""A stream handler that swallows its cancellation does not keep serve_streams() (and the
route's session task with it) alive for good after the session closed: the wait is bounded by
close_timeout, and the handler left running is logged, as the server's own close does
(server/lifecycle.py)."""

from __future__ import annotations

import asyncio
import contextlib

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.stream import StreamType
from tests.integration.conftest import running_server, serving_route


async def test_serve_streams_returns_after_the_close_even_if_a_handler_ignores_its_cancellation(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[BaseException | None] = loop.create_future()
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(stream: StreamType) -> None:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # a careless handler: swallows the cancellation
            await asyncio.Event().wait()
        await release.wait()  # and goes on waiting

    config = server_config.replace(close_timeout=0.5)
    async with (running_server(config, {"/s": serving_route(handler, outcome)}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/s")
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"hold")
        await asyncio.wait_for(started.wait(), 10)
        await session.close()
        try:
            # Expected: the session is gone; serve_streams returns (the stuck handler left
            # behind, as the server's close does) within a few close_timeouts.
            assert await asyncio.wait_for(asyncio.shield(outcome), 5) is None
        finally:
            release.set()  # let the stuck handler end, so the test leaves no task behind
            await asyncio.wait_for(outcome, 10)
