"""Readers of a stream the peer reset with WT_SESSION_GONE wait for the session's close, but
not for good.

Draft-15 §6: a peer closing a session resets its streams with WT_SESSION_GONE, and the close
capsule may come after. A reader then follows the session-end rule (it gets the close's
error). A peer that sends the reset and never closes the session (broken, or hostile: one
frame per stream) used to leave every such reader waiting forever, and under
``serve_streams()`` each one held a handler slot for good, so later streams were refused.
Reading now ends after ``close_timeout`` with StreamResetError, as writing ends for a
WT_SESSION_GONE STOP_SENDING (test_session_gone_writers.py).

The peer's reset is put on the wire below the API (an application cannot send
WT_SESSION_GONE: it is no application code).
"""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.constants import WT_SESSION_GONE
from pywebtransport.exceptions import SessionClosedError, StreamResetError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import StreamType
from tests.integration.conftest import running_server

pytestmark = pytest.mark.timeout(60)

GRACE = 0.3


def _reset_session_gone(session: WebTransportSession, stream_id: int) -> None:
    """RESET_STREAM(WT_SESSION_GONE) on ``stream_id``, with no close of ``session`` after it."""
    session._engine.quic.reset_stream(stream_id, WT_SESSION_GONE)
    session._flush()


async def _opened(session: WebTransportSession, kind: str) -> StreamType:
    stream = await (session.create_unidirectional_stream() if kind == "uni"
                    else session.create_bidirectional_stream())
    await stream.write_all(b"hi")
    return stream


@pytest.mark.parametrize("kind", ["uni", "bidi"])
async def test_a_reader_whose_session_never_closes_gets_a_reset_after_close_timeout(
        server_config: ServerConfig, client_config: ClientConfig, kind: str) -> None:
    arrived: asyncio.Queue[StreamType] = asyncio.Queue()

    async def route(session: WebTransportSession) -> None:
        async for stream in session.incoming_streams():
            await arrived.put(stream)

    async with (running_server(server_config.replace(close_timeout=GRACE), {"/r": route}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/r")
        stream = await _opened(session, kind)
        incoming = await asyncio.wait_for(arrived.get(), 10)
        assert await asyncio.wait_for(incoming.read(2), 10) == b"hi"
        reading = asyncio.ensure_future(incoming.read())
        loop = asyncio.get_running_loop()
        reset_at = loop.time()
        _reset_session_gone(session, stream.stream_id)
        with pytest.raises(StreamResetError) as info:
            await asyncio.wait_for(reading, 20 * GRACE)
        assert loop.time() - reset_at >= GRACE  # the close was given its time
        assert info.value.error_code is None  # WT_SESSION_GONE is no application code
        with pytest.raises(StreamResetError):  # later reads say the same
            await incoming.read()
        if kind == "uni":  # nothing else is open on it: the stream is over
            await asyncio.wait_for(incoming.wait_closed(), 10)
        assert not incoming.session.is_closed  # only the stream ended
        await session.close()


async def test_a_close_within_close_timeout_still_reaches_the_reader(server_config: ServerConfig,
                                                                    client_config: ClientConfig) -> None:
    arrived: asyncio.Queue[StreamType] = asyncio.Queue()

    async def route(session: WebTransportSession) -> None:
        async for stream in session.incoming_streams():
            await arrived.put(stream)

    async with (running_server(server_config.replace(close_timeout=30.0), {"/r": route}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/r")
        stream = await _opened(session, "uni")
        incoming = await asyncio.wait_for(arrived.get(), 10)
        assert await asyncio.wait_for(incoming.read(2), 10) == b"hi"
        reading = asyncio.ensure_future(incoming.read())
        _reset_session_gone(session, stream.stream_id)
        await session.close(error_code=7, reason="bye")
        with pytest.raises(SessionClosedError) as info:
            await asyncio.wait_for(reading, 10)
        assert (info.value.error_code, info.value.reason) == (7, "bye")


async def test_session_gone_streams_do_not_hold_serve_streams_slots_for_good(server_config: ServerConfig,
                                                                             client_config: ClientConfig) -> None:
    served: asyncio.Queue[int] = asyncio.Queue()
    ended: asyncio.Queue[int] = asyncio.Queue()

    async def handler(stream: StreamType) -> None:
        await served.put(stream.stream_id)
        try:
            await stream.read()
        finally:
            await ended.put(stream.stream_id)

    async def route(session: WebTransportSession) -> None:
        await session.serve_streams(handler)

    config = server_config.replace(close_timeout=GRACE, max_incoming_streams_queue=2)
    async with (running_server(config, {"/s": route}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/s")
        hostile = [await _opened(session, "uni") for _ in range(2)]
        assert {await asyncio.wait_for(served.get(), 10) for _ in hostile} == {s.stream_id for s in hostile}
        for stream in hostile:  # both handler slots held by readers of these
            _reset_session_gone(session, stream.stream_id)
        assert {await asyncio.wait_for(ended.get(), 20 * GRACE) for _ in hostile} == {s.stream_id for s in hostile}
        later = await _opened(session, "uni")  # a slot is free again: served, not refused
        assert await asyncio.wait_for(served.get(), 10) == later.stream_id
        await session.close()
