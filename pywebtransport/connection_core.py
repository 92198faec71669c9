"""What every part of a connection reads: its state, identity, sessions and read-only facts.

``ConnectionCore`` holds the state of a :class:`~pywebtransport.connection.WebTransportConnection`;
the other parts (``connection_client``, ``connection_closing``, ``connection_keepalive``,
``connection_tls``) are mixins over it, put together in ``connection.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from pywebtransport._io import UdpEndpoint
from pywebtransport._protocol import WebTransportEngine
from pywebtransport._protocol.budget import SharedBudgets
from pywebtransport._protocol.quic import QuicSettings
from pywebtransport._waiters import Latch
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection_config import engine_config
from pywebtransport.events import EventEmitter
from pywebtransport.types import Address, ConnectionId, ConnectionState, SessionId

if TYPE_CHECKING:
    from pywebtransport._protocol import events as ev
    from pywebtransport.connection import SessionRequestHandler
    from pywebtransport.protocol import WebTransportProtocolHandler
    from pywebtransport.session.session import WebTransportSession

__all__ = ["ConnectionCore"]

#: The states in which the connection is closed or closing, read per packet and per write
#: (``is_closed``): one module global, where ``ConnectionState.X`` costs about 100 ns a read
#: on Python 3.10 and 3.11 (``EnumType.__getattr__``).
_ENDING_STATES = (ConnectionState.CLOSED, ConnectionState.FAILED, ConnectionState.CLOSING)


class ConnectionCore:
    """The state of one connection and what its parts share (internal; see WebTransportConnection)."""

    def __init__(self, *, config: ClientConfig | ServerConfig, endpoint: UdpEndpoint,
                 quic_configuration: QuicSettings, remote_address: Address,
                 original_destination_connection_id: bytes | None = None,
                 on_session_request: SessionRequestHandler | None = None, owns_endpoint: bool = False,
                 budgets: SharedBudgets | None = None) -> None:
        self._config = config
        self._endpoint = endpoint
        self._owns_endpoint = owns_endpoint
        self._loop = asyncio.get_running_loop()
        self._remote_address = remote_address
        self._on_session_request = on_session_request
        quic = quic_configuration.create_connection(
            original_destination_connection_id=original_destination_connection_id)
        self._quic = quic
        self._engine = WebTransportEngine(quic, config=engine_config(config), budgets=budgets)
        self._engine_events = self._engine.pending_events
        self._connection_id: ConnectionId = os.urandom(8).hex()
        self._state = ConnectionState.IDLE if self.is_client else ConnectionState.CONNECTING
        self._events = EventEmitter()
        self._sessions: dict[SessionId, WebTransportSession] = {}
        # Latches, not asyncio.Events: an Event holds a waiter deque (~0.7 KiB) per connection
        # whether or not anyone waits; nothing ever clears these two.
        self._h3_ready = Latch()
        self._closed = Latch()
        self._close_error: BaseException | None = None
        self._close_code: int | None = None
        self._close_reason = ""
        self._pinned = None if not isinstance(config, ClientConfig) else config.server_certificate_hashes
        self._peer_checked = False
        self._created_at = self._loop.time()
        self._established_at: float | None = None
        self._keep_alive: asyncio.TimerHandle | None = None
        self._pings = 0
        self._sessionless_since = self._loop.time()  # loop clock: when the last session left
        self._ack_waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._close_task: asyncio.Task[None] | None = None
        self._datagrams_from_peer = 0  # how far a connect got (connect_stage)
        for cid in quic.host_connection_ids():
            endpoint.register_cid(cid, self)

    # ------------------------------------------------------------------ properties

    @property
    def config(self) -> ClientConfig | ServerConfig:
        return self._config

    @property
    def connection_id(self) -> ConnectionId:
        return self._connection_id

    @property
    def is_client(self) -> bool:
        return isinstance(self._config, ClientConfig)

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def is_connected(self) -> bool:
        return self._state is ConnectionState.CONNECTED

    @property
    def is_closed(self) -> bool:
        return self._state in _ENDING_STATES

    @property
    def events(self) -> EventEmitter:
        return self._events

    @property
    def remote_address(self) -> Address:
        return self._remote_address

    @property
    def local_address(self) -> Address:
        return self._endpoint.local_address

    @property
    def protocol_handler(self) -> WebTransportProtocolHandler:
        """The sans-I/O engine of this connection."""
        return self._engine

    @property
    def dialect(self) -> str | None:
        """The WebTransport draft the peer spoke in its SETTINGS (None before them)."""
        return self._engine.dialect

    @property
    def sessions(self) -> list[WebTransportSession]:
        return list(self._sessions.values())

    def get_session(self, session_id: SessionId) -> WebTransportSession | None:
        return self._sessions.get(session_id)

    if TYPE_CHECKING:
        # Provided by other parts of WebTransportConnection (connection.py and the mixins).
        def datagram_received(self, data: bytes, addr: Address, now: float) -> None: ...
        def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]: ...
        def get_timer(self) -> float | None: ...
        def handle_timer(self, now: float) -> None: ...
        def schedule_flush(self) -> None: ...
        def process_engine_events(self) -> None: ...
        def _process_events(self) -> None: ...
        def handle_event(self, event: ev.EngineEvent) -> None: ...
        def _terminated(self, error_code: int, reason: str, by_peer: bool) -> None: ...
        def _drop_unauthenticated(self) -> None: ...
        async def _abandon(self, reason: str) -> None: ...
        def _add_session(self, session: WebTransportSession) -> None: ...
        def _remove_session(self, session_id: SessionId) -> WebTransportSession | None: ...
