"""Many short streams under a small session window (draft-15 §5.4): every byte arrives.

A stream whose FIN came is forgotten by the engine once QUIC lets go of it, which can be
before the application has read it. Those reads gave the session no credit back, so the
sender stalled for good: 3,000 streams of 1,000 bytes stopped after 919 KB (found by a bug
hunt)."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream

from .conftest import running_server

pytestmark = pytest.mark.timeout(90)

STREAMS, SIZE, WINDOW = 1500, 1000, 65536


async def test_short_streams_under_a_small_session_window_all_arrive(server_config: ServerConfig,
                                                                     client_config: ClientConfig) -> None:
    received = 0
    all_received = asyncio.Event()

    async def read_all(stream: WebTransportReceiveStream) -> None:
        nonlocal received
        while chunk := await stream.read(65536):  # by chunks: the last read can come after FIN
            received += len(chunk)
        if received == STREAMS * SIZE:
            all_received.set()

    async def handler(session: WebTransportSession) -> None:
        readers = set()
        async for stream in session.incoming_streams():
            assert isinstance(stream, WebTransportReceiveStream)
            reader = asyncio.ensure_future(read_all(stream))
            readers.add(reader)
            reader.add_done_callback(readers.discard)

    config = server_config.replace(initial_max_data=WINDOW, initial_max_streams_uni=1000)
    async with (running_server(config, {"/r": handler}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/r")
        # Sent without a pause where credit allows (a wait_for around each call would yield
        # every time): the server takes in many finished streams in one go, as a busy peer's.
        for _ in range(STREAMS):
            stream = await session.create_unidirectional_stream()
            await stream.write_all(b"x" * SIZE, end_stream=True)
        await asyncio.wait_for(all_received.wait(), 30)
    assert received == STREAMS * SIZE
