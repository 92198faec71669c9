"""Memory per session and per connection: what an extra session on a shared connection costs
each side, what an idle one-session connection costs the server, and what an idle session does
not make at all (issue #12: "<= 8 KiB per extra session on a shared connection"; "<= 64 KiB per
idle one-session connection"; "nothing allocated per connection that is not used").

The cost is measured with tracemalloc on one side while the peer runs in a child process, so
each side's number is its own. Both run on 127.0.0.1 only, on the QUIC backend and ``_wire``
variant of this run (the child inherits PYWEBTRANSPORT_QUIC_BACKEND and
PYWEBTRANSPORT_NO_EXTENSIONS from the environment).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import sys
import tracemalloc
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession
from pywebtransport.utils import SelfSignedCertificate

from .conftest import eventually, running_server

pytestmark = pytest.mark.timeout(120)

#: Issue #12's target for one extra session on a shared connection, per side (Python heap).
TARGET_PER_SESSION = 8 * 1024
#: Sessions opened between the two snapshots. Enough that per-connection noise (packets in
#: flight, a dict resize shared by all sessions) is a small share of each session's part,
#: and below the server's default max_sessions (100) with the two opened before.
EXTRA_SESSIONS = 80
#: The bound asserted is the target itself. The measurement is of deterministic allocations
#: (the run-to-run spread is under 0.1 KiB) and the per-connection part spread over the
#: sessions is under 1%, so no margin is added for noise. On CPython 3.11 an extra session
#: costs the server about 7.2-7.5 KiB and the client about 4-4.2 KiB on both backends and
#: both _wire variants; before issue #12's changes they cost about 13.5 and 11 KiB.
BOUND_PER_SESSION = TARGET_PER_SESSION

#: Issue #12's target for an idle connection carrying one session, server side (Python heap).
TARGET_PER_CONNECTION = 64 * 1024
#: Connections opened between the two snapshots, each from its own client (own UDP socket).
EXTRA_CONNECTIONS = 60
#: The bound asserted is the target. On CPython 3.11 an idle one-session connection costs the
#: server (tracemalloc; the libraries' C and Rust allocations outside Python's allocator are
#: not seen) about 58.9 KiB on aioquic (compiled and pure _wire alike) and 51.0 KiB on qh3;
#: before these changes about 71.2 and 59.0 KiB. Of the aioquic figure over 36 KiB is
#: aioquic's own state (connection, streams, TLS, recovery, crypto).
BOUND_PER_CONNECTION = TARGET_PER_CONNECTION

_PEER_CLIENTS = r"""
import asyncio, sys
from pywebtransport import ClientConfig, WebTransportClient

async def main():
    port, digest, extra = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
    url = f"https://127.0.0.1:{port}/idle"
    loop = asyncio.get_running_loop()
    config = ClientConfig(server_certificate_hashes=[digest], connect_timeout=30)
    clients, kept = [], []

    async def one():
        client = WebTransportClient(config=config)
        await client.__aenter__()
        clients.append(client)
        kept.append(await client.connect(url))

    await one()
    print("warm", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    for _ in range(extra):
        await one()
    print("opened", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for client in clients:
        await client.close()

asyncio.run(main())
"""

_PEER_SERVER = r"""
import asyncio, sys
from pywebtransport import ServerConfig, WebTransportServer

async def main():
    server = WebTransportServer(config=ServerConfig(host="127.0.0.1", port=0, certfile=sys.argv[1],
                                                    keyfile=sys.argv[2]))

    @server.route("/idle")
    async def idle(session):
        await session.wait_closed()

    async with server:
        print(server.local_address[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

_PEER_CLIENT = r"""
import asyncio, sys
from pywebtransport import ClientConfig, WebTransportClient

async def main():
    port, digest, extra = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
    url = f"https://127.0.0.1:{port}/idle"
    loop = asyncio.get_running_loop()
    async with WebTransportClient(config=ClientConfig(server_certificate_hashes=[digest],
                                                      connect_timeout=30)) as client:
        first = await client.connect(url)
        connection = first.connection
        kept = [first, await connection.open_session(path="/idle", authority=f"127.0.0.1:{port}")]
        print("warm", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        for _ in range(extra):
            kept.append(await connection.open_session(path="/idle", authority=f"127.0.0.1:{port}"))
        print("opened", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


@asynccontextmanager
async def _peer(script: str, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The other side, in a child process; its stdin closing tells it to stop."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, *args,
                                                   stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                   env=dict(os.environ))
    try:
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


async def _line(process: asyncio.subprocess.Process) -> bytes:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line, f"the peer process ended early (exit code {process.returncode})"
    return line.strip()


def _traced_growth_per_session(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, count: int) -> float:
    """Traced growth between the snapshots per session (or per connection) opened."""
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / count


def _report(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, count: int) -> str:
    lines = [f"{stat.size_diff / count:8.0f} B  {stat.traceback[0].filename}:{stat.traceback[0].lineno}"
             for stat in after.compare_to(before, "lineno")[:12]]
    return "largest growth per session (or connection):\n" + "\n".join(lines)


async def _server_growth(server_config: ServerConfig, certificate: SelfSignedCertificate, script: str,
                         count: int, warm: int, new_connections: int) -> tuple[float, str]:
    """Server heap growth per item while a child process (``script``) opens ``count`` more
    sessions (on ``new_connections`` new connections) after ``warm`` were already accepted;
    (bytes per item, report)."""
    accepted = 0

    async def idle(session: WebTransportSession) -> None:
        nonlocal accepted
        accepted += 1
        await session.wait_closed()

    async with running_server(server_config, {"/idle": idle}) as (server, base):
        port = base.rsplit(":", 1)[1]
        async with _peer(script, port, certificate.sha256.hex(), str(count)) as peer:
            assert await _line(peer) == b"warm"
            await eventually(lambda: accepted == warm)
            connections_before = len(server.connections)
            gc.collect()
            tracemalloc.start(1)
            try:
                before = tracemalloc.take_snapshot()
                assert peer.stdin is not None
                peer.stdin.write(b"go\n")
                await peer.stdin.drain()
                assert await _line(peer) == b"opened"
                # Every session reached its handler, which waits in wait_closed().
                await eventually(lambda: accepted == warm + count, timeout=10)
                connections_added = len(server.connections) - connections_before
                gc.collect()
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
    assert connections_added == new_connections
    return _traced_growth_per_session(before, after, count), _report(before, after, count)


async def test_an_extra_session_costs_the_server_under_8_kib(server_config: ServerConfig,
                                                             certificate: SelfSignedCertificate) -> None:
    per_session, report = await _server_growth(server_config, certificate, _PEER_CLIENT, EXTRA_SESSIONS, warm=2,
                                               new_connections=0)
    assert per_session <= BOUND_PER_SESSION, (
        f"an extra session costs the server {per_session / 1024:.2f} KiB (bound {BOUND_PER_SESSION / 1024:.2f} "
        f"KiB)\n{report}")


async def test_an_extra_session_costs_the_client_under_8_kib(certificate: SelfSignedCertificate) -> None:
    async with _peer(_PEER_SERVER, str(certificate.cert_path), str(certificate.key_path)) as server:
        port = int(await _line(server))
        config = ClientConfig(server_certificate_hashes=[certificate.sha256], connect_timeout=30)
        authority = f"127.0.0.1:{port}"
        async with WebTransportClient(config=config) as client:
            first = await client.connect(f"https://{authority}/idle")
            connection = first.connection
            assert connection is not None
            kept = [first, await connection.open_session(path="/idle", authority=authority)]
            gc.collect()
            tracemalloc.start(1)
            try:
                before = tracemalloc.take_snapshot()
                for _ in range(EXTRA_SESSIONS):
                    kept.append(await connection.open_session(path="/idle", authority=authority))
                gc.collect()
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
            assert all(session.is_ready for session in kept)
    per_session = _traced_growth_per_session(before, after, EXTRA_SESSIONS)
    assert per_session <= BOUND_PER_SESSION, (
        f"an extra session costs the client {per_session / 1024:.2f} KiB (bound {BOUND_PER_SESSION / 1024:.2f} "
        f"KiB)\n{_report(before, after, EXTRA_SESSIONS)}")


async def test_an_idle_one_session_connection_costs_the_server_under_64_kib(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    per_connection, report = await _server_growth(server_config, certificate, _PEER_CLIENTS, EXTRA_CONNECTIONS,
                                                  warm=1, new_connections=EXTRA_CONNECTIONS)
    assert per_connection <= BOUND_PER_CONNECTION, (
        f"an idle one-session connection costs the server {per_connection / 1024:.2f} KiB (bound "
        f"{BOUND_PER_CONNECTION / 1024:.2f} KiB)\n{report}")


# ---------------------------------------------------------------------------------------------
# What an idle session does not make


def _reachable_within(root: object, depth: int, *, outside: tuple[object, ...]) -> list[object]:
    """Objects ``root`` refers to, up to ``depth`` references away, not looking into the
    objects in ``outside`` (what the session shares: its engine, loop, config)."""
    seen = {id(root)} | {id(obj) for obj in outside}
    frontier = [root]
    found: list[object] = []
    for _ in range(depth):
        following: list[object] = []
        for obj in frontier:
            for ref in gc.get_referents(obj):
                if id(ref) in seen or isinstance(ref, type):
                    continue
                seen.add(id(ref))
                found.append(ref)
                following.append(ref)
        frontier = following
    return found


def _heavy_idle_parts(session: WebTransportSession) -> list[str]:
    """Names of the parts an idle session should not hold: queues (deques), asyncio.Events
    (each has a waiter deque), event emitters, datagram transports and statistics records."""
    from pywebtransport.datagram import WebTransportDatagramTransport
    from pywebtransport.events import EventEmitter
    from pywebtransport.session import SessionStats

    kinds = (collections.deque, asyncio.Event, EventEmitter, WebTransportDatagramTransport, SessionStats)
    connection = session.connection
    shared = (session.protocol_handler, session.config, asyncio.get_running_loop(), connection)
    return sorted({type(obj).__name__ for obj in _reachable_within(session, 3, outside=shared)
                   if isinstance(obj, kinds)})


@asynccontextmanager
async def _idle_pair(server_config: ServerConfig, client_config: ClientConfig
                     ) -> AsyncIterator[tuple[WebTransportSession, WebTransportSession]]:
    """A client session and its server side, whose handler only waits for the end."""
    server_sessions: list[WebTransportSession] = []

    async def idle(session: WebTransportSession) -> None:
        server_sessions.append(session)
        await session.wait_closed()

    async with running_server(server_config, {"/idle": idle}) as (_server, base), \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/idle")
        await eventually(lambda: bool(server_sessions))
        yield session, server_sessions[0]
        await session.close()


async def test_an_idle_session_holds_no_queue_event_emitter_or_datagram_buffer(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with _idle_pair(server_config, client_config) as (session, peer):
        assert _heavy_idle_parts(session) == []
        # The server reads who closed the session from its close cause: no emitter either.
        assert _heavy_idle_parts(peer) == []


async def test_the_datagram_receive_buffer_is_made_by_the_first_datagram(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with _idle_pair(server_config, client_config) as (session, peer):
        assert session._datagrams is None and peer._datagrams is None
        await session.send_datagram(data=b"ping")
        sender = session.datagrams
        # Sending needs no receive buffer, and with nobody listening no event emitter.
        assert sender._ring is None and session._emitter is None
        assert sender.receive_buffer_size == 0 and sender.receive_dropped == 0
        assert sender.receive_nowait() is None
        received = await asyncio.wait_for(peer.datagrams.receive(), 5)
        assert received == b"ping"
        assert peer.datagrams._ring is not None


async def test_a_closed_session_is_freed_once_dropped(server_config: ServerConfig,
                                                      client_config: ClientConfig) -> None:
    """Nothing the session made on first use (emitter, queues, waiters, datagram buffer, the
    engine wake-up) keeps it alive after it closed."""
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def serve(session: WebTransportSession) -> None:
        async for payload in session.datagrams:
            await session.datagrams.send(payload)
        if not closed.done():
            closed.set_result(None)

    async with running_server(server_config, {"/serve": serve}) as (_server, base), \
            WebTransportClient(config=client_config) as client:
        first = await client.connect(f"{base}/serve")  # keeps the connection open throughout
        connection = first.connection
        assert connection is not None
        session = await connection.open_session(path="/serve", authority=base.split("//", 1)[1])
        session.events.on("session.closed", lambda event: None)
        await session.send_datagram(data=b"x")
        assert await asyncio.wait_for(session.datagrams.receive(), 5) == b"x"
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"data", end_stream=True)
        _ = session.stats, await session.diagnostics()
        ref = weakref.ref(session)
        await session.close()
        await asyncio.wait_for(closed, 5)
        del session, stream
        gc.collect()
        assert ref() is None, [type(r).__name__ for r in gc.get_referrers(ref())]
