"""Writers of a session the peer closes see the session's close, not a STOP_SENDING.

Draft-15 §6: an endpoint closing a session resets and stops every stream of it with
WT_SESSION_GONE, and those frames may arrive before the close capsule. WT_SESSION_GONE is no
application code: a writer stopped with it follows the session-end rule, as readers do
(SessionClosedError carrying the close's code), while a STOP_SENDING with an application
code still raises StreamStopSendingError with that code.
"""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport._protocol import events as ev
from pywebtransport._wire import error_codes
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.constants import WT_SESSION_GONE
from pywebtransport.exceptions import SessionClosedError, StreamStopSendingError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportSendStream, WebTransportStream
from pywebtransport.types import CloseCause

from .conftest import running_server

pytestmark = pytest.mark.timeout(60)

#: Far more than a stream's flow-control window: a writer of it is still writing (waiting in
#: drain for credit the server never gives, it does not read) when the server closes.
BIG = b"x" * (4 << 20)


async def test_busy_writers_of_a_session_the_peer_closes_get_its_clean_close(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    count = 8
    arrived: asyncio.Queue[object] = asyncio.Queue()
    drain_now = asyncio.Event()
    close_now = asyncio.Event()

    async def accept(session: WebTransportSession) -> None:
        async for stream in session.incoming_streams():  # accepted, never read
            await arrived.put(stream)

    async def closer(session: WebTransportSession) -> None:
        # As WebTransportServer.close(drain_timeout=...) does: WT_DRAIN_SESSION, later the
        # close. The drain capsule, once sent, puts the CONNECT stream behind the others in
        # QUIC's send order: their STOP_SENDING and RESET_STREAM then reach the client before
        # the close capsule, as they may with any peer.
        await drain_now.wait()
        await session.drain()
        await close_now.wait()
        await session.close()  # a clean close: code 0

    async def serve(session: WebTransportSession) -> None:
        await asyncio.gather(accept(session), closer(session))

    async with running_server(server_config, {"/w": serve}) as (_, base):
        session = await client.connect(f"{base}/w")
        draining = asyncio.Event()
        session.events.on("session.draining", lambda _e: draining.set())
        streams: list[WebTransportStream | WebTransportSendStream] = []
        for index in range(count):
            if index % 2:
                streams.append(await session.create_unidirectional_stream())
            else:
                streams.append(await session.create_bidirectional_stream())
        writers = [asyncio.ensure_future(stream.write_all(BIG)) for stream in streams]
        for _ in range(count):  # every stream's first bytes reached the server
            await asyncio.wait_for(arrived.get(), 10)
        drain_now.set()
        await asyncio.wait_for(draining.wait(), 10)
        close_now.set()
        results = await asyncio.wait_for(asyncio.gather(*writers, return_exceptions=True), 10)
        await asyncio.wait_for(session.wait_closed(), 10)

    assert session.close_code == 0 and session.close_cause is CloseCause.PEER_CLOSE
    assert [type(result) for result in results] == [SessionClosedError] * count, results
    assert all(isinstance(r, SessionClosedError) and r.error_code == 0 for r in results)
    # After the close, a write names the session's close too.
    with pytest.raises(SessionClosedError) as info:
        streams[0].write(b"late")
    assert info.value.error_code == 0


async def test_a_writer_stopped_with_session_gone_waits_for_the_close_and_raises_it(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    async def hold(session: WebTransportSession) -> None:
        await session.wait_closed()

    async with running_server(server_config, {"/h": hold}) as (_, base):
        session = await client.connect(f"{base}/h")
        stream = await session.create_bidirectional_stream()
        # The peer's STOP_SENDING with WT_SESSION_GONE, its close capsule not here yet.
        stream.handle_event(ev.StreamStopSending(session.session_id, stream.stream_id, None, WT_SESSION_GONE))
        stream.write(b"nowhere to go")  # not an error before the close: drain() reports it
        draining = asyncio.ensure_future(stream.drain())
        await asyncio.wait_for(session.close(error_code=7, reason="bye"), 10)
        with pytest.raises(SessionClosedError) as info:
            await asyncio.wait_for(draining, 10)
        assert (info.value.error_code, info.value.reason) == (7, "bye")
        with pytest.raises(SessionClosedError):
            stream.write(b"late")


async def test_a_session_gone_stop_whose_close_never_comes_ends_the_writer_after_close_timeout(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    # A peer that stops a stream with WT_SESSION_GONE and then never closes the session (a
    # broken or hostile one) must not leave drain() waiting for good (write_timeout is None).
    async def hold(session: WebTransportSession) -> None:
        await session.wait_closed()

    grace = 0.3
    async with (running_server(server_config, {"/h": hold}) as (_, base),
                WebTransportClient(config=client_config.replace(close_timeout=grace)) as client):
        session = await client.connect(f"{base}/h")
        stream = await session.create_bidirectional_stream()
        stopped_at = asyncio.get_running_loop().time()
        stream.handle_event(ev.StreamStopSending(session.session_id, stream.stream_id, None, WT_SESSION_GONE))
        stream.write(b"nowhere to go")
        with pytest.raises(StreamStopSendingError) as info:
            await asyncio.wait_for(stream.drain(), 10)
        assert asyncio.get_running_loop().time() - stopped_at >= grace  # the close was given its time
        assert info.value.error_code is None  # WT_SESSION_GONE is no application code
        with pytest.raises(StreamStopSendingError):
            stream.write(b"later")
        with pytest.raises(StreamStopSendingError):
            await asyncio.wait_for(stream.drain(), 10)
        assert not session.is_closed  # only the stream ended
        await session.close()


async def test_a_session_gone_stream_nobody_drains_is_ended_after_close_timeout(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    # The same without a task in drain() (write() and close(), as ``async with stream`` does):
    # the stream ends all the same, by a timer armed at the STOP_SENDING.
    async def hold(session: WebTransportSession) -> None:
        await session.wait_closed()

    grace = 0.2
    async with (running_server(server_config, {"/h": hold}) as (_, base),
                WebTransportClient(config=client_config.replace(close_timeout=grace)) as client):
        session = await client.connect(f"{base}/h")
        stream = await session.create_unidirectional_stream()
        stream.handle_event(ev.StreamStopSending(session.session_id, stream.stream_id, None, WT_SESSION_GONE))
        stream.write(b"nowhere to go")  # silently dropped while the close is awaited: fine
        await stream.close()  # a no-op while 'gone'
        try:
            # Well past close_timeout: the stream should count as stopped (and, a uni stream, closed).
            await asyncio.wait_for(stream.wait_closed(), 20 * grace)
        except asyncio.TimeoutError:
            pytest.fail(f"stream still open {20 * grace}s after a WT_SESSION_GONE stop with no close "
                        f"(close_timeout={grace}): state {stream.state}")
        with pytest.raises(StreamStopSendingError):
            stream.write(b"later")
        assert not session.is_closed
        await session.close()


async def test_stop_sending_with_an_application_code_still_raises_it(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    async def hold(session: WebTransportSession) -> None:
        await session.wait_closed()

    async with running_server(server_config, {"/h": hold}) as (_, base):
        session = await client.connect(f"{base}/h")
        stream = await session.create_bidirectional_stream()
        stream.handle_event(ev.StreamStopSending(session.session_id, stream.stream_id, 42,
                                                error_codes.app_code_to_http(42)))
        with pytest.raises(StreamStopSendingError) as info:
            stream.write(b"x")
        assert info.value.error_code == 42
        with pytest.raises(StreamStopSendingError):
            await asyncio.wait_for(stream.drain(), 10)
