"""``accept_*_stream(timeout=0)`` takes a stream already waiting without waiting, as
``datagrams.receive(timeout=0)`` does. Through ``asyncio.wait_for(..., 0)`` it never found one
on Python before 3.12: that cancels the iteration before its first step."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import SessionClosedError, TimeoutError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream
from pywebtransport.utils import SelfSignedCertificate

from .conftest import eventually, running_server

pytestmark = pytest.mark.timeout(60)


async def test_accept_with_timeout_zero_takes_waiting_streams_and_never_waits(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    opened = asyncio.Event()

    async def handler(session: WebTransportSession) -> None:
        uni = await session.create_unidirectional_stream()
        await uni.write_all(b"u", end_stream=True)
        bidi = await session.create_bidirectional_stream()
        await bidi.write_all(b"b", end_stream=True)
        opened.set()
        await session.wait_closed()

    config = ClientConfig(server_certificate_hashes=[certificate.sha256])
    async with running_server(server_config, {"/a": handler}) as (_, base), WebTransportClient(config=config) as client:
        session = await client.connect(f"{base}/a")
        got: list[object] = []

        async def poll() -> bool:
            try:
                got.append(await session.accept_stream(timeout=0))
            except TimeoutError:
                return False
            return True

        await eventually(poll)
        await eventually(poll)
        assert sorted(type(s).__name__ for s in got) == ["WebTransportReceiveStream", "WebTransportStream"]
        uni = next(s for s in got if isinstance(s, WebTransportReceiveStream))
        assert await uni.read() == b"u"
        for accept in (session.accept_stream, session.accept_bidirectional_stream,
                       session.accept_unidirectional_stream):
            with pytest.raises(TimeoutError):  # none waits: at once, not after any wait
                await asyncio.wait_for(accept(timeout=0), 5)
        with pytest.raises(TimeoutError):
            await session.accept_unidirectional_stream(timeout=-1)
        await session.close()
        with pytest.raises(SessionClosedError):
            await session.accept_stream(timeout=0)
