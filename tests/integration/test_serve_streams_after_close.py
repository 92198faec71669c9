"""serve_streams() started after the session closed cleanly still serves the streams that
were queued: their data arrived before the close and can be read, as ``incoming_streams()``
hands them over. (It used to start their handlers and cancel them before their first step:
waiting on the already-set close latch does not yield.)"""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import StreamType
from tests.integration.conftest import running_server


@pytest.mark.parametrize("mode", ["incoming_streams", "serve_streams"])
async def test_a_stream_queued_before_a_clean_close_reaches_the_handler(
        server_config: ServerConfig, client_config: ClientConfig, mode: str) -> None:
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[WebTransportSession] = loop.create_future()
    finished: asyncio.Future[BaseException | None] = loop.create_future()
    go = asyncio.Event()
    received: list[bytes] = []

    async def handler(stream: StreamType) -> None:
        received.append(await stream.read())  # type: ignore[union-attr]

    async def route(session: WebTransportSession) -> None:
        arrived.set_result(session)
        await go.wait()  # the application's own setup, during which the peer sends and leaves
        try:
            if mode == "serve_streams":
                await session.serve_streams(handler)
            else:
                async for stream in session.incoming_streams():
                    await handler(stream)
        except BaseException as exc:
            finished.set_result(exc)
            raise
        finished.set_result(None)

    async with (running_server(server_config, {"/late": route}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/late")
        server_session = await asyncio.wait_for(arrived, 10)
        uni = await session.create_unidirectional_stream()
        await uni.write_all(b"message", end_stream=True)
        await session.close()  # clean (code 0), after the stream's data and FIN were acknowledged
        await asyncio.wait_for(server_session.wait_closed(), 10)
        go.set()
        assert await asyncio.wait_for(finished, 10) is None
    assert received == [b"message"]
