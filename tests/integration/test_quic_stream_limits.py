"""``quic_max_streams_bidi``/``quic_max_streams_uni``: how many streams the peer may have open
at once. Browsers speak draft-02, where no session-level stream credit exists, so QUIC's
MAX_STREAMS is the only limit, and Chromium fails a stream past it instead of waiting (a
browser bug hunt: 127 of 500 streams opened together). A server can now grant more."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import TimeoutError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportStream

from ..unit.protocol.harness import needs_per_stream_max_streams
from .conftest import running_server

pytestmark = pytest.mark.timeout(60)

OPEN = 200  #: more than the default 128 (one of which is the CONNECT stream)


async def open_together(server_config: ServerConfig, client_config: ClientConfig, count: int,
                        timeout: float) -> tuple[int, int]:
    """Open ``count`` bidirectional streams at once and keep them open; returns how many the
    client got within ``timeout`` each and how many the server saw open together."""
    seen: list[WebTransportStream] = []
    all_seen = asyncio.Event()

    async def hold(session: WebTransportSession) -> None:
        async for stream in session.incoming_streams():
            assert isinstance(stream, WebTransportStream)
            seen.append(stream)
            if len(seen) == count:
                all_seen.set()

    async with (running_server(server_config, {"/h": hold}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/h")

        async def one() -> WebTransportStream | None:
            try:
                stream = await session.create_bidirectional_stream(timeout=timeout)
            except TimeoutError:
                return None
            stream.write(b"!")  # the server hears of it with its first byte
            return stream

        opened = [s for s in await asyncio.gather(*(one() for _ in range(count))) if s is not None]
        if len(opened) == count:
            await asyncio.wait_for(all_seen.wait(), 10)
        return len(opened), len(seen)


#: Session-level stream credit (draft-15 peers, as ours are) out of the way: QUIC's binds.
SESSION_CREDIT = {"initial_max_streams_bidi": 10 * OPEN}


async def test_a_server_granting_more_streams_gets_them_open_at_once(server_config: ServerConfig,
                                                                     client_config: ClientConfig) -> None:
    config = server_config.replace(quic_max_streams_bidi=OPEN + 10, **SESSION_CREDIT)
    assert await open_together(config, client_config, OPEN, timeout=10) == (OPEN, OPEN)


@needs_per_stream_max_streams
async def test_the_default_lets_127_streams_open_beside_the_connect_stream(server_config: ServerConfig,
                                                                          client_config: ClientConfig) -> None:
    opened, _ = await open_together(server_config.replace(**SESSION_CREDIT), client_config, OPEN, timeout=0.5)
    assert opened == 127  # 128 bidirectional QUIC streams, one of them the CONNECT stream
