"""Session statistics and health checks, each provoked for real over loopback."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig
from pywebtransport.events import EventType
from pywebtransport.exceptions import StreamResetError
from pywebtransport.session import SessionStats, WebTransportSession
from pywebtransport.types import SessionState

from .conftest import eventually, running_server

pytestmark = pytest.mark.timeout(60)


async def test_session_stats_count_streams_and_datagrams(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    for _ in range(3):
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"x", end_stream=True)
        await stream.read()
        await asyncio.wait_for(stream.wait_closed(), 5)
    await session.create_unidirectional_stream()
    await session.datagrams.send(b"d")
    await session.datagrams.receive(timeout=5)
    stats = session.stats
    assert isinstance(stats, SessionStats)
    assert (stats.streams_created, stats.streams_closed, stats.active_streams) == (4, 3, 1)
    assert (stats.bidirectional_streams, stats.unidirectional_streams) == (3, 1)
    assert (stats.datagrams_sent, stats.datagrams_received) == (1, 1)
    assert stats.ready_at is not None and stats.uptime > 0
    data = await session.get_session_stats()
    assert data["streams_created"] == 4 and data["active_streams"] == 1 and data["state"] == "connected"
    summary = await session.get_summary()
    assert summary["session_id"] == session.session_id and summary["path"] == "/echo"
    await session.close(error_code=2, reason="stats done")
    frozen = stats.uptime
    assert stats.monotonic_ready_at is not None and stats.monotonic_closed_at is not None
    # Uptime is measured up to the close, not up to now: the clock has moved on since then.
    assert time.monotonic() > stats.monotonic_closed_at
    assert frozen == stats.monotonic_closed_at - stats.monotonic_ready_at
    await session.get_session_stats()  # read again, later: still the same
    assert stats.closed_at is not None and stats.uptime == frozen  # uptime stops at close
    assert stats.to_dict()["closed_at"] == stats.closed_at


async def test_debug_state_is_plain_data(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    await session.create_bidirectional_stream()
    state = await session.debug_state()
    assert state["session"]["state"] == "connected"
    assert state["diagnostics"]["state"] == "connected" and state["diagnostics"]["session_id"] == 0
    assert state["streams"][0]["direction"] == "bidirectional"
    assert state["connection"]["state"] == "connected"
    import json

    json.dumps(state, default=str)  # serialisable for logs


async def test_a_healthy_session_has_no_issues(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    assert await session.diagnose_issues() == []


async def test_high_stream_error_rate_is_reported(server_config, client) -> None:
    async def resetter(session: WebTransportSession) -> None:
        async for stream in session.incoming_streams():
            stream.abort(9)  # type: ignore[union-attr]

    async with running_server(server_config, {"/reset": resetter}) as (_, base):
        session = await client.connect(f"{base}/reset")
        for _ in range(12):
            stream = await session.create_bidirectional_stream()
            stream.write(b"x")
            with pytest.raises(StreamResetError):
                await asyncio.wait_for(stream.read(), 5)
        assert session.stats.stream_errors == 12
        assert any("stream error rate" in issue for issue in await session.diagnose_issues())


async def test_waiting_for_stream_credit_is_reported(server_config, client) -> None:
    held: asyncio.Queue[WebTransportSession] = asyncio.Queue()

    async def hold(session: WebTransportSession) -> None:
        await held.put(session)
        await session.wait_closed()

    config = server_config.replace(initial_max_streams_bidi=1, flow_control_auto_extend=False)
    async with running_server(config, {"/hold": hold}) as (_, base):
        session = await client.connect(f"{base}/hold")
        remote = await asyncio.wait_for(held.get(), 5)
        blocked = asyncio.Event()
        remote.events.on(EventType.SESSION_STREAMS_BLOCKED, lambda _e: blocked.set())
        await session.create_bidirectional_stream()
        waiting = asyncio.ensure_future(session.create_bidirectional_stream(timeout=5))
        # The creator registers its wait before it sends WT_STREAMS_BLOCKED; the server got that.
        await asyncio.wait_for(blocked.wait(), 5)
        assert not waiting.done()
        assert any("stream credit" in issue for issue in await session.diagnose_issues())
        assert len((await session.diagnostics()).pending_bidi_stream_futures) == 1
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)


async def test_stalled_sending_is_reported(server_config, client) -> None:
    async def never_reads(session: WebTransportSession) -> None:
        await session.wait_closed()

    config = server_config.replace(initial_max_data=1000, flow_control_auto_extend=False)
    async with running_server(config, {"/stall": never_reads}) as (_, base):
        session = await client.connect(f"{base}/stall")
        stream = await session.create_unidirectional_stream()
        # The session's send credit is applied as the data is queued: nothing to wait for.
        stream.write(b"s" * 5000)
        assert any("WT_MAX_DATA is used up" in issue for issue in await session.diagnose_issues())


async def test_dropped_datagrams_are_reported(server_config, certificate) -> None:
    async def flood(session: WebTransportSession) -> None:
        for i in range(20):
            await session.datagrams.send(f"{i}".encode())
        await session.wait_closed()

    config = ClientConfig(server_certificate_hashes=[certificate.sha256], datagram_queue_size=4)
    async with running_server(server_config, {"/flood": flood}) as (_, base), \
            WebTransportClient(config=config) as client:
        session = await client.connect(f"{base}/flood")
        datagrams = session.datagrams
        await eventually(lambda: datagrams.datagrams_received >= 14)  # nothing reads them
        # Only the newest 4 are kept; every other one that arrived was dropped and counted.
        assert datagrams.receive_buffer_size == 4
        assert datagrams.receive_dropped == datagrams.datagrams_received - 4
        assert datagrams.receive_dropped >= 10
        assert any("datagrams were dropped" in issue for issue in await session.diagnose_issues())


async def test_monitor_health_closes_a_session_whose_connection_is_gone(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    monitor = asyncio.ensure_future(session.monitor_health(check_interval=0.05))
    session._connection_ref = lambda: None  # type: ignore[assignment]  # the connection object is gone
    assert "the connection is closed but the session is not" in await session.diagnose_issues()
    await asyncio.wait_for(monitor, 5)
    assert session.state is SessionState.CLOSED and session.close_reason == "connection lost"


async def test_monitor_health_returns_when_the_session_closes(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    monitor = asyncio.ensure_future(session.monitor_health(check_interval=60))
    # Close only once the monitor is inside its 60 s wait, so the close is what ends it.
    await eventually(lambda: inspect.getcoroutinestate(monitor.get_coro()) == inspect.CORO_SUSPENDED)
    assert not monitor.done()
    await session.close()
    await asyncio.wait_for(monitor, 2)
    with pytest.raises(ValueError):
        await session.monitor_health(check_interval=0)


