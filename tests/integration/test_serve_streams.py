"""``session.serve_streams(handler)``: a task per stream the peer opens, started as it arrives;
handlers that fail reset their stream, a closed session cancels the rest, and the number
running is bounded like the incoming queue. (When the session closes, handlers still running
get close_timeout to end; see also test_serve_streams_*.py.)"""

from __future__ import annotations

import asyncio
import logging

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import SessionClosedError, StreamResetError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import StreamType, WebTransportReceiveStream, WebTransportStream
from tests.integration.conftest import eventually, running_server, serving_one_stream, serving_route


async def _echo(stream: StreamType) -> None:
    assert isinstance(stream, WebTransportStream)
    stream.write(await stream.read())
    await stream.close()


async def test_each_stream_is_served_by_its_own_handler(server_config: ServerConfig,
                                                        client_config: ClientConfig) -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    uni_payloads: list[bytes] = []

    async def handler(stream: StreamType) -> None:
        if isinstance(stream, WebTransportReceiveStream):
            uni_payloads.append(await stream.read())
        else:
            await _echo(stream)

    async with (running_server(server_config, {"/s": serving_route(handler, outcome)}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/s")
        streams = [await session.create_bidirectional_stream() for _ in range(5)]
        for index, stream in enumerate(streams):  # all open at once: served side by side
            await stream.write_all(b"ping %d" % index, end_stream=True)
        answers = await asyncio.gather(*(stream.read() for stream in streams))
        assert answers == [b"ping %d" % index for index in range(5)]
        uni = await session.create_unidirectional_stream()
        await uni.write_all(b"one way", end_stream=True)
        await eventually(lambda: uni_payloads == [b"one way"])
        await session.close()
        assert await asyncio.wait_for(outcome, 10) is None  # a clean close: serve_streams returns


async def test_streams_that_waited_to_be_accepted_are_served_first(server_config: ServerConfig,
                                                                   client_config: ClientConfig) -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    arrived: asyncio.Future[WebTransportSession] = asyncio.get_running_loop().create_future()
    start = asyncio.Event()

    async def route(session: WebTransportSession) -> None:
        arrived.set_result(session)
        await start.wait()
        await serving_route(_echo, outcome)(session)

    async with (running_server(server_config, {"/late": route}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/late")
        first = await session.create_bidirectional_stream()
        await first.write_all(b"early", end_stream=True)
        server_session = await asyncio.wait_for(arrived, 10)
        await eventually(lambda: server_session.stats.streams_created == 1)  # queued: nobody serves yet
        start.set()
        assert await asyncio.wait_for(first.read(), 10) == b"early"
        second = await session.create_bidirectional_stream()
        await second.write_all(b"later", end_stream=True)
        assert await asyncio.wait_for(second.read(), 10) == b"later"
        await session.close()
        assert await asyncio.wait_for(outcome, 10) is None


async def test_a_failing_handler_resets_its_stream_and_the_session_goes_on(
        server_config: ServerConfig, client_config: ClientConfig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def handler(stream: StreamType) -> None:
        assert isinstance(stream, WebTransportStream)
        if await stream.read() == b"fail":
            raise ValueError("the handler's own bug")
        stream.write(b"fine")
        await stream.close()

    async with (running_server(server_config, {"/f": serving_route(handler, outcome)}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/f")
        failing = await session.create_bidirectional_stream()
        await failing.write_all(b"fail", end_stream=True)
        with pytest.raises(StreamResetError) as reset:
            await asyncio.wait_for(failing.read(), 10)
        assert reset.value.error_code == 1
        healthy = await session.create_bidirectional_stream()
        await healthy.write_all(b"ok?", end_stream=True)
        assert await asyncio.wait_for(healthy.read(), 10) == b"fine"
        assert not outcome.done()
        await session.close()
        await asyncio.wait_for(outcome, 10)
    failures = [r for r in caplog.records if "handler of stream" in r.getMessage() and r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and isinstance(failures[0].exc_info[1], ValueError)
    assert f"stream {failing.stream_id}" in failures[0].getMessage()


async def test_the_sessions_close_cancels_handlers_still_running_after_close_timeout(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    started = asyncio.Event()
    cancelled: list[int] = []

    async def handler(stream: StreamType) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set: only a cancellation ends it
        except asyncio.CancelledError:
            cancelled.append(stream.stream_id)
            raise

    async with (running_server(server_config.replace(close_timeout=0.3), {"/c": serving_route(handler, outcome)})
                as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/c")
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"hold")
        await asyncio.wait_for(started.wait(), 10)
        await session.close(error_code=7, reason="bye")
        result = await asyncio.wait_for(outcome, 10)
    assert cancelled == [stream.stream_id]  # given close_timeout, then cancelled and waited for
    assert isinstance(result, SessionClosedError)  # code 7: not a clean close, as incoming_streams()
    assert result.error_code == 7


async def test_handlers_are_bounded_like_the_incoming_queue(server_config: ServerConfig,
                                                            client_config: ClientConfig) -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    arrived: asyncio.Future[WebTransportSession] = asyncio.get_running_loop().create_future()
    release = asyncio.Event()
    running = 0

    async def handler(stream: StreamType) -> None:
        nonlocal running
        running += 1
        await release.wait()

    async def route(session: WebTransportSession) -> None:
        arrived.set_result(session)
        await serving_route(handler, outcome)(session)

    async with (running_server(server_config.replace(max_incoming_streams_queue=2), {"/b": route}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/b")
        for _ in range(3):
            stream = await session.create_bidirectional_stream()
            await stream.write_all(b"x", end_stream=True)
        server_session = await asyncio.wait_for(arrived, 10)
        await eventually(lambda: server_session.stats.stream_errors == 1)  # the third is refused
        await eventually(lambda: running == 2)
        release.set()
        await session.close()
        assert await asyncio.wait_for(outcome, 10) is None


async def test_a_second_serve_streams_is_refused_and_cancelling_one_cancels_its_handlers(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(stream: StreamType) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with serving_one_stream(server_config, client_config, handler, started) as served:
        with pytest.raises(RuntimeError, match="already running"):
            await served.server_session.serve_streams(handler)
        served.serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await served.serving
        assert cancelled.is_set()  # the handler ended before serve_streams did
        later = await served.session.create_bidirectional_stream()  # queued again, for accept_stream
        await later.write_all(b"queued", end_stream=True)
        accepted = await served.server_session.accept_stream(timeout=10)
        assert accepted.stream_id == later.stream_id
        await served.session.close()
