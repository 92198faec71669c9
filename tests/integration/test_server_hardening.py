"""Server hardening over real loopback: quiet peer leaves, Origin checks, connection and
handshake limits with rate-limited warnings, and a clean close on SIGTERM."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

import pywebtransport
import pywebtransport.server.server as server_module
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import HandshakeError, SessionRejectedError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.utils import SelfSignedCertificate

from .conftest import running_server
from .peers import RawPeer

pytestmark = pytest.mark.timeout(90)

SERVER_LOGGER = "pywebtransport.server.server"


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("pywebtransport") and r.levelno >= logging.ERROR]


class HandlerEndings(logging.Handler):
    """Hands the server's records about ended handlers to the test as they are logged (the
    server logs them on the loop's thread), so the test can wait for them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.queue = asyncio.Queue[logging.LogRecord]()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "session handler for" in message:
            self.queue.put_nowait(record)

    async def next(self) -> logging.LogRecord:
        return await asyncio.wait_for(self.queue.get(), 10)


@pytest.fixture
def endings() -> Iterator[HandlerEndings]:
    handler = HandlerEndings()
    logger = logging.getLogger(SERVER_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# ---------------------------------------------------------------------------- peers that leave


async def test_twenty_peers_leaving_with_code_0_log_no_error(server_config, client_config, caplog,
                                                             endings) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")
    clients = 20
    reading = asyncio.Queue[None]()

    async def reads_until_the_peer_leaves(session: WebTransportSession) -> None:
        stream = await session.accept_stream(timeout=10)
        assert await stream.readexactly(2) == b"hi"  # type: ignore[union-attr]
        await reading.put(None)
        await stream.read()  # type: ignore[union-attr]  # blocks until the peer closes the session

    async with running_server(server_config, {"/read": reads_until_the_peer_leaves}) as (server, base), \
            WebTransportClient(config=client_config) as client:
        sessions = []
        for _ in range(clients):
            session = await client.connect(f"{base}/read")
            stream = await session.create_bidirectional_stream()
            stream.write(b"hi")
            sessions.append(session)
        for _ in range(clients):
            await asyncio.wait_for(reading.get(), 10)
        await asyncio.gather(*(s.close() for s in sessions))  # a normal leave: code 0
        ended = [await endings.next() for _ in range(clients)]
        assert server.get_stats()["sessions_accepted"] == clients
    assert errors(caplog) == []
    assert all("ended: the session was closed" in r.getMessage() for r in ended)
    assert all(r.levelno == logging.INFO and "/read" in r.getMessage() and "code 0" in r.getMessage()
               for r in ended)


async def test_a_handler_bug_is_still_logged_as_an_error_once(server_config, client, caplog, endings) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")

    async def buggy(session: WebTransportSession) -> None:
        raise ValueError("a real bug")

    async with running_server(server_config, {"/bug": buggy}) as (server, base):
        session = await client.connect(f"{base}/bug")
        await endings.next()
        await asyncio.wait_for(session.wait_closed(), 10)
        assert server.get_stats()["sessions_accepted"] == 1
    assert session.close_code == 1 and session.close_reason == "internal server error"
    failures = errors(caplog)
    assert len(failures) == 1
    assert "session handler for /bug failed" in failures[0].getMessage()
    assert failures[0].exc_info is not None and isinstance(failures[0].exc_info[1], ValueError)


async def test_a_transport_error_on_an_open_session_is_a_handler_error(server_config, client, caplog,
                                                                       endings) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")

    async def gives_up_waiting(session: WebTransportSession) -> None:
        await session.accept_stream(timeout=0.05)  # nobody opens one: TimeoutError, session still open

    async with running_server(server_config, {"/wait": gives_up_waiting}) as (server, base):
        session = await client.connect(f"{base}/wait")
        await endings.next()
        await asyncio.wait_for(session.wait_closed(), 10)
        assert server.get_stats()["sessions_accepted"] == 1
    assert session.close_code == 1
    failures = errors(caplog)
    assert len(failures) == 1 and isinstance(failures[0].exc_info[1], builtins.TimeoutError)  # type: ignore[index]


# ---------------------------------------------------------------------------- Origin


async def status_of(certificate: SelfSignedCertificate, url: str, origin: str | None) -> int:
    config = ClientConfig(server_certificate_hashes=[certificate.sha256], origin=origin, connect_timeout=10)
    async with WebTransportClient(config=config) as client:
        try:
            session = await client.connect(url)
        except SessionRejectedError as exc:
            return exc.status_code
        await session.close()
        return 200


async def test_plain_server_applies_allowed_origins(server_config, certificate) -> None:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    config = server_config.replace(allowed_origins=["https://good.test"])
    async with running_server(config, {"/echo": handler}) as (server, base):
        assert await status_of(certificate, f"{base}/echo", "https://evil.test") == 403
        assert await status_of(certificate, f"{base}/echo", "https://good.test") == 200
        assert await status_of(certificate, f"{base}/echo", None) == 200  # native clients send none
        assert await status_of(certificate, f"{base}/nowhere", "https://evil.test") == 403  # before routing
        assert server.get_stats()["sessions_rejected"] == 2


async def test_a_wildcard_allows_every_origin(server_config, certificate) -> None:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    async with running_server(server_config.replace(allowed_origins=["*"]), {"/echo": handler}) as (_, base):
        assert await status_of(certificate, f"{base}/echo", "https://anything.test") == 200


# ---------------------------------------------------------------------------- raw QUIC peers


@contextmanager
def raw_peer(server: WebTransportServer) -> Iterator[RawPeer]:
    peer = RawPeer(server.local_address)
    try:
        yield peer
    finally:
        peer.close()


@asynccontextmanager
async def started(config: ServerConfig) -> AsyncIterator[WebTransportServer]:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    async with running_server(config, {"/echo": handler}) as (server, _):
        yield server


async def test_over_max_connections_each_client_is_counted_once_and_warnings_are_rate_limited(
        server_config, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")
    async with started(server_config.replace(max_connections=1)) as server:
        with raw_peer(server) as peer:
            peer.send(peer.initial())  # takes the only slot (a handshake that never finishes)
            await peer.barrier()
            assert len(server.connections) == 1
            refused = [peer.initial() for _ in range(50)]
            for initial in refused:
                peer.send(initial)
                peer.send(initial)  # a retransmission of the same Initial
            await peer.barrier()
        stats = server.get_stats()
        assert stats["connections"] == 1
        assert stats["connections_refused"] == 50  # per client, not per datagram
    warnings = [r for r in caplog.records if r.name == SERVER_LOGGER and r.levelno == logging.WARNING]
    # 100 refused datagrams, one warning per second at most (the burst takes well under 10 s).
    assert 1 <= len(warnings) <= 10
    assert "max_connections (1) reached" in warnings[0].getMessage()


async def test_a_later_warning_says_how_many_were_suppressed(server_config, caplog, monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")
    clock = [1000.0]
    monkeypatch.setattr(server_module, "time", _FakeTime(clock))
    async with started(server_config.replace(max_connections=1)) as server:
        with raw_peer(server) as peer:
            peer.send(peer.initial())
            for _ in range(5):
                peer.send(peer.initial())
            await peer.barrier()
            clock[0] += 1.5
            peer.send(peer.initial())
            await peer.barrier()
    warnings = [r.getMessage() for r in caplog.records if r.name == SERVER_LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "more refused" not in warnings[0]
    assert "(4 more refused since the last warning)" in warnings[1]


class _FakeTime:
    """Stands in for the ``time`` module inside server.py: a clock the test moves by hand."""

    def __init__(self, clock: list[float]) -> None:
        self._clock = clock

    def monotonic(self) -> float:
        return self._clock[0]


async def test_handshakes_over_the_cap_are_refused(server_config, client_config, monkeypatch) -> None:
    if "max_concurrent_handshakes" in {f.name for f in dataclasses.fields(ServerConfig)}:
        server_config = server_config.replace(max_concurrent_handshakes=2)
    else:
        monkeypatch.setattr(server_module, "DEFAULT_MAX_CONCURRENT_HANDSHAKES", 2)
    async with started(server_config) as server:
        assert server.max_concurrent_handshakes == 2
        with raw_peer(server) as peer:
            peer.send(peer.initial())
            peer.send(peer.initial())  # two handshakes in progress, never finishing
            await peer.barrier()
            assert server.get_stats()["handshakes_in_progress"] == 2
            peer.send(peer.initial())
            await peer.barrier()
            stats = server.get_stats()
            assert (stats["handshakes_refused"], stats["connections_refused"]) == (1, 1)
            assert stats["connections"] == 2
            # A real client is refused as well while the cap is reached.
            # ...and told so at once: a HandshakeError, not its (long) connect timeout.
            config = client_config.replace(connect_timeout=30)
            async with WebTransportClient(config=config) as client:
                host, port = server.local_address
                with pytest.raises(HandshakeError):
                    await client.connect(f"https://{host}:{port}/echo")
            assert server.get_stats()["handshakes_refused"] == 2


async def test_a_handshake_that_never_finishes_is_abandoned_after_connect_timeout(server_config,
                                                                                  monkeypatch) -> None:
    if "max_concurrent_handshakes" in {f.name for f in dataclasses.fields(ServerConfig)}:
        server_config = server_config.replace(max_concurrent_handshakes=1)
    else:
        monkeypatch.setattr(server_module, "DEFAULT_MAX_CONCURRENT_HANDSHAKES", 1)
    clock = [1000.0]
    monkeypatch.setattr(server_module, "time", _FakeTime(clock))
    async with started(server_config.replace(connect_timeout=5)) as server:
        with raw_peer(server) as peer:
            peer.send(peer.initial())
            await peer.barrier()
            (stuck,) = server.connections
            peer.send(peer.initial())
            await peer.barrier()
            assert server.get_stats()["handshakes_refused"] == 1  # the cap holds while it is young
            clock[0] += 6  # older than connect_timeout now
            peer.send(peer.initial())
            await peer.barrier()
            await asyncio.wait_for(stuck.wait_closed(), 10)  # abandoned: its connection is closed
            stats = server.get_stats()
            assert (stats["handshakes_abandoned"], stats["handshakes_refused"]) == (1, 1)
            assert stats["handshakes_in_progress"] == 1 and stuck not in server.connections


async def test_a_refused_client_is_told_at_once_with_connection_refused(server_config) -> None:
    async with started(server_config.replace(max_connections=1)) as server:
        with raw_peer(server) as peer:
            peer.send(peer.initial())  # takes the only slot
            client = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                                                                    server_name="localhost"))
            client.connect(server.local_address, now=time.monotonic())
            for data, _ in client.datagrams_to_send(now=time.monotonic()):
                peer.send(data)
            loop = asyncio.get_running_loop()
            while client._state.name not in ("DRAINING", "TERMINATED"):  # noqa: SLF001 - aioquic's state
                reply = await asyncio.wait_for(loop.sock_recv(peer.sock, 65535), 10)
                client.receive_datagram(reply, server.local_address, now=time.monotonic())
            client.handle_timer(client.get_timer() or time.monotonic())
            closes = [e for e in iter(client.next_event, None) if type(e).__name__ == "ConnectionTerminated"]
            assert closes and closes[0].error_code == 0x02  # CONNECTION_REFUSED (RFC 9000 §20.1)
        assert server.get_stats()["connections_refused"] == 1


async def test_a_closed_connection_frees_its_slot(server_config, client_config) -> None:
    async with started(server_config.replace(max_connections=1)) as server:
        host, port = server.local_address
        for _ in range(3):
            async with WebTransportClient(config=client_config) as client:
                session = await client.connect(f"https://{host}:{port}/echo")
                (connection,) = server.connections
                await session.close(close_connection=True)
            await asyncio.wait_for(connection.wait_closed(), 10)
            assert server.connections == []
        assert server.get_stats()["connections_refused"] == 0


# ---------------------------------------------------------------------------- SIGTERM


class Lines:
    """Lines of a subprocess's output, read in a thread-free way with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._stream = process.stdout

    def until(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self._stream.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r}; got {''.join(seen)!r}")


@contextmanager
def process(*args: str, cwd: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    # The child imports the same pywebtransport as this test run.
    package_root = str(Path(pywebtransport.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    child = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path})
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


async def wait_exit(child: subprocess.Popen[str], timeout: float) -> int:
    return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, child.wait), timeout)


async def test_serve_closes_sessions_cleanly_on_sigterm() -> None:
    with process("-m", "pywebtransport", "serve", "--port", "0", "--http-port", "0") as child:
        out = Lines(child)
        url = out.until(r"URL:\s+(\S+)").group(1)
        digest = out.until(r"certificate SHA-256: ([0-9a-f]{64})").group(1)
        out.until("Ctrl-C")
        config = ClientConfig(server_certificate_hashes=[bytes.fromhex(digest)], connect_timeout=20)
        async with WebTransportClient(config=config) as client:
            session = await client.connect(url)
            child.send_signal(signal.SIGTERM)
            start = time.monotonic()
            await asyncio.wait_for(session.wait_closed(), 10)
            assert session.close_code == 0
            assert time.monotonic() - start < 5
            assert await wait_exit(child, 15) == 0


async def test_server_app_run_closes_cleanly_on_sigterm(certificate: SelfSignedCertificate, tmp_path) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        from pywebtransport.config import ServerConfig
        from pywebtransport.server import ServerApp

        # Port 0: the server binds a free port itself (a probed port, released and bound
        # again, could be taken by another process in between).
        app = ServerApp(config=ServerConfig(host="127.0.0.1", port=0, certfile={str(certificate.cert_path)!r},
                                            keyfile={str(certificate.key_path)!r}))

        @app.route("/stay")
        async def stay(session):
            await session.wait_closed()

        @app.on_ready  # the socket is bound: a client may connect now
        def started():
            print("port", app.local_address[1], flush=True)

        @app.on_shutdown
        def stopped():
            print("shutdown hooks ran", flush=True)

        app.run(drain_timeout=0.5)
        print("run returned", flush=True)
    """))
    with process(str(script)) as child:
        out = Lines(child)
        port = int(out.until(r"port (\d+)").group(1))
        config = ClientConfig(server_certificate_hashes=[certificate.sha256], connect_timeout=20)
        async with WebTransportClient(config=config) as client:
            session = await client.connect(f"https://127.0.0.1:{port}/stay")
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(session.wait_closed(), 10)
            assert session.close_code == 0
            out.until("shutdown hooks ran")
            out.until("run returned")
            assert await wait_exit(child, 15) == 0
