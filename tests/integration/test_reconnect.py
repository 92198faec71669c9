"""The reconnecting client over real UDP loopback: restarts, clean closes, refusals, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pywebtransport.client import ReconnectingClient, ReconnectPolicy, SessionEnd, WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.events import EventType
from pywebtransport.exceptions import ConnectionRefusedError, SessionClosedError, SessionRejectedError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportStream
from pywebtransport.utils import SelfSignedCertificate

from .conftest import echo_handler, running_server

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0  # generous upper bound for any single wait; the tests finish far sooner
FAST = ReconnectPolicy(initial_delay=0.01, factor=2.0, max_delay=0.05, jitter=0.5, connect_timeout=WAIT)


class _ReconnectLog(logging.Handler):
    """Sets an event when the reconnecting client logs that it will make attempt ``attempt``."""

    def __init__(self, attempt: int) -> None:
        super().__init__(logging.INFO)
        self.attempt = attempt
        self.reached = asyncio.Event()
        self.announced: list[tuple[int, int, float]] = []  # (level, attempt, delay)

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.getMessage().startswith("reconnecting to") and len(args) == 3:
            _, attempt, delay = args
            assert isinstance(attempt, int) and isinstance(delay, float)
            self.announced.append((record.levelno, attempt, delay))
            if attempt >= self.attempt:
                self.reached.set()


def _close_after_one_stream(code: int) -> Callable[[WebTransportSession], Awaitable[None]]:
    async def handler(session: WebTransportSession) -> None:
        stream = await session.accept_stream(timeout=WAIT)
        assert isinstance(stream, WebTransportStream)
        await stream.read()
        await session.close(error_code=code, reason=f"closed with {code}")
    return handler


async def _ask_server_to_close(session: WebTransportSession) -> None:
    stream = await session.create_bidirectional_stream()
    await stream.write_all(b"close please", end_stream=True)
    await asyncio.wait_for(session.wait_closed(), WAIT)


async def _until_closed_or_draining(session: WebTransportSession) -> None:
    """A well-behaved loop body: use the session until it ends or the server asks it to leave."""
    draining = asyncio.ensure_future(session.events.wait_for(EventType.SESSION_DRAINING))
    closed = asyncio.ensure_future(session.wait_closed())
    try:
        await asyncio.wait([draining, closed], return_when=asyncio.FIRST_COMPLETED)
    finally:
        draining.cancel()
        closed.cancel()
        await asyncio.gather(draining, closed, return_exceptions=True)
    await session.close()


async def test_server_restart_on_same_port_reconnects_and_reruns_on_connect(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    logger = logging.getLogger("pywebtransport.client.reconnect")
    log = _ReconnectLog(attempt=2)  # attempt 2 is announced once attempt 1 against the dead port failed
    logger.addHandler(log)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    server_a = WebTransportServer(config=server_config)
    server_a.add_route("/echo", echo_handler)
    await server_a.start()
    host, port = server_a.local_address
    server_b = WebTransportServer(config=server_config.replace(port=port))
    server_b.add_route("/echo", echo_handler)
    connects: asyncio.Queue[WebTransportSession] = asyncio.Queue()
    # Attempts against the dark port fail by refusal (asserted below), not by this timeout: it
    # only bounds each attempt, and must let the first connect succeed on a loaded machine.
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, connect_timeout=WAIT / 2)

    async def on_connect(session: WebTransportSession) -> None:
        await connects.put(session)

    sessions = client.sessions(f"https://{host}:{port}/echo", policy=policy, on_connect=on_connect)
    handed_out: list[WebTransportSession] = []

    async def consume() -> None:
        async for session in sessions:
            handed_out.append(session)
            await _until_closed_or_draining(session)

    task = asyncio.ensure_future(consume())
    try:
        first = await asyncio.wait_for(connects.get(), WAIT)
        assert sessions.connected and sessions.attempts == 1 and sessions.reconnects == 0

        # A restart: the server drains (WT_DRAIN_SESSION + GOAWAY), the client leaves, the port goes dark.
        await server_a.close(drain_timeout=WAIT)
        await asyncio.wait_for(log.reached.wait(), WAIT)
        assert not sessions.connected
        # Attempt 1 found nobody listening: the port's ICMP unreachable is a prompt refusal.
        assert isinstance(sessions.last_error, ConnectionRefusedError)
        await server_b.start()

        second = await asyncio.wait_for(connects.get(), WAIT)
        assert second is not first and first.is_closed and not second.is_closed
        assert handed_out == [first, second]
        assert sessions.connected and sessions.session is second
        assert sessions.reconnects == 1 and sessions.attempts >= 2
        # The new session really works: the restarted server echoes on it.
        stream = await second.create_bidirectional_stream()
        await stream.write_all(b"after restart", end_stream=True)
        assert await asyncio.wait_for(stream.read(), WAIT) == b"after restart"
        assert [attempt for _, attempt, _ in log.announced[:2]] == [1, 2]
        assert all(level == logging.INFO and 0.0 <= delay <= policy.max_delay for level, _, delay in log.announced)
    finally:
        await sessions.aclose()
        await asyncio.wait_for(task, WAIT)
        logger.removeHandler(log)
        logger.setLevel(old_level)
        await server_a.close()
        await server_b.close()
    assert handed_out[-1].is_closed


_CRASHING_SERVER = """
import asyncio, sys
from pywebtransport.config import ServerConfig
from pywebtransport.server import WebTransportServer

async def main():
    server = WebTransportServer(config=ServerConfig(host="127.0.0.1", port=0, certfile=sys.argv[1],
                                                    keyfile=sys.argv[2]))
    async def hold(session):
        await session.wait_closed()
    server.add_route("/echo", hold)
    async with server:
        print(server.local_address[1], flush=True)
        await server.serve_forever()

asyncio.run(main())
"""


async def test_server_crash_is_a_connection_loss_and_reconnects(
        server_config: ServerConfig, certificate: SelfSignedCertificate, client_config: ClientConfig) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_SERVER, str(certificate.cert_path), str(certificate.key_path),
        stdout=asyncio.subprocess.PIPE)
    server_b: WebTransportServer | None = None
    client = WebTransportClient(config=client_config.replace(idle_timeout=0.5, keep_alive_interval=0.1))
    try:
        assert process.stdout is not None
        port = int(await asyncio.wait_for(process.stdout.readline(), 60))
        connects: asyncio.Queue[WebTransportSession] = asyncio.Queue()

        async def on_connect(session: WebTransportSession) -> None:
            await connects.put(session)

        async with client.sessions(f"https://127.0.0.1:{port}/echo", policy=FAST, on_connect=on_connect) as sessions:
            async def consume() -> None:
                async for session in sessions:
                    await session.wait_closed()

            task = asyncio.ensure_future(consume())
            first = await asyncio.wait_for(connects.get(), WAIT)
            process.kill()  # no CONNECTION_CLOSE, no WT_CLOSE_SESSION: only the idle timeout can tell
            await process.wait()
            server_b = WebTransportServer(config=server_config.replace(port=port))
            server_b.add_route("/echo", echo_handler)
            await server_b.start()
            second = await asyncio.wait_for(connects.get(), WAIT)
            assert first.is_closed and not second.is_closed and sessions.reconnects == 1
            assert isinstance(sessions.last_error, SessionClosedError)
            assert SessionEnd.CONNECTION_LOST.value in str(sessions.last_error)
        await asyncio.wait_for(task, WAIT)
        assert second.is_closed
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await client.close()
        if server_b is not None:
            await server_b.close()


async def test_plain_server_shutdown_is_a_clean_close_and_ends_iteration(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    connected = asyncio.Event()

    async def on_connect(_session: WebTransportSession) -> None:
        connected.set()

    async with running_server(server_config, {"/echo": echo_handler}) as (server, base):
        sessions = client.sessions(f"{base}/echo", policy=FAST, on_connect=on_connect)

        async def consume() -> int:
            count = 0
            async for session in sessions:
                count += 1
                await session.wait_closed()
            return count

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(connected.wait(), WAIT)
        await server.close()  # every session gets WT_CLOSE_SESSION code 0: "done", not "come back"
        assert await asyncio.wait_for(task, WAIT) == 1
        assert sessions.last_end is SessionEnd.PEER_CLOSED and sessions.reconnects == 0


async def test_clean_close_by_server_ends_iteration(server_config: ServerConfig,
                                                    client: WebTransportClient) -> None:
    calls: list[WebTransportSession] = []

    async def on_connect(session: WebTransportSession) -> None:
        calls.append(session)

    async with running_server(server_config, {"/bye": _close_after_one_stream(0)}) as (server, base):
        sessions = client.sessions(f"{base}/bye", policy=FAST, on_connect=on_connect)
        handed_out = []
        async for session in sessions:
            handed_out.append(session)
            await _ask_server_to_close(session)
        assert handed_out == calls and len(handed_out) == 1
        assert handed_out[0].close_code == 0
        assert sessions.last_end is SessionEnd.PEER_CLOSED
        assert sessions.last_error is None and sessions.reconnects == 0 and not sessions.connected
        assert server.sessions_accepted == 1
        with pytest.raises(StopAsyncIteration):
            await sessions.__anext__()


async def test_server_error_close_reconnects_until_clean_close(server_config: ServerConfig,
                                                               client: WebTransportClient) -> None:
    codes = iter([7, 0])

    async def handler(session: WebTransportSession) -> None:
        await _close_after_one_stream(next(codes))(session)

    async with running_server(server_config, {"/flaky": handler}) as (server, base):
        sessions = client.sessions(f"{base}/flaky", policy=FAST)
        handed_out = []
        async for session in sessions:
            handed_out.append(session)
            await _ask_server_to_close(session)
            if len(handed_out) == 1:
                assert session.close_code == 7
        assert [s.close_code for s in handed_out] == [7, 0]
        assert sessions.reconnects == 1 and sessions.last_end is SessionEnd.PEER_CLOSED
        assert isinstance(sessions.last_error, SessionClosedError) and sessions.last_error.error_code == 7
        assert server.sessions_accepted == 2


@contextlib.asynccontextmanager
async def _in_hour_long_backoff(server_config: ServerConfig, client: WebTransportClient) -> AsyncIterator[
        tuple[WebTransportServer, ReconnectingClient, asyncio.Task[None], list[WebTransportSession]]]:
    """``client.sessions()`` consumed by a task; the server ends the first session with code 7
    and the iterator waits an hour before attempt 1 when the block starts. Yields the server,
    the iterator, the consuming task and the sessions it was handed."""
    logger = logging.getLogger("pywebtransport.client.reconnect")
    log = _ReconnectLog(attempt=1)
    logger.addHandler(log)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    slow = ReconnectPolicy(initial_delay=3600.0, max_delay=3600.0, jitter=0.0, connect_timeout=WAIT)
    try:
        async with running_server(server_config, {"/flaky": _close_after_one_stream(7)}) as (server, base):
            sessions = client.sessions(f"{base}/flaky", policy=slow)
            handed_out: list[WebTransportSession] = []

            async def consume() -> None:
                async for session in sessions:
                    handed_out.append(session)
                    await _ask_server_to_close(session)

            task = asyncio.ensure_future(consume())
            await asyncio.wait_for(log.reached.wait(), WAIT)  # waiting an hour before attempt 1
            assert log.announced[0][2] == 3600.0
            yield server, sessions, task, handed_out
    finally:
        logger.removeHandler(log)
        logger.setLevel(old_level)


async def test_aclose_during_backoff_ends_iteration_at_once(server_config: ServerConfig,
                                                          client: WebTransportClient) -> None:
    async with _in_hour_long_backoff(server_config, client) as (server, sessions, task, handed_out):
        await sessions.aclose()
        await asyncio.wait_for(task, WAIT)  # the loop ended without an exception
        assert len(handed_out) == 1 and sessions.reconnects == 0 and server.sessions_accepted == 1


async def test_closing_the_client_during_backoff_ends_iteration_at_once(server_config: ServerConfig,
                                                                       client_config: ClientConfig) -> None:
    """client.close() from another task: the iterator's hour-long backoff ends now (it used to
    sleep it out, up to max_delay, before noticing)."""
    client = WebTransportClient(config=client_config)
    try:
        async with _in_hour_long_backoff(server_config, client) as (server, _sessions, task, handed_out):
            await client.close()
            await asyncio.wait_for(task, WAIT)  # the loop ended without an exception
            assert len(handed_out) == 1 and server.sessions_accepted == 1
    finally:
        await client.close()


async def test_404_raises_from_the_iterator_without_retrying(server_config: ServerConfig,
                                                             client: WebTransportClient) -> None:
    async with running_server(server_config, {"/echo": echo_handler}) as (server, base):
        sessions = client.sessions(f"{base}/missing", policy=FAST)
        with pytest.raises(SessionRejectedError) as info:
            async for _ in sessions:
                pytest.fail("a refused session must not be handed out")
        assert info.value.status_code == 404
        assert sessions.attempts == 1 and sessions.last_error is info.value
        assert server.sessions_rejected == 1


async def test_503_is_retried_until_max_attempts_then_raises(server_config: ServerConfig,
                                                             client: WebTransportClient) -> None:
    async def unavailable(_session: WebTransportSession) -> int:
        return 503

    on_connect_calls: list[WebTransportSession] = []

    async def on_connect(session: WebTransportSession) -> None:
        on_connect_calls.append(session)

    server = WebTransportServer(config=server_config, decider=unavailable)
    server.add_route("/busy", echo_handler)
    async with server:
        host, port = server.local_address
        policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_attempts=3, connect_timeout=WAIT)
        sessions = client.sessions(f"https://{host}:{port}/busy", policy=policy, on_connect=on_connect)
        with pytest.raises(SessionRejectedError) as info:
            await sessions.__anext__()
        assert info.value.status_code == 503
        assert sessions.attempts == 3 and sessions.last_error is info.value
        assert server.sessions_rejected == 3 and not on_connect_calls
        with pytest.raises(StopAsyncIteration):
            await sessions.__anext__()


async def test_429_then_accept_hands_out_a_session(server_config: ServerConfig,
                                                   client: WebTransportClient) -> None:
    verdicts = iter([429, 503, True])

    async def decider(_session: WebTransportSession) -> bool | int:
        return next(verdicts)

    server = WebTransportServer(config=server_config, decider=decider)
    server.add_route("/echo", echo_handler)
    async with server:
        host, port = server.local_address
        async with client.sessions(f"https://{host}:{port}/echo", policy=FAST) as sessions:
            session = await sessions.__anext__()
            assert session.is_ready and sessions.attempts == 3
            assert isinstance(sessions.last_error, SessionRejectedError) and sessions.last_error.status_code == 503
        assert session.is_closed  # leaving the block closed it
        assert server.sessions_rejected == 2 and server.sessions_accepted == 1


async def test_local_close_ends_iteration(echo_server: tuple[WebTransportServer, str],
                                          client: WebTransportClient) -> None:
    _, base = echo_server
    handed_out = []
    sessions = client.sessions(f"{base}/echo", policy=FAST)
    async for session in sessions:
        handed_out.append(session)
        await session.close()
    assert len(handed_out) == 1 and sessions.last_end is SessionEnd.LOCAL_CLOSED and sessions.reconnects == 0


async def test_closing_the_client_ends_iteration(echo_server: tuple[WebTransportServer, str],
                                                 client_config: ClientConfig) -> None:
    _, base = echo_server
    client = WebTransportClient(config=client_config)
    handed_out = []
    async for session in client.sessions(f"{base}/echo", policy=FAST):
        handed_out.append(session)
        await client.close()
    assert len(handed_out) == 1 and handed_out[0].is_closed


async def test_cancelling_the_consumer_in_the_loop_body_closes_the_session(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    server_saw_close = asyncio.Event()
    in_body = asyncio.Event()

    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()
        server_saw_close.set()

    async with running_server(server_config, {"/hold": handler}) as (_, base):
        handed_out: list[WebTransportSession] = []

        async def consume() -> None:
            async with client.sessions(f"{base}/hold", policy=FAST) as sessions:
                async for session in sessions:
                    handed_out.append(session)
                    in_body.set()
                    await asyncio.Event().wait()  # until cancelled

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(in_body.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert handed_out[0].is_closed
        await asyncio.wait_for(server_saw_close.wait(), WAIT)


async def test_cancelling_during_on_connect_closes_the_new_session(echo_server: tuple[WebTransportServer, str],
                                                                   client: WebTransportClient) -> None:
    _, base = echo_server
    started: asyncio.Future[WebTransportSession] = asyncio.get_running_loop().create_future()

    async def on_connect(session: WebTransportSession) -> None:
        started.set_result(session)
        await asyncio.Event().wait()  # restoring state takes forever

    sessions = client.sessions(f"{base}/echo", policy=FAST, on_connect=on_connect)
    task = asyncio.ensure_future(sessions.__anext__())
    session = await asyncio.wait_for(started, WAIT)
    assert not session.is_closed
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.is_closed and not sessions.connected
    with pytest.raises(StopAsyncIteration):
        await sessions.__anext__()


async def test_on_connect_failure_raises_and_closes_the_session(echo_server: tuple[WebTransportServer, str],
                                                                client: WebTransportClient) -> None:
    _, base = echo_server
    seen: list[WebTransportSession] = []

    async def on_connect(session: WebTransportSession) -> None:
        seen.append(session)
        raise ValueError("cannot restore state")

    sessions = client.sessions(f"{base}/echo", policy=FAST, on_connect=on_connect)
    with pytest.raises(ValueError, match="cannot restore state"):
        async for _ in sessions:
            pytest.fail("a session whose on_connect failed must not be handed out")
    assert len(seen) == 1 and seen[0].is_closed and sessions.attempts == 1
