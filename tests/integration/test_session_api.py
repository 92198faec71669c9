"""The session API end to end: our client against our server over UDP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import builtins
import inspect
import warnings

import pytest

from pywebtransport import constants as c
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection import WebTransportConnection
from pywebtransport.events import EventType
from pywebtransport.exceptions import (
    CertificateError,
    DatagramTooLargeError,
    HandshakeError,
    SessionClosedError,
    SessionRejectedError,
    StreamResetError,
    StreamStopSendingError,
    TimeoutError,
)
from pywebtransport.session import SessionDiagnostics, WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream, WebTransportSendStream, WebTransportStream
from pywebtransport.types import CloseCause, ConnectionState, SessionState, StreamState

from .conftest import echo_handler, eventually, running_server

pytestmark = pytest.mark.timeout(60)


def suspended(task: asyncio.Task[object]) -> bool:
    """The task has run up to an ``await`` and is waiting there (not merely scheduled)."""
    return inspect.getcoroutinestate(task.get_coro()) == inspect.CORO_SUSPENDED


async def test_connect_gives_a_ready_session_with_its_identity(echo_server, client) -> None:
    server, base = echo_server
    session = await client.connect(f"{base}/echo?x=1", headers={"x-trace": "t1"})
    assert session.is_ready and not session.is_closed
    assert session.state is SessionState.CONNECTED
    assert session.path == "/echo?x=1"
    assert session.session_id == 0
    assert session.headers[":protocol"] in ("webtransport", "webtransport-h3")
    assert session.headers["x-trace"] == "t1"
    connection = session.connection
    assert isinstance(connection, WebTransportConnection)
    assert connection.state is ConnectionState.CONNECTED and connection.is_client
    assert session.protocol_handler is connection.protocol_handler
    await session.ready(timeout=1)  # already ready: returns at once
    await session.initialize()  # idempotent, kept for the older API


async def test_server_sees_path_headers_and_origin(server_config, certificate) -> None:
    seen: asyncio.Future[WebTransportSession] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        seen.set_result(session)
        await session.wait_closed()

    config = ClientConfig(server_certificate_hashes=[certificate.sha256], origin="https://app.test",
                          headers={"authorization": "Bearer t"})
    async with running_server(server_config, {"/room": handler}) as (_, base), \
            WebTransportClient(config=config) as client:
        session = await client.connect(f"{base}/room")
        remote = await asyncio.wait_for(seen, 5)
        assert remote.path == "/room"
        assert remote.headers["origin"] == "https://app.test"
        assert remote.headers["authorization"] == "Bearer t"
        assert remote.headers[":authority"] == base.removeprefix("https://")
        # The client asked before the server's SETTINGS came; its headers are the ones sent.
        assert session.headers[":protocol"] == remote.headers[":protocol"] == "webtransport-h3"
        assert session.headers == remote.headers
        await session.close()


async def test_unknown_path_is_rejected_with_404(echo_server, client) -> None:
    _, base = echo_server
    with pytest.raises(SessionRejectedError) as info:
        await client.connect(f"{base}/nowhere")
    assert info.value.status_code == 404


async def test_a_decider_can_reject_with_its_own_status(server_config, client) -> None:
    async def decider(session: WebTransportSession) -> int | None:
        return 429 if session.headers.get("x-flood") else None

    server = WebTransportServer_with(server_config, decider)
    async with server:
        host, port = server.local_address
        with pytest.raises(SessionRejectedError) as info:
            await client.connect(f"https://{host}:{port}/echo", headers={"x-flood": "1"})
        assert info.value.status_code == 429
        session = await client.connect(f"https://{host}:{port}/echo")
        assert session.is_ready
        await session.close()


def WebTransportServer_with(config: ServerConfig, decider):  # noqa: N802 - a tiny factory
    from pywebtransport.server import WebTransportServer

    server = WebTransportServer(config=config, decider=decider)
    server.add_route("/echo", echo_handler)
    return server


async def test_wrong_pinned_certificate_hash_fails_the_connection(echo_server) -> None:
    _, base = echo_server
    async with WebTransportClient(config=ClientConfig(server_certificate_hashes=[b"\x00" * 32],
                                                      connect_timeout=5)) as client:
        with pytest.raises(CertificateError):
            await client.connect(f"{base}/echo")


async def test_tls_is_verified_by_default(echo_server) -> None:
    _, base = echo_server
    async with WebTransportClient(config=ClientConfig(connect_timeout=5)) as client:
        with pytest.raises((HandshakeError, builtins.TimeoutError)):
            await client.connect(f"{base}/echo")


async def test_verification_can_be_turned_off_for_development(echo_server) -> None:
    _, base = echo_server
    async with WebTransportClient(config=ClientConfig(verify_mode=False)) as client:
        session = await client.connect(f"{base}/echo")
        assert session.is_ready


async def test_ca_file_verification_accepts_the_self_signed_certificate(echo_server, certificate) -> None:
    _, base = echo_server
    config = ClientConfig(ca_certs=str(certificate.cert_path))
    async with WebTransportClient(config=config) as client:
        session = await client.connect(base.replace("127.0.0.1", "localhost") + "/echo")
        assert session.is_ready


async def test_connect_to_a_silent_port_times_out() -> None:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        async with WebTransportClient(config=ClientConfig(verify_mode=False)) as client:
            with pytest.raises(TimeoutError) as info:
                await client.connect(f"https://127.0.0.1:{port}/x", timeout=0.5)
            assert isinstance(info.value, builtins.TimeoutError)
    finally:
        sock.close()


async def test_bidirectional_echo_with_the_streams_vocabulary(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    assert isinstance(stream, WebTransportStream)
    stream.write(b"line one\nline two\nrest")
    await stream.drain()
    assert await stream.readline() == b"line one\n"
    assert await stream.readuntil(b"two") == b"line two"
    assert await stream.readexactly(2) == b"\nr"
    await stream.close()
    assert await stream.read() == b"est"
    assert await stream.read() == b""
    assert stream.at_eof
    await asyncio.wait_for(stream.wait_closed(), 5)


async def test_readline_waits_for_the_rest_of_a_line_that_arrives_in_parts(echo_server, client) -> None:
    """A partial line waits for more bytes. (It used to spin: the wait for data returned at
    once while the partial line was buffered, and the event loop never ran again.)"""
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    stream.write(b"line one\npar")
    assert await asyncio.wait_for(stream.readline(), 5) == b"line one\n"
    reader = asyncio.ensure_future(stream.readline())
    await eventually(lambda: suspended(reader))  # holding b"par" (or nothing yet), waiting
    stream.write(b"tial\n")
    assert await asyncio.wait_for(reader, 5) == b"partial\n"


async def test_readuntil_finds_a_separator_split_between_arrivals(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    stream.write(b"head\r\n")
    reader = asyncio.ensure_future(stream.readuntil(b"\r\n\r\n"))
    await eventually(lambda: suspended(reader) and stream.bytes_received == 6)
    stream.write(b"\r\nbody")
    assert await asyncio.wait_for(reader, 5) == b"head\r\n\r\n"
    await stream.close()
    assert await asyncio.wait_for(stream.read(), 5) == b"body"


async def test_a_line_longer_than_half_the_stream_window_still_arrives(echo_server, certificate) -> None:
    """readline holds a partial line unread; the window used to grow only as bytes were
    taken, by half a window at a time, so a line ending past it waited forever. While it
    waits, readuntil now gives back credit for what it holds."""
    _, base = echo_server
    window = 16 * 1024
    config = ClientConfig(server_certificate_hashes=[certificate.sha256], stream_buffer_size=window)
    async with WebTransportClient(config=config) as client:
        session = await client.connect(f"{base}/echo")
        stream = await session.create_bidirectional_stream()
        short, long = b"a" * 3000 + b"\n", b"b" * (window - 2000) + b"\n"  # the second ends past the window
        stream.write(short + long)
        assert await asyncio.wait_for(stream.readline(), 5) == short
        assert await asyncio.wait_for(stream.readline(), 10) == long
        stream.write(b"next\n")  # the credit accounting is still right afterwards
        assert await asyncio.wait_for(stream.readline(), 5) == b"next\n"


async def test_many_short_lines_from_one_buffer_come_back_in_order(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    lines = [b"line %05d\n" % i for i in range(5000)]
    stream.write(b"".join(lines) + b"tail")
    await stream.close()
    got = [await asyncio.wait_for(stream.readline(), 5) for _ in lines]
    assert got == lines
    assert await asyncio.wait_for(stream.readline(), 5) == b"tail"  # at EOF: the rest
    assert await stream.read() == b""


async def test_one_mebibyte_round_trip_is_byte_exact(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    payload = bytes(range(256)) * 4096
    writer = asyncio.ensure_future(stream.write_all(payload, end_stream=True))
    received = await stream.read()
    await writer
    assert received == payload
    assert stream.bytes_sent == len(payload) and stream.bytes_received == len(payload)


async def test_readexactly_reports_an_early_end(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    await stream.write_all(b"short", end_stream=True)
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await stream.readexactly(10)
    assert info.value.partial == b"short"


async def test_async_iteration_yields_chunks_until_eof(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    await stream.write_all(b"x" * 200_000, end_stream=True)
    chunks = [chunk async for chunk in stream]
    assert b"".join(chunks) == b"x" * 200_000 and len(chunks) >= 2


async def test_unidirectional_streams_both_ways(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    up = await session.create_unidirectional_stream()
    assert isinstance(up, WebTransportSendStream)
    await up.write_all(b"to the server", end_stream=True)
    reply = await session.accept_stream(timeout=5)
    assert isinstance(reply, WebTransportReceiveStream)
    assert await reply.read() == b"to the server"


async def test_hundred_concurrent_streams_in_one_session(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")

    async def one(i: int) -> bytes:
        stream = await session.create_bidirectional_stream()
        await stream.write_all(f"stream-{i}".encode() * 50, end_stream=True)
        return await stream.read()

    results = await asyncio.gather(*(one(i) for i in range(100)))
    assert results == [f"stream-{i}".encode() * 50 for i in range(100)]
    stats = await session.get_session_stats()
    assert stats["streams_created"] >= 100


async def test_several_sessions_on_one_connection(echo_server, client) -> None:
    _, base = echo_server
    first = await client.connect(f"{base}/echo")
    connection = first.connection
    assert connection is not None
    host = base.removeprefix("https://")
    second = await connection.open_session(path="/echo", authority=host)
    assert second.session_id != first.session_id and second.connection is connection
    assert {s.session_id for s in connection.sessions} == {first.session_id, second.session_id}
    for session, word in ((first, b"first"), (second, b"second")):
        stream = await session.create_bidirectional_stream()
        await stream.write_all(word, end_stream=True)
        assert await stream.read() == word
    await first.close()
    assert second.is_ready
    stream = await second.create_bidirectional_stream()
    await stream.write_all(b"still", end_stream=True)
    assert await stream.read() == b"still"


async def test_close_code_and_reason_reach_the_server(server_config, client) -> None:
    closed: asyncio.Future[tuple[int | None, str | None]] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()
        closed.set_result((session.close_code, session.close_reason))

    async with running_server(server_config, {"/c": handler}) as (_, base):
        session = await client.connect(f"{base}/c")
        await session.close(error_code=4000, reason="client is leaving")
        assert session.is_closed and session.state is SessionState.CLOSED
        assert await asyncio.wait_for(closed, 5) == (4000, "client is leaving")


async def test_close_from_the_server_reaches_the_client(server_config, client) -> None:
    async def handler(session: WebTransportSession) -> None:
        await session.close(error_code=17, reason="server is done")

    async with running_server(server_config, {"/bye": handler}) as (_, base):
        session = await client.connect(f"{base}/bye")
        await asyncio.wait_for(session.wait_closed(), 5)
        assert (session.close_code, session.close_reason) == (17, "server is done")
        with pytest.raises(SessionClosedError):
            await session.create_bidirectional_stream()


async def test_close_accepts_the_deprecated_code_alias(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await session.close(code=9, reason="old api")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert session.close_code == 9


async def test_close_connection_closes_the_connection_too(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    connection = session.connection
    assert connection is not None
    await session.close(close_connection=True)
    assert connection.is_closed


async def test_async_with_closes_the_session(echo_server, client) -> None:
    _, base = echo_server
    async with await client.connect(f"{base}/echo") as session:
        assert session.is_ready
    assert session.is_closed


async def test_session_events_report_lifecycle(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    seen: list[str] = []
    session.events.on(EventType.STREAM_OPENED, lambda e: seen.append("opened"))
    session.events.on(EventType.SESSION_CLOSED, lambda e: seen.append(f"closed:{e.data['error_code']}"))
    await session.create_unidirectional_stream()
    await session.close(error_code=3)
    await asyncio.wait_for(session.wait_closed(), 5)
    assert seen == ["opened", "closed:3"]


async def test_stream_creation_waits_for_credit_and_times_out(server_config, client) -> None:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()  # never reads, never closes streams

    config = server_config.replace(initial_max_streams_bidi=1, flow_control_auto_extend=False)
    async with running_server(config, {"/tight": handler}) as (_, base):
        session = await client.connect(f"{base}/tight")
        first = await session.create_bidirectional_stream(timeout=2)
        first.write(b"hold")
        with pytest.raises(TimeoutError) as info:
            await session.create_bidirectional_stream(timeout=0.3)
        assert isinstance(info.value, builtins.TimeoutError)
        diagnostics = await session.diagnostics()
        assert diagnostics.peer_max_streams_bidi == 1
        assert diagnostics.pending_bidi_stream_futures == []


async def test_granted_stream_credit_unblocks_a_waiting_creator(server_config, client) -> None:
    listening = asyncio.Event()
    granted = asyncio.Event()

    async def handler(session: WebTransportSession) -> None:
        blocked = asyncio.Event()
        session.events.on(EventType.SESSION_STREAMS_BLOCKED, lambda _e: blocked.set())
        listening.set()
        await blocked.wait()  # the client's creator waits for credit (it sent WT_STREAMS_BLOCKED)
        await session.grant_streams_credit(max_streams=5, is_unidirectional=True)
        granted.set()
        await session.wait_closed()

    config = server_config.replace(initial_max_streams_uni=1, flow_control_auto_extend=False)
    async with running_server(config, {"/g": handler}) as (_, base):
        session = await client.connect(f"{base}/g")
        await asyncio.wait_for(listening.wait(), 5)
        await session.create_unidirectional_stream()
        second = await session.create_unidirectional_stream(timeout=5)
        assert granted.is_set() and isinstance(second, WebTransportSendStream)
        assert (await session.diagnostics()).peer_max_streams_uni == 5


async def test_read_timeout_raises_timeout_error(server_config, certificate) -> None:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    config = ClientConfig(server_certificate_hashes=[certificate.sha256], read_timeout=0.2)
    async with running_server(server_config, {"/quiet": handler}) as (_, base), \
            WebTransportClient(config=config) as client:
        session = await client.connect(f"{base}/quiet")
        stream = await session.create_bidirectional_stream()
        with pytest.raises(TimeoutError):
            await stream.read(10)


async def test_cancelling_a_read_leaves_the_stream_usable(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    reader = asyncio.ensure_future(stream.read(5))
    await eventually(lambda: suspended(reader))  # the read is waiting for data
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    stream.write(b"after")
    assert await asyncio.wait_for(stream.readexactly(5), 5) == b"after"


async def test_peer_reset_code_reaches_the_reader(server_config, client) -> None:
    async def handler(session: WebTransportSession) -> None:
        stream = await session.accept_stream(timeout=5)
        assert isinstance(stream, WebTransportStream)
        await stream.readexactly(3)
        stream.abort(77)
        await session.wait_closed()

    async with running_server(server_config, {"/reset": handler}) as (_, base):
        session = await client.connect(f"{base}/reset")
        stream = await session.create_bidirectional_stream()
        stream.write(b"abc")
        with pytest.raises(StreamResetError) as info:
            await asyncio.wait_for(stream.read(), 5)
        assert info.value.error_code == 77


async def test_stop_receiving_code_reaches_the_writer(server_config, client) -> None:
    result: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        stream = await session.accept_stream(timeout=5)
        assert isinstance(stream, WebTransportStream)
        stream.write(b"x" * 1000)
        await stream.drain()
        # STOP_SENDING has no event of its own: it ends the sending side (the state changes).
        await eventually(lambda: stream.state is not StreamState.OPEN, timeout=5)
        try:
            stream.write(b"x" * 1000)
        except StreamStopSendingError as exc:
            result.set_result(exc.error_code or 0)
        else:
            result.set_exception(AssertionError(f"the write after STOP_SENDING went through ({stream.state})"))
        await session.wait_closed()

    async with running_server(server_config, {"/stop": handler}) as (_, base):
        session = await client.connect(f"{base}/stop")
        stream = await session.create_bidirectional_stream()
        stream.write(b"hi")
        await stream.readexactly(1000)
        stream.stop_receiving(88)
        assert await asyncio.wait_for(result, 5) == 88


async def test_a_slow_reader_stalls_a_fast_writer_without_unbounded_memory(server_config, certificate) -> None:
    reader_gate = asyncio.Event()
    received: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        stream = await session.accept_stream(timeout=5)
        await reader_gate.wait()
        total = 0
        async for chunk in stream:
            total += len(chunk)
        received.set_result(total)

    window = 256 * 1024
    server_cfg = server_config.replace(stream_buffer_size=window)
    client_cfg = ClientConfig(server_certificate_hashes=[certificate.sha256], stream_buffer_size=window)
    async with running_server(server_cfg, {"/slow": handler}) as (server, base), \
            WebTransportClient(config=client_cfg) as client:
        session = await client.connect(f"{base}/slow")
        stream = await session.create_unidirectional_stream()
        written = 0
        with pytest.raises(asyncio.TimeoutError):
            async def pump() -> None:
                nonlocal written
                while True:
                    stream.write(b"y" * 65536)
                    written += 65536
                    await stream.drain()
            await asyncio.wait_for(pump(), 1.0)
        # The writer is stuck: what it queued is bounded by the windows, not by the 1 s of writing.
        assert written <= 4 * window + 65536
        assert stream.write_buffer_size <= 2 * window + 65536
        reader_gate.set()
        await stream.close()
        assert await asyncio.wait_for(received, 10) == written


async def test_datagrams_round_trip_and_count(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    transport = await session.datagrams  # the older API awaited it
    assert transport is session.datagrams
    limit = transport.max_datagram_size
    assert 1000 < limit < 1400
    await session.send_datagram(data=b"ping")
    assert await transport.receive(timeout=5) == b"ping"
    await transport.send(b"m" * limit)
    assert await transport.receive(timeout=5) == b"m" * limit
    with pytest.raises(DatagramTooLargeError):
        await transport.send(b"m" * (limit + 1))
    stats = transport.get_stats()
    assert stats["datagrams_sent"] == 2 and stats["datagrams_received"] == 2
    diagnostics = await session.diagnostics()
    assert diagnostics.datagrams_sent == 2 and diagnostics.datagram_bytes_received == 4 + limit


async def test_datagram_receive_times_out_and_iteration_ends_on_close(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    with pytest.raises(TimeoutError):
        await session.datagrams.receive(timeout=0.1)

    collected: list[bytes] = []
    arrived = asyncio.Event()

    async def collect() -> list[bytes]:
        async for datagram in session.datagrams:
            collected.append(datagram)
            arrived.set()
        return collected

    collector = asyncio.ensure_future(collect())
    await session.datagrams.send(b"one")
    await asyncio.wait_for(arrived.wait(), 5)  # the echo came back
    await session.close()
    assert await asyncio.wait_for(collector, 5) == [b"one"]


async def test_diagnostics_report_true_values(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    stream = await session.create_bidirectional_stream()
    await stream.write_all(b"12345", end_stream=True)
    await stream.read()
    await session.create_unidirectional_stream()
    diagnostics = await session.diagnostics()
    assert isinstance(diagnostics, SessionDiagnostics)
    assert diagnostics.session_id == session.session_id == diagnostics.control_stream_id
    assert diagnostics.state is SessionState.CONNECTED and diagnostics.path == "/echo"
    assert diagnostics.local_streams_bidi_opened == 1 and diagnostics.local_streams_uni_opened == 1
    assert diagnostics.local_data_sent == 5 and diagnostics.peer_data_sent == 5
    assert diagnostics.local_max_data == c.DEFAULT_SESSION_MAX_DATA
    assert diagnostics.peer_max_data >= c.DEFAULT_SESSION_MAX_DATA
    assert diagnostics.ready_at is not None and diagnostics.closed_at is None
    await session.grant_data_credit(max_data=c.DEFAULT_SESSION_MAX_DATA * 2)
    assert (await session.diagnostics()).local_max_data == c.DEFAULT_SESSION_MAX_DATA * 2
    await session.close(error_code=5, reason="x")
    after = await session.diagnostics()
    assert (after.close_code, after.close_reason) == (5, "x") and after.closed_at is not None


async def test_incoming_streams_iteration_ends_when_the_session_closes(server_config, client) -> None:
    delivered = asyncio.Event()

    async def handler(session: WebTransportSession) -> None:
        s = await session.create_unidirectional_stream()
        await s.write_all(b"a", end_stream=True)
        await delivered.wait()  # the client's iteration yielded the stream
        await session.close()

    async with running_server(server_config, {"/it": handler}) as (_, base):
        session = await client.connect(f"{base}/it")
        streams = []
        async for stream in session.incoming_streams():
            streams.append(stream)
            delivered.set()
        assert len(streams) == 1 and isinstance(streams[0], WebTransportReceiveStream)


async def test_server_close_ends_client_sessions(server_config, client) -> None:
    async with running_server(server_config, {"/echo": echo_handler}) as (server, base):
        session = await client.connect(f"{base}/echo")
        await server.close()
        await asyncio.wait_for(session.wait_closed(), 5)
        assert session.is_closed


async def test_connection_diagnostics_and_close(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    connection = session.connection
    assert connection is not None
    info = connection.diagnostics()
    assert info["state"] == "connected" and info["sessions"] == 1
    assert info["dialect"] == "draft-15"
    assert info["remote_address"][1] == int(base.rsplit(":", 1)[1])
    await connection.close()
    assert session.is_closed and connection.state is ConnectionState.CLOSED


async def test_graceful_server_shutdown_drains_sessions_and_refuses_new_ones(server_config, client) -> None:
    drained = asyncio.Event()

    async def handler(session: WebTransportSession) -> None:
        session.events.on(EventType.SESSION_DRAINING, lambda _e: drained.set())
        await session.wait_closed()

    async with running_server(server_config, {"/d": handler}) as (server, base):
        session = await client.connect(f"{base}/d")
        session.events.on(EventType.SESSION_DRAINING, lambda _e: drained.set())

        async def leave_when_asked() -> None:
            await drained.wait()
            assert session.state is SessionState.DRAINING
            connection = session.connection
            assert connection is not None
            with pytest.raises(Exception, match="GOAWAY"):
                await connection.open_session(path="/d", authority=base.removeprefix("https://"))
            await session.close(error_code=0, reason="drained")

        leaver = asyncio.ensure_future(leave_when_asked())
        await server.close(drain_timeout=5)
        await asyncio.wait_for(leaver, 5)
        assert session.close_reason == "drained"


async def test_concurrent_receivers_are_all_served(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    receivers = [asyncio.ensure_future(session.datagrams.receive(timeout=5)) for _ in range(3)]
    streams = [asyncio.ensure_future(session.accept_stream(timeout=5)) for _ in range(2)]
    await eventually(lambda: all(suspended(task) for task in [*receivers, *streams]))  # all waiting
    for i in range(3):
        await session.datagrams.send(f"d{i}".encode())
    assert sorted(await asyncio.gather(*receivers)) == [b"d0", b"d1", b"d2"]
    for _ in range(2):
        up = await session.create_unidirectional_stream()
        await up.write_all(b"u", end_stream=True)
    assert all(isinstance(s, WebTransportReceiveStream) for s in await asyncio.gather(*streams))


@pytest.mark.parametrize("keep_alive", [0.1, None])
async def test_keep_alive_pings_outlive_the_peers_idle_timeout(server_config, certificate, keep_alive) -> None:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    server_cfg = server_config.replace(idle_timeout=0.6, keep_alive_interval=None)
    client_cfg = ClientConfig(server_certificate_hashes=[certificate.sha256], idle_timeout=0.6,
                              keep_alive_interval=keep_alive)
    async with running_server(server_cfg, {"/idle": handler}) as (_, base), \
            WebTransportClient(config=client_cfg) as client:
        session = await client.connect(f"{base}/idle")
        connection = session.connection
        assert connection is not None
        if keep_alive is None:
            # Nothing is sent: the idle timeout ends the connection, and the session with it.
            await asyncio.wait_for(session.wait_closed(), 10)
            assert session.close_cause is CloseCause.IDLE_TIMEOUT
            assert connection.keep_alive_pings == 0
        else:
            # Each ping is sent one interval (0.1 s) after the previous one: 12 of them span at
            # least 1.2 s, twice the 0.6 s idle timeout, and the session is still open.
            await eventually(lambda: connection.keep_alive_pings >= 12 or session.is_closed, timeout=10)
            assert not session.is_closed and session.is_ready
            assert connection.diagnostics()["keep_alive_pings"] >= 12


async def test_datagram_sent_events_reach_listeners_only_when_there_are_some(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    assert await session.datagrams.send(b"unheard")  # no listener: nothing to see, nothing fails
    sizes: list[int] = []
    session.events.on(EventType.DATAGRAM_SENT, lambda e: sizes.append(e.data["size"]))
    assert await session.datagrams.send(b"heard")
    assert session.datagrams.send_nowait(b"also heard")
    assert sizes == [5, 10]


async def test_stream_opened_and_closed_events_reach_listeners_of_either_kind(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    quiet = await session.create_bidirectional_stream()  # no listener yet: nothing to see, nothing fails
    await quiet.write_all(b"q", end_stream=True)
    assert await quiet.read() == b"q"
    opened: list[int] = []
    closed: list[int] = []
    everything: list[str] = []
    session.events.on(EventType.STREAM_OPENED, lambda e: opened.append(e.data["stream_id"]))
    session.events.on(EventType.STREAM_CLOSED, lambda e: closed.append(e.data["stream_id"]))
    session.events.on_any(lambda e: everything.append(str(e.type)))
    stream = await session.create_bidirectional_stream()
    await stream.write_all(b"x", end_stream=True)
    assert await stream.read() == b"x"
    await asyncio.wait_for(stream.wait_closed(), 5)
    assert opened == [stream.stream_id] and closed == [stream.stream_id]
    assert everything.count(str(EventType.STREAM_OPENED)) == 1
