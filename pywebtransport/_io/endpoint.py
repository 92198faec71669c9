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

How the socket is opened and closed is here; the rest of the endpoint is in parts named for
what they hold: ``endpoint_core.py`` (its state), ``routing.py`` (receiving, routing by
connection id), ``transmit.py`` (transmit passes, socket writes, timers), ``closing.py``
(the closing period) and ``drivers.py`` (what it needs from a connection). Every
name stays importable from here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any, cast

from pywebtransport._io.closing import MAX_CLOSING_PERIOD, ClosingConnection, EndpointClosing
from pywebtransport._io.drivers import (
    ClientDriver,
    ConnectionDriver,
    InitialCheck,
    NewConnectionFactory,
    RefusalBuilder,
)
from pywebtransport._io.modes import UdpMode, mmsg, requested_mode, resolve_mode
from pywebtransport._io.routing import _CLIENT_RECEIVE_BATCH, _RECEIVE_BATCH, EndpointRouting
from pywebtransport._io.transmit import EndpointTransmit
from pywebtransport.types import Address

__all__ = ["MAX_CLOSING_PERIOD", "ClientDriver", "ClosingConnection", "ConnectionDriver", "NewConnectionFactory",
           "RefusalBuilder", "UdpEndpoint"]

logger = logging.getLogger(__name__)


class UdpEndpoint(EndpointRouting, EndpointTransmit, EndpointClosing):
    """A UDP socket serving one client connection or many server connections."""

    # -- setup
    @classmethod
    async def open(cls, *, local_addr: Address, new_connection: NewConnectionFactory | None = None,
                   socket_buffer_size: int = 4 << 20, mode: UdpMode | None = None,
                   refuse: RefusalBuilder | None = None, remote_addr: Address | None = None,
                   reuse_port: bool = False, initial_check: InitialCheck | None = None) -> UdpEndpoint:
        """Bind a UDP socket at ``local_addr`` (port 0 picks a free port).

        ``remote_addr`` connects the socket to the one peer of a client endpoint, so that
        an ICMP port unreachable from it surfaces (``ClientDriver.error_received``).

        ``initial_check`` (a server's) is asked, before ``new_connection``, whether a datagram
        that would open a connection carries an Initial that decrypts; one that does not is
        dropped (counted in ``initials_dropped``), so junk never costs a connection.

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
                       remote_addr=remote_addr, initial_check=initial_check)
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
        size = _RECEIVE_BATCH if self._peer is None else _CLIENT_RECEIVE_BATCH  # a client's socket: one peer
        batch = mmsg.BatchSocket(sock, batch=size) if mode is UdpMode.MMSG else None
        self._loop.add_reader(sock.fileno(), self._on_readable)
        self._sock, self._batch, self._mode = sock, batch, mode
        self._local_address = _address(sock.getsockname())

    @property
    def receive_batch(self) -> int | None:
        """Datagrams one batched read takes at most (``mmsg`` mode); None in other modes."""
        return self._batch.batch if self._batch is not None else None

    @property
    def mode(self) -> UdpMode:
        """How this endpoint reads and writes its socket."""
        return self._mode

    @property
    def gso(self) -> bool:
        """Whether sends of equal-size datagrams are coalesced by the kernel (UDP GSO)."""
        return self._batch is not None and self._batch.gso

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

    # -- shutdown
    def close(self) -> None:
        """Flush what is pending, then close the socket."""
        self.flush_everything()
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for closing in list(self._closing):  # their periods end with the socket
            closing.until = None
            self._forget(closing)
        self._closing.clear()
        if isinstance(self._client, ClosingConnection):
            self._client = None
        self._set_quiet()
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
