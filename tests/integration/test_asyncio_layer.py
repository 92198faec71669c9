"""The asyncio layer over the engine: one state machine, announced writability, close causes,
typed streams, the session-end rule, keep-alive, client connection lifetime and qlog."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pywebtransport._io import UdpEndpoint
from pywebtransport._protocol import events as ev
from pywebtransport._waiters import Waiters
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection import WebTransportConnection, build_quic_configuration
from pywebtransport.events import EventType
from pywebtransport.exceptions import ConfigurationError, SessionClosedError, SessionError
from pywebtransport.server import ServerApp, SessionRequest
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream, WebTransportStream
from pywebtransport.types import CloseCause, SessionState

from .conftest import running_server
from .peers import SessionQueue

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


async def open_more(session: WebTransportSession, count: int) -> list[WebTransportSession]:
    """``count`` more sessions on the connection of ``session``."""
    connection = session.connection
    assert connection is not None
    authority = session.headers[":authority"]
    return [await connection.open_session(path=session.path, authority=authority) for _ in range(count)]


# ---------------------------------------------------------------------- one state machine


async def test_state_is_closed_the_moment_the_engine_processed_the_peer_close(
        server_config: ServerConfig, client: WebTransportClient, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[SessionState, type[BaseException] | None, Any]] = []
    original = WebTransportSession.handle_event

    def spy(self: WebTransportSession, event: ev.EngineEvent) -> None:
        if isinstance(event, ev.SessionClosed) and self.connection is not None and self.connection.is_client:
            # Before the close event reaches the session: the engine already decided.
            error: type[BaseException] | None = None
            try:
                stream.write(b"too late")
            except Exception as exc:
                error = type(exc)
            seen.append((self.state, error, self.close_cause))
        original(self, event)

    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        session = await client.connect(f"{base}/s")
        stream = await session.create_bidirectional_stream()
        remote = await sessions.next()
        monkeypatch.setattr(WebTransportSession, "handle_event", spy)
        await remote.close(error_code=9, reason="bye")
        await asyncio.wait_for(session.wait_closed(), WAIT)
    assert seen == [(SessionState.CLOSED, SessionClosedError, CloseCause.PEER_CLOSE)]


async def test_datagram_counters_come_from_the_engine(echo_server, client: WebTransportClient) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    for i in range(3):
        await session.datagrams.send(b"x" * (i + 1))
        await session.datagrams.receive(timeout=WAIT)
    engine = session.protocol_handler
    assert engine is not None
    snapshot = engine.session_snapshot(session.session_id)
    assert snapshot is not None
    stats = session.datagrams.get_stats()
    assert (stats["datagrams_sent"], stats["bytes_sent"]) == (snapshot.datagrams_sent, snapshot.datagram_bytes_sent) \
        == (3, 6)
    assert (stats["datagrams_received"], stats["bytes_received"]) == (3, 6)
    assert session.stats.datagrams_sent == 3 and session.stats.datagrams_received == 3
    diagnostics = await session.diagnostics()
    assert diagnostics.datagram_bytes_received == snapshot.datagram_bytes_received == 6


# ---------------------------------------------------------------------- announced writability


async def test_a_datagram_to_one_of_50_sessions_wakes_no_other_waiter(
        server_config: ServerConfig, client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    woken: Counter[int] = Counter()
    original_wake = Waiters.wake

    def counting_wake(self: Waiters) -> None:
        if len(self):
            woken[id(self)] += 1
        original_wake(self)

    sessions = SessionQueue()
    # No bidirectional stream credit: every client session has a stream opener blocked on credit.
    config = server_config.replace(initial_max_streams_bidi=0)
    async with running_server(config, {"/s": sessions.handler}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        first = await client.connect(f"{base}/s")
        ours = [first, *await open_more(first, 49)]
        theirs = [await sessions.next() for _ in ours]
        by_id = {s.session_id: s for s in theirs}
        receivers = [asyncio.ensure_future(s.datagrams.receive()) for s in ours]
        openers = [asyncio.ensure_future(s.create_bidirectional_stream(timeout=WAIT)) for s in ours]
        started = asyncio.Event()
        asyncio.get_running_loop().call_soon(started.set)  # runs after every task's first step
        await started.wait()
        pending = {s.session_id: list((await s.diagnostics()).pending_bidi_stream_futures) for s in ours}
        assert all(len(futures) == 1 for futures in pending.values())
        datagram_waiters = {s.session_id: id(s.datagrams._waiters) for s in ours}  # noqa: SLF001 - test spy
        monkeypatch.setattr(Waiters, "wake", counting_wake)
        target = ours[17]
        await by_id[target.session_id].datagrams.send(b"only for 17")
        assert await asyncio.wait_for(receivers[17], WAIT) == b"only for 17"
        others = [s for s in ours if s is not target]
        assert all(not receivers[i].done() for i, s in enumerate(ours) if s is not target)
        assert set(woken) == {datagram_waiters[target.session_id]}
        assert not any(f.done() for s in others for f in pending[s.session_id])
        for task in receivers + openers:
            task.cancel()
        await asyncio.gather(*receivers, *openers, return_exceptions=True)


async def test_a_stream_opener_waiting_for_credit_resumes_when_the_peer_grants_it(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    sessions = SessionQueue()
    async with running_server(server_config.replace(initial_max_streams_uni=0), {"/s": sessions.handler}) as (_, b):
        session = await client.connect(f"{b}/s")
        remote = await sessions.next()
        opener = asyncio.ensure_future(session.create_unidirectional_stream(timeout=WAIT))
        blocked = asyncio.Event()
        remote.events.on(EventType.SESSION_STREAMS_BLOCKED, lambda _e: blocked.set())
        await asyncio.wait_for(blocked.wait(), WAIT)  # WT_STREAMS_BLOCKED reached the server
        assert not opener.done()
        await remote.grant_streams_credit(max_streams=1, is_unidirectional=True)
        stream = await asyncio.wait_for(opener, WAIT)
        await stream.write_all(b"granted", end_stream=True)
        incoming = await remote.accept_unidirectional_stream(timeout=WAIT)
        assert await incoming.read() == b"granted"


async def test_a_writer_blocked_on_a_full_window_resumes_on_acknowledgements(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    window = 64 * 1024
    reading = asyncio.Event()
    received: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def slow_reader(session: WebTransportSession) -> None:
        stream = await session.accept_bidirectional_stream(timeout=WAIT)
        await reading.wait()
        total = 0
        async for chunk in stream:
            total += len(chunk)
        received.set_result(total)
        await session.wait_closed()

    writable: list[ev.StreamWritable] = []
    async with running_server(server_config.replace(stream_buffer_size=window), {"/r": slow_reader}) as (_, base), \
            WebTransportClient(config=client_config.replace(stream_buffer_size=window)) as client:
        session = await client.connect(f"{base}/r")
        stream = await session.create_bidirectional_stream()
        original = stream.handle_event

        def spy(event: ev.EngineEvent) -> None:
            if isinstance(event, ev.StreamWritable):
                writable.append(event)
            original(event)

        stream.handle_event = spy  # type: ignore[method-assign]
        payload = b"w" * (8 * window)
        writer = asyncio.ensure_future(stream.write_all(payload, end_stream=True, chunk_size=window))
        with pytest.raises(asyncio.TimeoutError):  # the peer reads nothing: the writer must wait
            await asyncio.wait_for(asyncio.shield(writer), 0.5)
        assert stream.write_buffer_size > window // 2
        reading.set()
        await asyncio.wait_for(writer, WAIT)
        assert await asyncio.wait_for(received, WAIT) == len(payload)
        assert writable and all(e.stream_id == stream.stream_id for e in writable)


# ---------------------------------------------------------------------- close causes


async def test_close_cause_is_set_before_session_closed_and_in_its_data(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        session = await client.connect(f"{base}/s")
        remote = await sessions.next()
        assert session.close_cause is None and remote.close_cause is None
        events: list[tuple[Any, CloseCause | None]] = []
        session.events.on(EventType.SESSION_CLOSED, lambda e: events.append((e.data["cause"], session.close_cause)))
        await remote.close(error_code=3, reason="done")
        await asyncio.wait_for(session.wait_closed(), WAIT)
        assert events == [(CloseCause.PEER_CLOSE, CloseCause.PEER_CLOSE)]
        assert remote.close_cause is CloseCause.LOCAL_CLOSE
        assert (session.close_code, session.close_reason) == (3, "done")
        summary = await session.get_summary()
        assert summary["close_cause"] == "peer-close"


async def test_closing_the_connection_gives_connection_closed_or_local_close(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        session = await client.connect(f"{base}/s")
        remote = await sessions.next()
        connection = remote.connection
        assert connection is not None
        await connection.close()
        await asyncio.wait_for(session.wait_closed(), WAIT)
        # Each open session is closed with WT_CLOSE_SESSION first, then the connection.
        assert remote.close_cause is CloseCause.LOCAL_CLOSE
        assert session.close_cause is CloseCause.PEER_CLOSE


# ---------------------------------------------------------------------- typed streams


async def test_typed_accept_and_iterators_keep_the_kinds_apart(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        session = await client.connect(f"{base}/s")
        remote = await sessions.next()
        uni = await session.create_unidirectional_stream()
        await uni.write_all(b"u1", end_stream=True)
        bidi = await session.create_bidirectional_stream()
        await bidi.write_all(b"b1", end_stream=True)
        got_bidi = await remote.accept_bidirectional_stream(timeout=WAIT)
        got_uni = await remote.accept_unidirectional_stream(timeout=WAIT)
        assert isinstance(got_bidi, WebTransportStream) and await got_bidi.read() == b"b1"
        assert isinstance(got_uni, WebTransportReceiveStream) and await got_uni.read() == b"u1"
        second = await session.create_bidirectional_stream()
        await second.write_all(b"b2", end_stream=True)
        async for stream in remote.incoming_bidirectional_streams():
            assert await stream.read() == b"b2"
            break
        with pytest.raises(TimeoutError):
            await remote.accept_unidirectional_stream(timeout=0.2)


async def test_incoming_streams_still_yields_both_kinds_in_arrival_order(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        session = await client.connect(f"{base}/s")
        remote = await sessions.next()
        for index in range(4):
            if index % 2:
                stream: Any = await session.create_unidirectional_stream()
            else:
                stream = await session.create_bidirectional_stream()
            await stream.write_all(str(index).encode(), end_stream=True)
            accepted = await remote.accept_stream(timeout=WAIT)
            assert isinstance(accepted, WebTransportReceiveStream if index % 2 else WebTransportStream)
            assert isinstance(accepted, (WebTransportStream, WebTransportReceiveStream))
            assert await accepted.read() == str(index).encode()


# ---------------------------------------------------------------------- the session-end rule


async def _iterators_when_peer_closes(server_config: ServerConfig, client: WebTransportClient, *,
                                      code: int) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    ready = asyncio.Event()
    done = asyncio.Event()

    async def handler(session: WebTransportSession) -> None:
        stream = await session.accept_bidirectional_stream(timeout=WAIT)

        async def run(name: str, body: Any) -> None:
            try:
                await body
                outcome[name] = "ended"
            except SessionClosedError as exc:
                outcome[name] = (exc.error_code, exc.reason, getattr(exc, "cause", None))

        async def chunks() -> None:
            async for _ in stream:
                pass

        async def datagrams() -> None:
            async for _ in session.datagrams:
                pass

        async def incoming() -> None:
            async for _ in session.incoming_streams():
                pass

        tasks = [asyncio.ensure_future(run(name, body)) for name, body in
                 (("stream", chunks()), ("datagrams", datagrams()), ("incoming", incoming()))]
        ready.set()
        await asyncio.gather(*tasks)
        try:
            await stream.read(1)
            outcome["read"] = "returned"
        except SessionClosedError as exc:
            outcome["read"] = (exc.error_code, exc.reason, getattr(exc, "cause", None))
        done.set()

    async with running_server(server_config, {"/s": handler}) as (_, base):
        session = await client.connect(f"{base}/s")
        stream = await session.create_bidirectional_stream()
        stream.write(b"hello")
        await asyncio.wait_for(ready.wait(), WAIT)
        await session.close(error_code=code, reason="leaving" if code else "")
        await asyncio.wait_for(done.wait(), WAIT)
    return outcome


async def test_a_clean_peer_close_ends_every_iterator_quietly(server_config: ServerConfig,
                                                              client: WebTransportClient) -> None:
    outcome = await _iterators_when_peer_closes(server_config, client, code=0)
    assert outcome == {"stream": "ended", "datagrams": "ended", "incoming": "ended",
                       "read": (0, "", CloseCause.PEER_CLOSE)}


async def test_an_error_close_raises_session_closed_error_from_every_iterator(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    outcome = await _iterators_when_peer_closes(server_config, client, code=7)
    expected = (7, "leaving", CloseCause.PEER_CLOSE)
    assert outcome == {"stream": expected, "datagrams": expected, "incoming": expected, "read": expected}


# ---------------------------------------------------------------------- ready() before acceptance


async def test_ready_in_middleware_raises_at_once_instead_of_deadlocking(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    errors: list[BaseException] = []

    async def middleware(request: SessionRequest) -> int | None:
        try:
            await asyncio.wait_for(request.session.ready(timeout=30), 5)
        except Exception as exc:
            errors.append(exc)
        return None

    app = ServerApp(config=server_config, middleware=[middleware])

    @app.route("/m")
    async def handler(session: WebTransportSession) -> None:
        await session.ready(timeout=WAIT)  # in the handler it is accepted: returns at once
        await session.wait_closed()

    async with app:
        host, port = app.local_address
        session = await client.connect(f"https://{host}:{port}/m")
        assert session.is_ready
        await session.close()  # else the app's close waits out its whole drain for it
    assert len(errors) == 1 and type(errors[0]) is SessionError
    assert "middleware" in str(errors[0]) and "handler" in str(errors[0])


# ---------------------------------------------------------------------- keep-alive


async def test_keep_alive_follows_the_smaller_idle_timeout(server_config: ServerConfig,
                                                           client_config: ClientConfig) -> None:
    sessions = SessionQueue()
    # The server times out after 1 s of silence; the client keeps the default 15 s ping.
    async with running_server(server_config.replace(idle_timeout=1.0), {"/s": sessions.handler}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/s")
        remote = await sessions.next()
        server_connection = remote.connection
        assert server_connection is not None
        assert server_connection.keep_alive_interval == 0.5
        with pytest.raises(asyncio.TimeoutError):  # idle for 3 idle timeouts: still alive
            await asyncio.wait_for(session.wait_closed(), 3.0)
        assert session.is_ready and server_connection.keep_alive_pings >= 3


async def test_a_connection_without_sessions_is_not_kept_alive_forever(server_config: ServerConfig,
                                                                       client_config: ClientConfig) -> None:
    async with running_server(server_config.replace(idle_timeout=1.0), {}) as (server, base):
        host, port = server.local_address
        config = client_config.replace(idle_timeout=1.0, keep_alive_interval=0.2)
        endpoint = await UdpEndpoint.open(local_addr=("127.0.0.1", 0))
        quic_configuration = build_quic_configuration(config, server_name="localhost")
        connection = WebTransportConnection(config=config, endpoint=endpoint, quic_configuration=quic_configuration,
                                            remote_address=(host, port), owns_endpoint=True)
        endpoint.attach_client(connection)
        connection.connect()
        await connection.wait_connected(timeout=WAIT)
        # No session ever: pings stop after one idle timeout and QUIC's idle timeout reaps it.
        await asyncio.wait_for(connection.wait_closed(), 8.0)
        assert 1 <= connection.keep_alive_pings <= 8


# ---------------------------------------------------------------------- client connection lifetime


@pytest.mark.parametrize("extra", [0, 3])
async def test_the_last_session_closing_closes_a_client_connection(
        server_config: ServerConfig, client: WebTransportClient, extra: int) -> None:
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        first = await client.connect(f"{base}/s")
        connection = first.connection
        assert connection is not None
        more = await open_more(first, extra)
        assert len(connection.sessions) == 1 + extra
        await first.close()
        assert not connection.is_closed or extra == 0
        for session in more:
            await session.close()
        await asyncio.wait_for(connection.wait_closed(), WAIT)
        assert client.connections == []


async def test_client_close_closes_connections_with_several_sessions(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        client = WebTransportClient(config=client_config)
        first = await client.connect(f"{base}/s")
        await open_more(first, 2)
        await first.close()  # the connection still carries two sessions
        connection = first.connection
        assert connection is not None and not connection.is_closed
        await client.close()
        assert connection.is_closed


# ---------------------------------------------------------------------- qlog and logging


async def test_quic_log_dir_writes_one_qlog_per_connection(server_config: ServerConfig,
                                                           client_config: ClientConfig, tmp_path: Path) -> None:
    config = client_config.replace(quic_log_dir=str(tmp_path))
    async with running_server(server_config, {"/s": SessionQueue().handler}) as (_, base), \
            WebTransportClient(config=config) as client:
        session = await client.connect(f"{base}/s")
        await session.close()
    names = [name for name in os.listdir(tmp_path) if name.endswith(".qlog")]
    assert len(names) == 1
    with open(tmp_path / names[0]) as qlog:  # noqa: ASYNC230 - a small local file, after the run
        assert '"qlog_format"' in qlog.read()


def test_quic_log_dir_must_be_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="quic_log_dir"):
        ClientConfig(quic_log_dir=os.fspath(tmp_path / "missing"))


async def test_session_lifecycle_is_logged_at_info(server_config: ServerConfig, client: WebTransportClient,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport.session")
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        session = await client.connect(f"{base}/s")
        remote = await sessions.next()
        await session.close(error_code=5, reason="over")
        await asyncio.wait_for(remote.wait_closed(), WAIT)
    lines = [r.getMessage() for r in caplog.records if r.name == "pywebtransport.session"]
    assert any("requested" in line for line in lines)
    assert any("accepted" in line for line in lines)
    closed = [line for line in lines if "closed" in line and "code=5" in line]
    assert len(closed) == 2
    assert any("cause=peer-close" in line for line in closed) and any("cause=local-close" in line for line in closed)
    assert all("duration=" in line and "bytes_sent=" in line for line in closed)


async def test_debug_logs_engine_events(server_config: ServerConfig, client_config: ClientConfig,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pywebtransport.connection")
    async with running_server(server_config, {"/s": SessionQueue().handler}) as (_, base), \
            WebTransportClient(config=client_config.replace(debug=True)) as client:
        session = await client.connect(f"{base}/s")
        await session.close()
    assert any("SessionEstablished" in r.getMessage() for r in caplog.records if r.name == "pywebtransport.connection")
