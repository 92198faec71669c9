"""What every part of the UDP endpoint reads: its socket, routes, timers and counters.

``EndpointCore`` holds the state of a :class:`~pywebtransport._io.endpoint.UdpEndpoint`; the
other parts (``routing``, ``transmit``, ``closing``) are mixins over it, put together in
``endpoint.py``.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from pywebtransport._io.drivers import (
    ClientDriver,
    ConnectionDriver,
    InitialCheck,
    NewConnectionFactory,
    RefusalBuilder,
)
from pywebtransport._io.modes import UdpMode, mmsg
from pywebtransport.types import Address

if TYPE_CHECKING:
    from pywebtransport._io.closing import ClosingConnection

__all__ = ["EndpointCore"]


class EndpointCore(asyncio.DatagramProtocol):
    """The state of one UDP endpoint and what its parts share (internal; see UdpEndpoint)."""

    def __init__(self, *, new_connection: NewConnectionFactory | None = None,
                 socket_buffer_size: int = 4 << 20, loop: asyncio.AbstractEventLoop | None = None,
                 refuse: RefusalBuilder | None = None, remote_addr: Address | None = None,
                 initial_check: InitialCheck | None = None) -> None:
        self._loop = asyncio.get_running_loop() if loop is None else loop
        self._new_connection = new_connection
        self._refuse = refuse
        self._initial_check = initial_check
        #: Datagrams shaped like an Initial that did not decrypt: no connection was made.
        self.initials_dropped = 0
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
        #: Connections a datagram reached this turn, and those that waited one turn already
        #: (see ``schedule_flush_after_receive``).
        self._received: set[ConnectionDriver] = set()
        self._waited: set[ConnectionDriver] = set()
        self._flush_handle: asyncio.Handle | None = None
        self._timers: dict[ConnectionDriver, tuple[float, asyncio.TimerHandle]] = {}
        self._closed = asyncio.Event()
        self._local_address: Address | None = None
        #: Connections in their closing or draining period (see ``retire``).
        self._closing: set[ClosingConnection] = set()
        self._quiet = asyncio.Event()  # set while no connection is in its closing period
        self._quiet.set()
        #: ``wait_quiet`` calls under way, woken when ``_quiet`` is set (see ``_set_quiet``).
        self._quiet_waiters: list[asyncio.Future[bool]] = []
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.send_dropped = 0
        self.flushes = 0

    if TYPE_CHECKING:
        # Provided by other parts of UdpEndpoint (endpoint.py and the mixins).
        def schedule_flush(self, connection: ConnectionDriver) -> None: ...
        def schedule_flush_after_receive(self, connection: ConnectionDriver) -> None: ...
        def _unschedule(self, connection: ConnectionDriver) -> None: ...
        def _send_now(self, outgoing: list[tuple[bytes, Address]]) -> None: ...
        def _arm_timer(self, connection: ConnectionDriver) -> None: ...
        def _socket_error(self, exc: OSError) -> None: ...
        def forget(self, connection: ConnectionDriver) -> None: ...
        def _forget(self, connection: ConnectionDriver) -> list[bytes]: ...
        def _expire(self, closing: ClosingConnection) -> None: ...
        def close(self) -> None: ...
        def _set_quiet(self) -> None: ...
