"""What arrives at the UDP endpoint: reading the socket, routing each datagram by its
destination connection id, new connections (only from a full-size Initial, RFC 9000 §14.1),
Version Negotiation, refusals, and socket errors (a refusal goes to the client connection).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pywebtransport._io.closing import ClosingConnection
from pywebtransport._io.drivers import ClientDriver, ConnectionDriver
from pywebtransport._io.endpoint_core import EndpointCore
from pywebtransport._io.modes import mmsg
from pywebtransport._io.packets import PacketType, encode_version_negotiation, parse_header
from pywebtransport.types import Address

__all__ = ["EndpointRouting"]

#: The endpoint's logger (docs/debugging.md names it): every part of the class logs to it.
logger = logging.getLogger("pywebtransport._io.endpoint")

#: Length of the connection ids aioquic issues (its default): short headers do not say it.
_HOST_CID_LENGTH = 8
#: Datagrams read per readable event before the connections get to transmit.
_RECEIVE_BATCH = 64
#: What a client's socket, which hears from one server, starts with. In ``mmsg`` mode each
#: slot is a 2 KiB receive buffer plus its headers: 64 of them cost a client process about
#: 180 KiB of resident memory per connection (measured: 313 against 132 KiB per idle
#: session, client and server, against ``reader`` mode). A read that fills the small batch
#: (a download under way) moves the socket to ``_RECEIVE_BATCH`` for good: 16 slots alone
#: cut a 100-stream download by about 15 %.
_CLIENT_RECEIVE_BATCH = 8
#: RFC 9000 §14.1: a server drops an Initial in a UDP payload smaller than this.
_MIN_INITIAL_DATAGRAM = 1200
#: RFC 9000 §7.2: a client's first Destination Connection ID MUST be at least 8 bytes.
_MIN_INITIAL_CID = 8
#: How systems report an ICMP port unreachable on a UDP socket.
_UNREACHABLE = (ConnectionRefusedError, ConnectionResetError)


class EndpointRouting(EndpointCore):
    """Receiving and routing datagrams (a part of UdpEndpoint)."""

    def _on_readable(self) -> None:
        if self._batch is not None:
            try:
                received = self._batch.recv()
            except OSError as exc:  # e.g. an ICMP error surfaced on the socket: not fatal
                self._socket_error(exc)
                return
            size = self._batch.batch
            if size < _RECEIVE_BATCH and len(received) == size and self._sock is not None:
                # A client's small batch filled up: more is arriving than it was sized for.
                self._batch = mmsg.BatchSocket(self._sock, batch=_RECEIVE_BATCH)
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
        self._unschedule(connection)
        if self._client is connection:
            self._client = None
        return cids

    @property
    def connection_count(self) -> int:
        """Live connections routed here (those in their closing period are not counted)."""
        return len({c for c in self._by_cid.values() if not isinstance(c, ClosingConnection)})

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
        if isinstance(connection, ClosingConnection):  # its answer (the close) is ready now
            self.schedule_flush(connection)
        else:
            self.schedule_flush_after_receive(connection)

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
        if len(header.destination_cid) < _MIN_INITIAL_CID or (
                self._initial_check is not None and not self._initial_check(data)):
            self.initials_dropped += 1  # not an Initial anyone could have sent: no connection, no answer
            return None
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

