"""UDP endpoint: one socket, many QUIC connections, one transmit pass per loop wake-up.

Received datagrams are handed to their connection at once; what the connections have to
send is collected in a single ``call_soon`` pass, so a burst of reads or writes costs one
flush, not one per call. Time given to QUIC is ``time.monotonic()``: aioquic's pacer wants a
fine clock, and some loops' ``time()`` is coarse (PROTOCOL.md, aioquic pitfalls). How the
socket is read and written (``modes.UdpMode``) is chosen when the endpoint opens.

A client endpoint serves one peer, so its socket is connected to it: the kernel then reports
an ICMP port unreachable as ECONNREFUSED on the socket, which the endpoint hands to the
client connection (``error_received``) instead of letting it wait out its timeout.

A connection that has closed is retired (``retire``): for its closing or draining period
(RFC 9000 §10.2, three PTOs) its connection ids still route, to a ``ClosingConnection``
holding only the datagrams of its CONNECTION_CLOSE. A peer whose copy of the close was lost
learns of it from the answer to its next packet instead of waiting out its idle timeout.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from pywebtransport._io.modes import UdpMode, mmsg, requested_mode, resolve_mode
from pywebtransport._io.packets import PacketType, encode_version_negotiation, parse_header
from pywebtransport.types import Address

__all__ = ["MAX_CLOSING_PERIOD", "ClientDriver", "ClosingConnection", "ConnectionDriver", "UdpEndpoint"]

logger = logging.getLogger(__name__)

#: Length of the connection ids aioquic issues (its default): short headers do not say it.
_HOST_CID_LENGTH = 8
#: Datagrams read per readable event before the connections get to transmit.
_RECEIVE_BATCH = 64
#: RFC 9000 §14.1: a server drops an Initial in a UDP payload smaller than this.
_MIN_INITIAL_DATAGRAM = 1200
#: How systems report an ICMP port unreachable on a UDP socket.
_UNREACHABLE = (ConnectionRefusedError, ConnectionResetError)
#: The longest a closed connection is kept routed (seconds), whatever its PTO says: a peer
#: that inflates its RTT cannot make closing connections pile up.
MAX_CLOSING_PERIOD = 10.0
#: RFC 9000 §8.1: before the peer's address is validated, at most this many bytes are sent
#: per byte received from it.
_AMPLIFICATION_FACTOR = 3


class ConnectionDriver(Protocol):
    """What the endpoint needs from a connection."""

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


class ClientDriver(ConnectionDriver, Protocol):
    """A client connection: it alone uses its endpoint, so socket errors concern it."""

    def error_received(self, exc: OSError) -> None: ...


class ClosingConnection:
    """What is left of a connection in its closing or draining period (RFC 9000 §10.2).

    Closing (we sent CONNECTION_CLOSE): packets from the peer are answered with the same
    datagrams again, which §10.2.1 allows, at a limited rate: after the 1st, 2nd, 4th, 8th...
    packet, and within three times the bytes received while the peer's address is not
    validated (§8.1). Draining (the peer closed, ``close_datagrams`` empty): nothing is sent
    (§10.2.2). At ``until`` the endpoint forgets it. Under a kilobyte each (its close
    datagrams, connection ids and counters).
    """

    __slots__ = ("_budget", "_due", "_next_answer", "answers", "cids", "close_datagrams", "close_endpoint", "peer",
                 "received", "until", "validated")

    def __init__(self, *, close_datagrams: tuple[bytes, ...], peer: Address, until: float, validated: bool,
                 close_endpoint: bool, cids: tuple[bytes, ...] = ()) -> None:
        #: The connection ids that still route here.
        self.cids = cids
        self.close_datagrams = close_datagrams
        self.peer = peer
        #: When the period ends (``time.monotonic()``); None once it is over.
        self.until: float | None = until
        self.validated = validated
        #: Close the endpoint once the period is over (a client's own socket).
        self.close_endpoint = close_endpoint
        self.received = 0  # packets from the peer during the period
        self.answers = 0  # times the CONNECTION_CLOSE was sent again
        self._next_answer = 1
        self._due = False
        self._budget = 0

    @property
    def draining(self) -> bool:
        """Whether nothing is ever sent (the peer closed, or our close could not be built)."""
        return not self.close_datagrams

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        self.received += 1
        self.peer = addr
        if not self.validated:
            self._budget += _AMPLIFICATION_FACTOR * len(data)
        if self.close_datagrams and self.received >= self._next_answer:
            self._next_answer *= 2
            self._due = True

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        if not self._due:
            return []
        self._due = False
        if not self.validated:
            size = sum(len(data) for data in self.close_datagrams)
            if size > self._budget:
                return []  # it would amplify: wait for more from the peer
            self._budget -= size
        self.answers += 1
        return [(data, self.peer) for data in self.close_datagrams]

    def get_timer(self) -> float | None:
        return self.until

    def handle_timer(self, now: float) -> None:
        """Nothing to do here: the endpoint forgets it once ``until`` has passed."""

    def error_received(self, exc: OSError) -> None:
        """The connection is gone already: a socket error concerns no one."""

    def __repr__(self) -> str:
        kind = "draining" if self.draining else "closing"
        return f"<ClosingConnection {kind} peer={self.peer[0]}:{self.peer[1]} received={self.received}>"


NewConnectionFactory = Callable[[bytes, Address], "ConnectionDriver | None"]
#: Builds the reply to an Initial the server declines: (version, client DCID, client SCID) ->
#: a datagram carrying CONNECTION_CLOSE(CONNECTION_REFUSED), or None to drop it silently.
RefusalBuilder = Callable[[int, bytes, bytes], "bytes | None"]


class UdpEndpoint(asyncio.DatagramProtocol):
    """A UDP socket serving one client connection or many server connections."""

    def __init__(self, *, new_connection: NewConnectionFactory | None = None,
                 socket_buffer_size: int = 4 << 20, loop: asyncio.AbstractEventLoop | None = None,
                 refuse: RefusalBuilder | None = None, remote_addr: Address | None = None) -> None:
        self._loop = asyncio.get_running_loop() if loop is None else loop
        self._new_connection = new_connection
        self._refuse = refuse
        #: Initials answered with CONNECTION_REFUSED because the factory declined them.
        self.refused = 0
        #: The one peer a client endpoint's socket is connected to (None: a server's socket).
        self._peer = remote_addr
        #: ICMP port-unreachable reports (ECONNREFUSED) seen on a connected socket.
        self.unreachable = 0
        self._socket_buffer_size = socket_buffer_size
        self._mode = UdpMode.TRANSPORT
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None  # set when the loop lets us read the socket ourselves
        self._batch: mmsg.BatchSocket | None = None  # set in mmsg mode
        self._by_cid: dict[bytes, ConnectionDriver] = {}
        self._client: ClientDriver | None = None
        self._dirty: set[ConnectionDriver] = set()
        self._flush_handle: asyncio.Handle | None = None
        self._timers: dict[ConnectionDriver, tuple[float, asyncio.TimerHandle]] = {}
        self._closed = asyncio.Event()
        self._local_address: Address | None = None
        #: Connections in their closing or draining period (see ``retire``).
        self._closing: set[ClosingConnection] = set()
        self._quiet = asyncio.Event()  # set while no connection is in its closing period
        self._quiet.set()
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.send_dropped = 0
        self.flushes = 0

    # -- setup
    @classmethod
    async def open(cls, *, local_addr: Address, new_connection: NewConnectionFactory | None = None,
                   socket_buffer_size: int = 4 << 20, mode: UdpMode | None = None,
                   refuse: RefusalBuilder | None = None, remote_addr: Address | None = None,
                   reuse_port: bool = False) -> UdpEndpoint:
        """Bind a UDP socket at ``local_addr`` (port 0 picks a free port).

        ``remote_addr`` connects the socket to the one peer of a client endpoint, so that
        an ICMP port unreachable from it surfaces (``ClientDriver.error_received``).

        ``reuse_port`` sets SO_REUSEPORT before binding, so that processes can share the port
        (OSError where the system has no SO_REUSEPORT).

        ``mode`` defaults to ``PYWEBTRANSPORT_UDP_MODE``; a forced ``reader`` or ``mmsg`` on a
        loop that cannot watch sockets raises RuntimeError instead of quietly falling back.
        """
        loop = asyncio.get_running_loop()
        requested = requested_mode() if mode is None else mode
        chosen = resolve_mode(requested, platform=sys.platform, batched=mmsg.BATCHED)
        family = socket.AF_INET6 if ":" in local_addr[0] else socket.AF_INET
        endpoint = cls(new_connection=new_connection, socket_buffer_size=socket_buffer_size, refuse=refuse,
                       remote_addr=remote_addr)
        if chosen is not UdpMode.TRANSPORT:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                if reuse_port:
                    _reuse_port(sock)
                sock.bind(local_addr)
                _tune(sock, socket_buffer_size)
                if remote_addr is not None:
                    sock.connect(remote_addr)  # UDP: no packet is sent, the kernel notes the peer
                endpoint.attach_socket(sock, mode=chosen)
                return endpoint
            except NotImplementedError:  # e.g. the Windows proactor loop: use asyncio's transport
                sock.close()
                if requested is not UdpMode.AUTO:
                    raise RuntimeError(f"UDP mode {requested.value!r} needs a loop with add_reader; "
                                       f"{type(loop).__name__} has none (use 'transport' or 'auto')") from None
            except BaseException:
                sock.close()
                raise
        _, protocol = await loop.create_datagram_endpoint(lambda: endpoint, local_addr=local_addr,
                                                          remote_addr=remote_addr, family=family,
                                                          reuse_port=reuse_port or None)
        return protocol

    def attach_socket(self, sock: socket.socket, *, mode: UdpMode) -> None:
        """Read and write a bound, non-blocking ``sock`` ourselves (``reader`` or ``mmsg``).

        Reading it at each wake-up drains every datagram waiting, so the connections
        transmit once per batch instead of once per datagram. NotImplementedError means the
        loop cannot watch sockets.
        """
        if mode not in (UdpMode.READER, UdpMode.MMSG):
            raise ValueError(f"attach_socket reads the socket itself; mode {mode.value!r} does not")
        batch = mmsg.BatchSocket(sock, batch=_RECEIVE_BATCH) if mode is UdpMode.MMSG else None
        self._loop.add_reader(sock.fileno(), self._on_readable)
        self._sock, self._batch, self._mode = sock, batch, mode
        self._local_address = _address(sock.getsockname())

    @property
    def mode(self) -> UdpMode:
        """How this endpoint reads and writes its socket."""
        return self._mode

    @property
    def gso(self) -> bool:
        """Whether sends of equal-size datagrams are coalesced by the kernel (UDP GSO)."""
        return self._batch is not None and self._batch.gso

    def _on_readable(self) -> None:
        if self._batch is not None:
            try:
                received = self._batch.recv()
            except OSError as exc:  # e.g. an ICMP error surfaced on the socket: not fatal
                self._socket_error(exc)
                return
            for data, addr in received:
                self.datagram_received(data, addr)
            return
        sock = self._sock
        if sock is None:
            return
        for _ in range(_RECEIVE_BATCH):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error surfaced on the socket: not fatal
                self._socket_error(exc)
                return
            self.datagram_received(data, addr)

    def _socket_error(self, exc: OSError) -> None:
        """A socket call failed: a refusal on a connected socket goes to the client connection."""
        if isinstance(exc, _UNREACHABLE) and self._peer is not None:
            # Linux and macOS report an ICMP port unreachable as ECONNREFUSED only on a
            # connected socket; Windows as WSAECONNRESET.
            self.unreachable += 1
            if self._client is not None:
                self._client.error_received(exc)
            return
        logger.debug("socket error: %s", exc)

    def error_received(self, exc: Exception) -> None:
        """asyncio's transport reports a failed socket call (``transport`` mode)."""
        if isinstance(exc, OSError):
            self._socket_error(exc)
        else:  # pragma: no cover - asyncio only passes OSError
            logger.debug("socket error: %r", exc)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._local_address = _address(transport.get_extra_info("sockname"))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _tune(sock, self._socket_buffer_size)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed.set()

    @property
    def local_address(self) -> Address:
        """The bound address (still known once the socket is closed)."""
        if self._local_address is None:
            raise RuntimeError("the endpoint has no socket yet")
        return self._local_address

    def attach_client(self, connection: ClientDriver) -> None:
        """Route every datagram on this socket, and its errors, to one client connection."""
        self._client = connection

    def register_cid(self, cid: bytes, connection: ConnectionDriver) -> None:
        self._by_cid[cid] = connection

    def unregister_cid(self, cid: bytes) -> None:
        self._by_cid.pop(cid, None)

    def forget(self, connection: ConnectionDriver) -> None:
        """Drop every route and timer of a finished connection."""
        self._forget(connection)

    def _forget(self, connection: ConnectionDriver) -> list[bytes]:
        """``forget``; returns the connection ids that routed to ``connection``."""
        if isinstance(connection, ClosingConnection):
            cids = [cid for cid in connection.cids if self._by_cid.get(cid) is connection]
        else:
            cids = [cid for cid, conn in self._by_cid.items() if conn is connection]
        for cid in cids:
            del self._by_cid[cid]
        entry = self._timers.pop(connection, None)
        if entry is not None:
            entry[1].cancel()
        self._dirty.discard(connection)
        if self._client is connection:
            self._client = None
        return cids

    @property
    def connection_count(self) -> int:
        """Live connections routed here (those in their closing period are not counted)."""
        return len({c for c in self._by_cid.values() if not isinstance(c, ClosingConnection)})

    @property
    def closing_count(self) -> int:
        """Closed connections still in their closing or draining period (see ``retire``)."""
        return len(self._closing)

    def retire(self, connection: ConnectionDriver, *, close_datagrams: tuple[bytes, ...] = (),
               until: float | None = None, validated: bool = True, peer: Address | None = None,
               close_endpoint: bool = False) -> ClosingConnection | None:
        """A connection has closed: route its connection ids to a ``ClosingConnection`` until
        ``until`` (``time.monotonic()``; at most ``MAX_CLOSING_PERIOD`` from now), then forget them.

        ``close_datagrams`` are the datagrams that carried our CONNECTION_CLOSE, sent again to
        answer late packets; none means draining (RFC 9000 §10.2.2): packets are dropped.
        ``validated`` says whether the peer's address was validated (else answers stay within
        three times what it sent, §8.1). ``close_endpoint`` closes this endpoint when the
        period ends (a client's own socket), or at once when there is no period (``until``
        None or past). Returns the record kept, or None.
        """
        was_client = self._client is connection
        cids = self._forget(connection)
        now = time.monotonic()
        if until is None or until <= now or not (cids or was_client):
            if close_endpoint:
                self.close()
            return None
        address = peer if peer is not None else self._peer
        if address is None:
            if close_endpoint:
                self.close()
            return None
        closing = ClosingConnection(close_datagrams=close_datagrams, peer=address,
                                    until=min(until, now + MAX_CLOSING_PERIOD), validated=validated,
                                    close_endpoint=close_endpoint, cids=tuple(cids))
        for cid in cids:
            self._by_cid[cid] = closing
        if was_client:
            self._client = closing
        self._closing.add(closing)
        self._quiet.clear()
        self._arm_timer(closing)
        return closing

    def _expire(self, closing: ClosingConnection) -> None:
        """The closing period of ``closing`` is over: forget it (and close a client's socket)."""
        closing.until = None
        self._closing.discard(closing)
        self.forget(closing)
        if not self._closing:
            self._quiet.set()
        if closing.close_endpoint:
            self.close()

    async def wait_quiet(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, until no closed connection is in its closing
        period any more (True), or the endpoint closed; False when the time ran out first."""
        if self._quiet.is_set():
            return True
        try:
            await asyncio.wait_for(self._quiet.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # -- receive
    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        address: Address = (str(addr[0]), int(addr[1]))
        self.datagrams_in += 1
        now = time.monotonic()
        connection = self._client or self._route(data, address)
        if connection is None:
            return
        try:
            connection.datagram_received(data, address, now)
        except Exception:  # a connection's bug must not kill the socket for everyone
            logger.exception("connection failed to handle a datagram from %s", address)
        self.schedule_flush(connection)

    def _route(self, data: bytes, addr: Address) -> ConnectionDriver | None:
        header = parse_header(data, short_cid_length=_HOST_CID_LENGTH)
        if header is None:
            return None  # not QUIC: ignore
        connection = self._by_cid.get(header.destination_cid)
        if connection is not None:
            return connection
        if self._new_connection is None or len(data) < _MIN_INITIAL_DATAGRAM:
            # RFC 9000 §14.1 and §6: only a full-size datagram may open a connection or be
            # answered with Version Negotiation (which limits amplification).
            return None
        if header.packet_type is PacketType.UNKNOWN:
            self._send_now([(encode_version_negotiation(destination_cid=header.source_cid,
                                                        source_cid=header.destination_cid), addr)])
            return None
        if header.packet_type is not PacketType.INITIAL:
            return None  # a Handshake/1-RTT packet for a connection we do not have
        connection = self._new_connection(header.destination_cid, addr)
        if connection is not None:
            self._by_cid[header.destination_cid] = connection
        elif self._refuse is not None and header.version is not None:
            # Declined (full, closing, too many handshakes): say so at once, so the client
            # does not wait out its whole connect timeout (RFC 9000 §10.2.3). The reply is far
            # smaller than the 1200-byte Initial that asked, so it amplifies nothing.
            reply = self._refuse(header.version, header.destination_cid, header.source_cid)
            if reply is not None:
                self.refused += 1
                self._send_now([(reply, addr)])
        return connection

    # -- transmit
    def schedule_flush(self, connection: ConnectionDriver) -> None:
        """Mark a connection as having something to send; flush once this wake-up ends."""
        self._dirty.add(connection)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self.flushes += 1
        dirty, self._dirty = self._dirty, set()
        outgoing: list[tuple[bytes, Address]] = []
        for connection in dirty:
            self._collect(connection, outgoing)
        self._send_now(outgoing)

    def transmit(self, connection: ConnectionDriver) -> None:
        """Send what one connection has to send right now (and re-arm its timer)."""
        self._dirty.discard(connection)
        outgoing: list[tuple[bytes, Address]] = []
        self._collect(connection, outgoing)
        self._send_now(outgoing)

    def _collect(self, connection: ConnectionDriver, outgoing: list[tuple[bytes, Address]]) -> None:
        try:
            outgoing.extend(connection.datagrams_to_send(time.monotonic()))
        except Exception:
            logger.exception("connection failed while building packets")
        self._arm_timer(connection)

    def _send_now(self, outgoing: list[tuple[bytes, Address]]) -> None:
        if not outgoing:
            return
        if self._batch is not None:
            sent = self._batch.send(outgoing)
            self.datagrams_out += sent
            self.send_dropped += len(outgoing) - sent  # a full buffer: lost packets QUIC recovers
            return
        for data, addr in outgoing:
            self._send(data, addr)

    def _send(self, data: bytes, addr: Address) -> None:
        if self._sock is not None:
            try:
                if self._peer is not None:
                    self._sock.send(data)  # connected: some systems refuse sendto with an address
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                self.send_dropped += 1  # the kernel buffer is full: a lost packet QUIC recovers
                return
            except OSError as exc:  # a refusal reported by an earlier ICMP, or a bad address
                self._socket_error(exc)
                return
            self.datagrams_out += 1
        elif self._transport is not None and not self._transport.is_closing():
            # A connected transport takes no address (asyncio refuses any but its peer's).
            self._transport.sendto(data, None if self._peer is not None else addr)
            self.datagrams_out += 1

    def _arm_timer(self, connection: ConnectionDriver) -> None:
        deadline = connection.get_timer()
        entry = self._timers.get(connection)
        if entry is not None:
            if entry[0] == deadline:
                return
            entry[1].cancel()
            del self._timers[connection]
        if deadline is None:
            return
        delay = max(0.0, deadline - time.monotonic())
        handle = self._loop.call_later(delay, self._on_timer, connection)
        self._timers[connection] = (deadline, handle)

    def _on_timer(self, connection: ConnectionDriver) -> None:
        self._timers.pop(connection, None)
        if isinstance(connection, ClosingConnection):
            self._expire(connection)
            return
        try:
            connection.handle_timer(time.monotonic())
        except Exception:
            logger.exception("connection failed in its timer")
        self.schedule_flush(connection)

    # -- shutdown
    def close(self) -> None:
        """Flush what is pending, then close the socket."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for closing in list(self._closing):  # their periods end with the socket
            closing.until = None
            self._forget(closing)
        self._closing.clear()
        if isinstance(self._client, ClosingConnection):
            self._client = None
        self._quiet.set()
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self._batch = None
            self._closed.set()
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()


def _address(sockname: Any) -> Address:
    """(host, port) of a socket name (IPv6 names carry flow info and scope id as well)."""
    return (str(sockname[0]), int(sockname[1]))


def _reuse_port(sock: socket.socket) -> None:
    """SO_REUSEPORT on ``sock`` (OSError naming the option where the system lacks it)."""
    option = getattr(socket, "SO_REUSEPORT", None)
    if option is None:
        raise OSError(f"SO_REUSEPORT is not available on {sys.platform}")
    sock.setsockopt(socket.SOL_SOCKET, option, 1)


def _tune(sock: socket.socket, size: int) -> None:
    """Ask for ``size``-byte kernel buffers: bursts of datagrams wait there between wake-ups."""
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
        except OSError:  # pragma: no cover - some systems cap or refuse it
            logger.debug("could not set socket buffer option %s", option)
