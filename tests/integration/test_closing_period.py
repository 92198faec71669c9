"""QUIC's closing and draining periods over real UDP on loopback (RFC 9000 §10.2).

A relay between client and server drops the first CONNECTION_CLOSE (and whatever the closing
side sent just before it): the peer must learn of the close from the answer to its next
packet, not from its idle timeout (60 s here; each wait below is 10 s). A closed connection
is forgotten once its period is over, on both ends, and a peer's close changes the state of
the connection and its sessions at once, before any timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pywebtransport._io import UdpEndpoint
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection import WebTransportConnection
from pywebtransport.exceptions import WebTransportError
from pywebtransport.session import WebTransportSession
from pywebtransport.types import Address, ConnectionState

from .conftest import running_server
from .peers import SessionQueue

pytestmark = pytest.mark.timeout(90)

WAIT = 10.0  # far below the 60 s idle timeout: a close learnt only from it fails the test
#: Each way through the relay: a longer RTT makes the closing period (three PTOs) longer
#: than the few milliseconds the tests need, even on a busy machine.
RELAY_DELAY = 0.04


class DropUntilClose:
    """Armed, it drops every datagram of one direction up to and including the first one
    that carries the sender's CONNECTION_CLOSE, then lets everything through again."""

    def __init__(self) -> None:
        self.close_datagrams: Callable[[], tuple[bytes, ...]] | None = None
        self.dropped = 0
        self.closes_dropped = 0
        self.closes_passed = 0
        self.close_was_dropped = asyncio.Event()

    def arm(self, connection: WebTransportConnection) -> None:
        quic = connection._quic  # the QUIC connection knows which datagrams carried its close
        self.close_datagrams = lambda: quic.close_datagrams

    def __call__(self, data: bytes) -> bool:
        if self.close_datagrams is None:
            return False
        is_close = data in self.close_datagrams()
        if self.closes_dropped:
            self.closes_passed += is_close
            return False
        self.dropped += 1
        if is_close:
            self.closes_dropped += 1
            self.close_was_dropped.set()
        return True


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes, Address], None]) -> None:
        self._received = received

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._received(data, (addr[0], addr[1]))


class Relay:
    """A UDP relay on loopback between one client and the server, delaying each datagram
    by ``RELAY_DELAY`` and dropping what its droppers say."""

    def __init__(self, server: Address) -> None:
        self.server = server
        self.to_server = DropUntilClose()
        self.to_client = DropUntilClose()
        self._client: Address | None = None
        self._front: asyncio.DatagramTransport | None = None
        self._back: asyncio.DatagramTransport | None = None

    async def start(self) -> Address:
        loop = asyncio.get_running_loop()
        front, _ = await loop.create_datagram_endpoint(lambda: _Socket(self._from_client),
                                                       local_addr=("127.0.0.1", 0))
        back, _ = await loop.create_datagram_endpoint(lambda: _Socket(self._from_server),
                                                      local_addr=("127.0.0.1", 0))
        self._front, self._back = front, back
        host, port = front.get_extra_info("sockname")[:2]
        return (host, port)

    def _from_client(self, data: bytes, addr: Address) -> None:
        self._client = addr
        if not self.to_server(data):
            asyncio.get_running_loop().call_later(RELAY_DELAY, self._send, self._back, data, self.server)

    def _from_server(self, data: bytes, addr: Address) -> None:
        if self._client is not None and not self.to_client(data):
            asyncio.get_running_loop().call_later(RELAY_DELAY, self._send, self._front, data, self._client)

    @staticmethod
    def _send(transport: asyncio.DatagramTransport | None, data: bytes, addr: Address) -> None:
        if transport is not None and not transport.is_closing():
            transport.sendto(data, addr)

    def close(self) -> None:
        for transport in (self._front, self._back):
            if transport is not None:
                transport.close()


@asynccontextmanager
async def through_relay(server_config: ServerConfig, client_config: ClientConfig
                        ) -> AsyncIterator[tuple[Relay, WebTransportSession, WebTransportSession]]:
    """A session from a client to a server through a relay: (relay, client side, server side)."""
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (server, _):
        relay = Relay(server.local_address)
        host, port = await relay.start()
        try:
            async with WebTransportClient(config=client_config) as client:
                session = await client.connect(f"https://{host}:{port}/s")
                yield relay, session, await sessions.next()
        finally:
            relay.close()


def connection_of(session: WebTransportSession) -> WebTransportConnection:
    connection = session.connection
    assert connection is not None
    return connection


# ---------------------------------------------------------------------------- late packets


async def test_a_client_whose_copy_of_the_servers_close_was_lost_learns_it_from_its_next_packet(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    server_config = server_config.replace(close_timeout=0.5)  # its close capsule is lost too
    async with through_relay(server_config, client_config) as (relay, session, remote):
        server_connection = connection_of(remote)
        relay.to_client.arm(server_connection)
        await server_connection.close(reason="server going away")
        await asyncio.wait_for(relay.to_client.close_was_dropped.wait(), WAIT)
        assert not session.is_closed  # the client has heard nothing of it
        await session.datagrams.send(b"anyone there?")  # its next packet
        await asyncio.wait_for(session.wait_closed(), WAIT)
        client_connection = connection_of(session)
        await asyncio.wait_for(client_connection.wait_closed(), WAIT)
        assert client_connection.diagnostics()["close_reason"] == "server going away"
        assert relay.to_client.closes_passed >= 1  # the close again, answering that packet


async def test_a_server_whose_copy_of_the_clients_close_was_lost_learns_it_from_its_next_packet(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    client_config = client_config.replace(close_timeout=0.5)
    async with through_relay(server_config, client_config) as (relay, session, remote):
        client_connection = connection_of(session)
        relay.to_server.arm(client_connection)
        await client_connection.close(reason="client leaving")
        await asyncio.wait_for(relay.to_server.close_was_dropped.wait(), WAIT)
        assert not remote.is_closed
        await remote.datagrams.send(b"still there?")  # the server's next packet
        await asyncio.wait_for(remote.wait_closed(), WAIT)
        server_connection = connection_of(remote)
        await asyncio.wait_for(server_connection.wait_closed(), WAIT)
        assert server_connection.diagnostics()["close_reason"] == "client leaving"
        assert relay.to_server.closes_passed >= 1


# ---------------------------------------------------------------------------- forgotten after the period


async def test_closed_connections_are_forgotten_when_their_period_ends(server_config: ServerConfig,
                                                                       client_config: ClientConfig) -> None:
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (server, base):
        endpoint = server._endpoint
        assert endpoint is not None
        clients = [WebTransportClient(config=client_config) for _ in range(10)]
        for index, client in enumerate(clients):
            session = await client.connect(f"{base}/s")
            remote = await sessions.next()
            if index % 2:
                await connection_of(remote).close(reason="server closes")  # closing on the server
            else:
                await connection_of(session).close(reason="client closes")  # draining on the server
                await asyncio.wait_for(remote.wait_closed(), WAIT)
        assert server.connections == []
        assert endpoint.connection_count == 0  # closing connections are not counted
        assert await endpoint.wait_quiet(WAIT)
        assert server.get_stats()["connections_closing"] == 0
        assert endpoint._by_cid == {} and endpoint._timers == {}  # nothing left of them
        await asyncio.gather(*(client.close() for client in clients))


@asynccontextmanager
async def _one_client(server_config: ServerConfig, client_config: ClientConfig
                      ) -> AsyncIterator[tuple[WebTransportClient, WebTransportSession, WebTransportSession]]:
    """A server, and a client (which the test closes, or not) with one session: (client, its
    session, the server's side of it)."""
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base):
        client = WebTransportClient(config=client_config)
        session = await client.connect(f"{base}/s")
        yield client, session, await sessions.next()


async def test_a_client_socket_closes_by_itself_after_the_closing_period(server_config: ServerConfig,
                                                                         client_config: ClientConfig) -> None:
    async with _one_client(server_config, client_config) as (client, session, remote):
        client_connection = connection_of(session)
        endpoint = client_connection._endpoint
        await client_connection.close(reason="bye")  # returns once the close is sent
        assert client_connection.is_closed and not endpoint._closed.is_set()  # the closing period
        await asyncio.wait_for(endpoint.wait_closed(), WAIT)  # then it closes, without client.close()
        assert endpoint.closing_count == 0
        await asyncio.wait_for(remote.wait_closed(), WAIT)
        await client.close()


async def test_a_client_that_the_server_closed_releases_its_socket_at_once(server_config: ServerConfig,
                                                                           client_config: ClientConfig) -> None:
    async with _one_client(server_config, client_config) as (client, session, remote):
        client_connection = connection_of(session)
        endpoint = client_connection._endpoint
        server_connection = connection_of(remote)
        server_connection.protocol_handler.close(0x100, "abrupt")  # CONNECTION_CLOSE, no capsule first
        server_connection.process_engine_events()
        await asyncio.wait_for(client_connection.wait_closed(), WAIT)  # draining: nothing to answer
        assert endpoint.closing_count == 0  # no draining period was kept for it
        await asyncio.wait_for(endpoint.wait_closed(), WAIT)
        await client.close()


async def test_client_close_returns_at_once_and_wait_closed_waits_out_the_closing_period(
        server_config: ServerConfig, client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    async with _one_client(server_config, client_config) as (client, session, remote):
        endpoint = connection_of(session)._endpoint
        # Hold the client's closing period open until the test says so: close() must not wait.
        period_over, held = asyncio.Event(), asyncio.Event()
        real_wait_quiet = endpoint.wait_quiet

        async def held_wait_quiet(timeout: float) -> bool:
            held.set()
            await period_over.wait()
            return bool(await real_wait_quiet(timeout))

        monkeypatch.setattr(endpoint, "wait_quiet", held_wait_quiet)
        await asyncio.wait_for(client.close(), WAIT)
        assert not endpoint._closed.is_set()  # the socket still answers late packets
        waiting = asyncio.ensure_future(client.wait_closed())
        await asyncio.wait_for(held.wait(), WAIT)  # the period is being waited out, and held
        assert not waiting.done()
        period_over.set()
        await asyncio.wait_for(waiting, WAIT)
        assert endpoint._closed.is_set() and endpoint.closing_count == 0
        await asyncio.wait_for(remote.wait_closed(), WAIT)


async def test_client_close_right_after_the_last_session_closed_sends_the_connection_close(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    # The commonest client: close the session, leave ``async with client``, let asyncio.run
    # return. The session's close had started the connection's close in the background and
    # taken the connection off the client's list, so client.close() returned at once, before
    # the CONNECTION_CLOSE, and the loop's end then cancelled it: the server kept the
    # connection until its idle timeout (found by a bug hunt).
    async with _one_client(server_config, client_config) as (client, session, remote):
        connection = connection_of(session)
        await session.close()
        await asyncio.wait_for(client.close(), WAIT)
        assert connection.state is ConnectionState.CLOSED  # its CONNECTION_CLOSE is out
        await asyncio.wait_for(remote.wait_closed(), WAIT)


async def test_a_loop_shutting_down_during_the_closing_period_closes_the_socket(
        server_config: ServerConfig, client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    async with _one_client(server_config, client_config) as (client, session, _remote):
        endpoint = connection_of(session)._endpoint
        never = asyncio.Event()

        async def endless_wait_quiet(timeout: float) -> bool:
            await never.wait()
            return True

        monkeypatch.setattr(endpoint, "wait_quiet", endless_wait_quiet)
        await client.close()
        lingering = [task for task in client._closing if not task.done()]
        assert lingering and not endpoint._closed.is_set()
        for task in lingering:  # what asyncio.run does to pending tasks when it returns
            task.cancel()
        await asyncio.gather(*lingering, return_exceptions=True)
        assert endpoint._closed.is_set()


async def test_a_closing_connection_does_not_count_against_max_connections(
        server_config: ServerConfig, client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    retire = UdpEndpoint.retire

    def long_period(self: UdpEndpoint, connection: Any, **options: Any) -> Any:
        if options.get("until") is not None and self._peer is None:  # the server's: one that outlasts the test
            options["until"] = time.monotonic() + 60
        return retire(self, connection, **options)

    monkeypatch.setattr(UdpEndpoint, "retire", long_period)
    sessions = SessionQueue()
    config = server_config.replace(max_connections=1, close_timeout=0.5)
    async with running_server(config, {"/s": sessions.handler}) as (server, base), \
            WebTransportClient(config=client_config) as first, WebTransportClient(config=client_config) as second:
        await first.connect(f"{base}/s")
        await connection_of(await sessions.next()).close(reason="make room")
        assert server._endpoint is not None and server._endpoint.closing_count == 1
        session = await second.connect(f"{base}/s")  # admitted while the first one is closing
        assert session.is_ready and len(server.connections) == 1
        assert server.get_stats()["connections_refused"] == 0
        assert server._endpoint.closing_count == 1


# ---------------------------------------------------------------------------- the close is visible at once


def _watch_the_close(connection: WebTransportConnection, session: WebTransportSession,
                     write: Callable[[], object]) -> list[tuple[Any, ...]]:
    """After each datagram the connection handles, once its QUIC connection has taken the
    peer's close in: what the connection, its session, a write and a datagram say then."""
    seen: list[tuple[Any, ...]] = []
    handle = connection.datagram_received

    def outcome(call: Callable[[], object]) -> object:
        try:
            return call()
        except WebTransportError as exc:
            return type(exc)

    def spy(data: bytes, addr: Address, now: float) -> None:
        handle(data, addr, now)
        if connection._quic.is_closing and not seen:
            seen.append((connection.state, session.is_closed, outcome(write),
                         outcome(lambda: session.datagrams.send_nowait(b"late"))))

    connection.datagram_received = spy  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("closing_side", ["server", "client"])
async def test_the_peers_close_changes_every_state_before_any_timer(
        server_config: ServerConfig, client_config: ClientConfig, closing_side: str) -> None:
    sessions = SessionQueue()
    async with running_server(server_config, {"/s": sessions.handler}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/s")
        remote = await sessions.next()
        stream = await session.create_bidirectional_stream()
        stream.write(b"open")
        await stream.drain()
        remote_stream = await asyncio.wait_for(remote.accept_bidirectional_stream(), WAIT)
        if closing_side == "server":
            closer, watched, watched_session, watched_stream = remote, session, session, stream
        else:
            closer, watched, watched_session, watched_stream = session, remote, remote, remote_stream
        watched_connection = connection_of(watched)
        seen = _watch_the_close(watched_connection, watched_session, lambda: watched_stream.write(b"late"))
        # An abrupt close, as a browser tab that goes away sends: no close capsule first.
        closing_connection = connection_of(closer)
        closing_connection.protocol_handler.close(0x100, "abrupt")
        closing_connection.process_engine_events()
        await asyncio.wait_for(watched_session.wait_closed(), WAIT)
        assert len(seen) == 1
        state, session_closed, write, datagram = seen[0]
        assert state is ConnectionState.CLOSED and session_closed
        assert isinstance(write, type) and issubclass(write, WebTransportError)
        assert datagram is False or (isinstance(datagram, type) and issubclass(datagram, WebTransportError))
        assert watched_connection.diagnostics()["close_reason"] == "abrupt"
