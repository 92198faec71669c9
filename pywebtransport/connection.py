"""WebTransportConnection: one QUIC connection, its HTTP/3 engine and the sessions on it."""

from __future__ import annotations

import asyncio
import builtins
import enum
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pywebtransport import constants as c
from pywebtransport._io import UdpEndpoint
from pywebtransport._protocol import EngineConfig, WebTransportEngine
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.budget import SharedBudgets
from pywebtransport._protocol.quic import (
    TLS_ALERT_BAD_CERTIFICATE,
    TLS_ALERT_CERTIFICATE_REQUIRED,
    QuicSettings,
    RttSample,
    close_with_tls_alert,
    resolve_backend,
    verify_client_certificate,
)
from pywebtransport._protocol.settings import Dialect
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.events import EventEmitter, EventType
from pywebtransport.exceptions import (
    CertificateError,
    ConfigurationError,
    ConnectionClosedError,
    ConnectionRefusedError,
    HandshakeError,
    TimeoutError,
)
from pywebtransport.session.session import WebTransportSession
from pywebtransport.types import Address, CloseCause, ConnectionId, ConnectionState, Headers, SessionId, StreamId

if TYPE_CHECKING:
    from cryptography import x509

    from pywebtransport.protocol import WebTransportProtocolHandler

__all__ = ["ConnectStage", "SessionRequestHandler", "WebTransportConnection", "build_quic_configuration",
           "engine_config"]

logger = logging.getLogger(__name__)

#: After a close capsule was acknowledged, how long a close waits at most for the peer's FIN
#: on the CONNECT stream (the sign its application read the close) before CONNECTION_CLOSE.
CLOSE_CONFIRM_GRACE = 0.25
#: After a browser confirmed a close, how long before CONNECTION_CLOSE may follow.
BROWSER_CLOSE_SETTLE = 0.1

#: The QUIC transport error a server refuses a connection with (RFC 9000 §20.1): when it
#: is full or shutting down (``WebTransportServer``), answering the client's Initial at once.
_QUIC_CONNECTION_REFUSED = 0x02

#: Events that concern one session and go to its ``handle_event``.
_SESSION_EVENTS = (ev.StreamDataReceived, ev.DatagramReceived, ev.StreamOpened, ev.StreamReset,
                   ev.StreamStopSending, ev.StreamWritable, ev.StreamCreditAvailable, ev.SessionEstablished,
                   ev.SessionDraining, ev.SessionCreditUpdated, ev.SessionBlocked)


class ConnectStage(enum.Enum):
    """How far a client connection got on its way to HTTP/3: named when a connect times out."""

    NO_REPLY = "no reply at all from the peer (nothing listening, or the packets are dropped)"
    HANDSHAKE = "the peer answered but the QUIC/TLS handshake did not complete"
    SETTINGS = "QUIC is up but the peer sent no HTTP/3 SETTINGS"
    HTTP3 = "HTTP/3 is up (the peer's SETTINGS arrived)"


#: Called by a server connection for every session a client asks for.
SessionRequestHandler = Callable[["WebTransportConnection", WebTransportSession, ev.SessionRequested], None]


def engine_config(config: ClientConfig | ServerConfig) -> EngineConfig:
    """The engine's limits, taken from a client or server configuration."""
    return EngineConfig(
        max_sessions=config.max_sessions,
        max_frame_size=config.max_frame_size,
        max_header_block_size=config.max_header_block_size,
        max_capsule_size=config.max_capsule_size,
        max_buffered_streams=config.max_buffered_streams,
        max_buffered_stream_bytes=config.stream_buffer_size,
        initial_max_data=config.initial_max_data,
        initial_max_streams_bidi=config.initial_max_streams_bidi,
        initial_max_streams_uni=config.initial_max_streams_uni,
        flow_control_auto_extend=config.flow_control_auto_extend,
        max_field_section_size=config.max_field_section_size,
        session_idle_timeout=config.session_idle_timeout,
        max_send_buffer=config.max_connection_send_buffer,
    )


def build_quic_configuration(config: ClientConfig | ServerConfig, *, server_name: str | None = None
                             ) -> QuicSettings:
    """The QUIC settings for HTTP/3 with datagrams, from ours, for the configured backend
    (``quic_backend``, else ``PYWEBTRANSPORT_QUIC_BACKEND``, else aioquic)."""
    try:
        backend = resolve_backend(config.quic_backend)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(f"quic_backend: {exc}") from exc
    secrets = open(config.secrets_log_file, "a") if config.secrets_log_file else None  # noqa: SIM115 - lives with it
    common: dict[str, Any] = {
        "backend": backend, "alpn_protocols": (c.ALPN_H3,), "max_datagram_frame_size": config.max_datagram_frame_size,
        "idle_timeout": config.idle_timeout, "congestion_control_algorithm": config.congestion_control_algorithm,
        "max_datagram_size": config.quic_max_datagram_size, "max_stream_data": config.stream_buffer_size,
        "max_data": max(config.stream_buffer_size * 16, config.initial_max_data), "secrets_log": secrets,
        "qlog_dir": config.quic_log_dir,
    }
    if isinstance(config, ClientConfig):
        # Pinning by hash (as browsers' serverCertificateHashes) is checked after the handshake
        # by the connection; the backend's chain verification is off for it.
        verify = bool(config.verify_mode) and not config.server_certificate_hashes
        # certfile/keyfile: the client certificate, sent when the server asks for one (mTLS).
        settings = QuicSettings(is_client=True, server_name=server_name, verify_peer=verify,
                                cafile=config.ca_certs if verify else None, certfile=config.certfile,
                                keyfile=config.keyfile, **common)
    else:
        if not config.certfile or not config.keyfile:
            raise CertificateError("ServerConfig needs certfile and keyfile (see pywebtransport.utils."
                                   "generate_self_signed_cert)")
        wants_client_certificate = config.verify_client != "none"
        if wants_client_certificate and backend != "aioquic":
            raise ConfigurationError(f"verify_client={config.verify_client!r} needs the aioquic backend: {backend} "
                                     "servers cannot ask for a client certificate")
        # The client's chain is verified against ca_certs by the connection after the handshake.
        settings = QuicSettings(is_client=False, certfile=config.certfile, keyfile=config.keyfile,
                                request_client_certificate=wants_client_certificate, **common)
    try:
        settings.validate()
    except (OSError, ValueError) as exc:
        target = f"certificate {config.certfile!r} / key {config.keyfile!r}" if isinstance(config, ServerConfig) \
            else f"CA file {config.ca_certs!r} / client certificate {config.certfile!r}"
        raise CertificateError(f"cannot load {target}: {exc}") from exc
    return settings


class WebTransportConnection:
    """A QUIC connection carrying HTTP/3 and any number of WebTransport sessions."""

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
        self._connection_id: ConnectionId = os.urandom(8).hex()
        self._state = ConnectionState.IDLE if self.is_client else ConnectionState.CONNECTING
        self._events = EventEmitter()
        self._sessions: dict[SessionId, WebTransportSession] = {}
        self._h3_ready = asyncio.Event()
        self._closed = asyncio.Event()
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
        return self._state in (ConnectionState.CLOSED, ConnectionState.FAILED, ConnectionState.CLOSING)

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

    # ------------------------------------------------------------------ client side

    def connect(self) -> None:
        """Client: start the handshake."""
        self._state = ConnectionState.CONNECTING
        self._engine.connect(self._remote_address, time.monotonic())
        self.process_engine_events()

    async def wait_connected(self, *, timeout: float | None = None) -> None:
        """Wait for the handshake and the peer's SETTINGS (HandshakeError on failure,
        ConnectionRefusedError when the peer's host reports nothing listening, TimeoutError
        naming the stage reached)."""
        ready = asyncio.ensure_future(self._h3_ready.wait())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            done, _ = await asyncio.wait([ready, closed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            closed.cancel()
        if not done:
            host, port = self._remote_address[0], self._remote_address[1]
            stage = self._describe_stage()
            await self._abandon(f"connecting to {host}:{port} timed out")
            raise TimeoutError(f"no HTTP/3 connection to {host}:{port} within {timeout:.1f}s: {stage}")
        if not self._h3_ready.is_set():
            if self._close_error is not None:
                raise self._close_error
            raise HandshakeError(f"the connection closed during the handshake: {self._close_reason or 'no reason'}",
                                 error_code=self._close_code)

    async def open_session(self, *, path: str, authority: str, origin: str | None = None,
                           headers: Headers | None = None, timeout: float | None = None,
                           protocols: Sequence[str] | None = None) -> WebTransportSession:
        """Client: open a session and wait until it is ready (SessionRejectedError if refused);
        ``protocols`` is the subprotocol offer (draft-15 §3.3)."""
        if self.is_closed:
            raise ConnectionClosedError("the connection is closed", error_code=self._close_code,
                                        reason=self._close_reason)
        session_id = self._engine.open_session(authority=authority, path=path, origin=origin, headers=headers,
                                               protocols=tuple(protocols or ()))
        # The request as the engine built it (pseudo-headers included).
        snapshot = self._engine.session_snapshot(session_id)
        session = WebTransportSession(connection=self, session_id=session_id, path=path,
                                      headers=snapshot.headers if snapshot is not None else dict(headers or {}),
                                      control_stream_id=session_id)
        self._add_session(session)
        session.log_requested()
        self.process_engine_events()
        wait = timeout if timeout is not None else self._config.connect_timeout
        try:
            await session.ready(timeout=wait)
        except TimeoutError:
            stage = self.connect_stage
            await session.close(error_code=0, reason="timed out")
            if stage is ConnectStage.HTTP3:
                raise TimeoutError(f"the server did not answer the CONNECT request for {path} within {wait:.1f}s "
                                   f"({stage.value})") from None
            raise TimeoutError(f"no session on {path} within {wait:.1f}s: {self._describe_stage()}") from None
        return session

    @property
    def connect_stage(self) -> ConnectStage:
        """How far this connection got towards HTTP/3 (what a connect timeout reports)."""
        if self._h3_ready.is_set():
            return ConnectStage.HTTP3
        if self._quic.handshake_complete:
            return ConnectStage.SETTINGS
        if self._datagrams_from_peer:
            return ConnectStage.HANDSHAKE
        return ConnectStage.NO_REPLY

    def _describe_stage(self) -> str:
        stage = self.connect_stage
        if stage is ConnectStage.HANDSHAKE:
            return f"{stage.value} ({self._datagrams_from_peer} datagrams received from it)"
        return str(stage.value)

    def error_received(self, exc: OSError) -> None:
        """Endpoint: the connected socket reported ``exc``. An ICMP port unreachable
        (ECONNREFUSED; WSAECONNRESET on Windows) before HTTP/3 is up ends the connect at once:
        nothing listens there."""
        refused = isinstance(exc, (builtins.ConnectionRefusedError, builtins.ConnectionResetError))
        if not refused or self._h3_ready.is_set() or self.is_closed:
            return
        host, port = self._remote_address[0], self._remote_address[1]
        self._close_error = ConnectionRefusedError(
            f"{host}:{port} refused the connection: its host reports UDP port {port} unreachable "
            "(nothing listens there)")
        self._engine.close(c.H3_NO_ERROR, "connection refused")
        self._loop.call_soon(self._terminated, c.H3_NO_ERROR, "connection refused", False)

    # ------------------------------------------------------------------ server side

    def accept_session(self, session: WebTransportSession, *, headers: Headers | None = None,
                       protocol: str | None = None) -> None:
        """Server: accept a requested session (200), answering ``protocol`` as its subprotocol."""
        self._engine.accept_session(session.session_id, headers=headers, protocol=protocol)
        self.process_engine_events()

    def reject_session(self, session: WebTransportSession, *, status_code: int = 404) -> None:
        """Server: refuse a requested session with ``status_code``."""
        self._engine.reject_session(session.session_id, status_code)
        self.process_engine_events()
        self._remove_session(session.session_id)
        session.handle_event(ev.SessionRejected(session.session_id, status_code, {}, f"rejected with {status_code}"))

    # ------------------------------------------------------------------ closing

    def send_goaway(self) -> None:
        """Graceful shutdown: the peer may open no new sessions; current ones carry on."""
        if not self.is_closed:
            self._engine.send_goaway()
            self.process_engine_events()

    async def close(self, *, error_code: int = c.H3_NO_ERROR, reason: str = "") -> None:
        """Close every session cleanly, then the connection.

        Each open session first gets WT_CLOSE_SESSION (code 0) and a FIN, and the close waits,
        at most ``config.close_timeout``, for those to be acknowledged: a CONNECTION_CLOSE
        sent in the same flight overtakes them at the peer, which then reports a lost
        connection instead of a clean close. The close runs to its end even when the caller
        is cancelled, and every later call waits for the same close. It returns once the
        CONNECTION_CLOSE is sent; the endpoint answers the peer's late packets with it for
        QUIC's closing period (RFC 9000 §10.2.1, see ``wait_closing_period``).
        """
        task = self.start_close(error_code=error_code, reason=reason)
        if task is not None:
            await asyncio.shield(task)

    def start_close(self, *, error_code: int = c.H3_NO_ERROR, reason: str = "") -> asyncio.Task[None] | None:
        """Begin ``close()`` without waiting for it: the connection counts as closed at once
        (``is_closed``). Returns the close's task (None when the connection had ended already)."""
        if self._close_task is None:
            if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED):
                return None
            self._state = ConnectionState.CLOSING
            self._close_task = self._loop.create_task(self._close(error_code, reason),
                                                      name=f"pywebtransport-close-{self._connection_id}")
        return self._close_task

    async def wait_closing_period(self, *, timeout: float) -> bool:
        """After the close: wait, at most ``timeout`` seconds, until QUIC's closing or draining
        period (RFC 9000 §10.2, three PTOs) is over, during which the endpoint still answers
        the peer's late packets with our CONNECTION_CLOSE. A client connection's own socket
        is closed then, or at the timeout at the latest (False). Returns True at once for a
        server connection (its server waits for the shared socket as a whole) and False at
        once for a connection that is not closed yet.
        """
        if not self._owns_endpoint:
            return True
        if self._state not in (ConnectionState.CLOSED, ConnectionState.FAILED):
            return False
        quiet = await self._endpoint.wait_quiet(timeout)
        if not quiet:
            self._endpoint.close()
        return quiet

    async def _close(self, error_code: int, reason: str) -> None:
        self._state = ConnectionState.CLOSING
        open_ids = [session.session_id for session in list(self._sessions.values()) if session.is_ready]
        for session_id in open_ids:
            self._engine.close_session(session_id, 0, "")
        if open_ids:
            self._process_events()
            self._endpoint.transmit(self)
            await self.wait_close_confirmed(open_ids, timeout=self._config.close_timeout)
        # Put what is still queued on the wire first: once QUIC is closing it sends nothing
        # but CONNECTION_CLOSE.
        self._endpoint.transmit(self)
        self._engine.close(error_code, reason)
        self._process_events()
        self._endpoint.transmit(self)  # the CONNECTION_CLOSE itself
        # Nothing more will be said: local state goes now, and the endpoint keeps only what
        # the closing period needs (_retire).
        self._terminated(error_code, reason, False)

    async def wait_acknowledged(self, stream_ids: Iterable[StreamId], *, timeout: float) -> bool:
        """Wait until everything sent on ``stream_ids`` (FIN included) is acknowledged.

        Returns False when ``timeout`` seconds pass first or the connection ends; it is woken
        by acknowledgements, not by polling.
        """
        ids = tuple(stream_ids)
        engine = self._engine
        return await self._wait_until(lambda: all(engine.stream_send_acknowledged(sid) for sid in ids), timeout)

    async def wait_close_confirmed(self, session_ids: Iterable[SessionId], *, timeout: float) -> bool:
        """After closing sessions: wait until their WT_CLOSE_SESSION is acknowledged, then (at
        most ``CLOSE_CONFIRM_GRACE`` more) until the peer ended its side of each CONNECT stream.

        An acknowledgement says the bytes arrived, not that the peer's application read them:
        Chromium reported 'Connection lost' when CONNECTION_CLOSE followed right after. A peer
        that answers the close with its FIN has read it; one that never does costs the grace.
        """
        ids = tuple(session_ids)
        loop = self._loop
        deadline = loop.time() + timeout
        if not await self.wait_acknowledged(ids, timeout=timeout):
            return False
        engine = self._engine
        grace = min(CLOSE_CONFIRM_GRACE, max(0.0, deadline - loop.time()))
        confirmed = await self._wait_until(lambda: all(engine.session_close_confirmed(sid) for sid in ids), grace)
        if confirmed and self._engine.dialect is Dialect.DRAFT02:
            # Browsers (draft-02) answer with their FIN from the network stack, before the page
            # has seen the close; a CONNECTION_CLOSE right behind it still surfaces there as
            # 'Connection lost' (Chromium 1-4 in 10 runs). A short settle time lets it through.
            await asyncio.sleep(min(BROWSER_CLOSE_SETTLE, max(0.0, deadline - loop.time())))
        return confirmed

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait, at most ``timeout`` s, until ``condition()`` holds; it is checked after every
        received datagram while someone waits (never polled on a timer)."""
        if condition():
            return True
        if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED) or timeout <= 0:
            return False
        waiter: asyncio.Future[None] = self._loop.create_future()
        entry = (condition, waiter)
        self._ack_waiters.append(entry)
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            if entry in self._ack_waiters:
                self._ack_waiters.remove(entry)
        return condition()

    def _wake_ack_waiters(self, *, everyone: bool = False) -> None:
        for condition, waiter in list(self._ack_waiters):
            if not waiter.done() and (everyone or condition()):
                waiter.set_result(None)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def _abandon(self, reason: str) -> None:
        self._close_error = HandshakeError(reason)
        await self.close(error_code=c.H3_NO_ERROR, reason=reason)

    def _terminated(self, error_code: int, reason: str, by_peer: bool) -> None:
        if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED):
            return
        if self._keep_alive is not None:
            self._keep_alive.cancel()
        was_connected = self._established_at is not None
        self._state = ConnectionState.CLOSED if was_connected else ConnectionState.FAILED
        self._close_code = error_code
        self._close_reason = reason
        self._wake_ack_waiters(everyone=True)
        # The engine ended its sessions already; these are the ones it never knew as open.
        cause = CloseCause.PEER_CONNECTION_CLOSE if by_peer else CloseCause.CONNECTION_CLOSED
        for session_id in list(self._sessions):
            session = self._remove_session(session_id)
            if session is not None:
                session.handle_event(ev.SessionClosed(session_id, 0, reason or "connection closed", by_peer, cause))
        try:
            self._quic.end_qlog()  # a connection closed locally ends its trace itself
        except (OSError, ValueError):
            logger.exception("could not write the qlog file of connection %s", self._connection_id)
        self._closed.set()
        self._retire()
        event = EventType.CONNECTION_LOST if by_peer else EventType.CONNECTION_CLOSED
        self._events.emit_nowait(event, {"connection_id": self._connection_id, "error_code": error_code,
                                         "reason": reason})

    def _retire(self) -> None:
        """Hand the endpoint what QUIC's closing or draining period needs (RFC 9000 §10.2):
        our CONNECTION_CLOSE datagrams to answer late packets with, or none when the peer
        closed, and when the period ends. This connection is forgotten at once.

        A server keeps both periods: its shared socket must not hand a late packet to anyone
        else. A client's own socket stays open for the closing period only, after a
        handshake: while draining it would only drop packets (a closed port does the same),
        and a peer that never completed a handshake has no connection to be told about.
        """
        self._endpoint.transmit(self)  # a CONNECTION_CLOSE still pending goes out first
        quic = self._quic
        close_datagrams = quic.close_datagrams
        lingers = (quic.handshake_complete and bool(close_datagrams)) if self.is_client \
            else self._datagrams_from_peer > 0
        self._endpoint.retire(self, close_datagrams=close_datagrams,
                              until=quic.closing_deadline if lingers else None,
                              validated=self.is_client or quic.handshake_complete, peer=self._remote_address,
                              close_endpoint=self._owns_endpoint)

    # ------------------------------------------------------------------ endpoint driver

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED):
            return
        self._remote_address = addr
        self._datagrams_from_peer += 1
        self._engine.receive_datagram(data, addr, now)
        if self._pinned and not self._peer_checked:
            self._check_pinned_certificate()
        elif not self._peer_checked and isinstance(self._config, ServerConfig):
            self._check_client_certificate(self._config)
        self._process_events()
        if self._ack_waiters:
            self._wake_ack_waiters()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        return self._engine.datagrams_to_send(now)

    def get_timer(self) -> float | None:
        if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED):
            return None
        return self._engine.get_timer()

    def handle_timer(self, now: float) -> None:
        self._engine.handle_timer(now)
        self._process_events()

    def schedule_flush(self) -> None:
        """Internal: have the endpoint transmit what this connection has to send."""
        self._endpoint.schedule_flush(self)

    def process_engine_events(self) -> None:
        """Internal: run after any call into the engine; delivers its events and schedules a
        transmit (used by this connection's sessions, not public API)."""
        self._process_events()
        self._endpoint.schedule_flush(self)

    @property
    def idle_timeout(self) -> float:
        """The effective QUIC idle timeout: the smaller of ours and the peer's (RFC 9000 §10.1)."""
        local = self._config.idle_timeout
        peer = self._quic.peer_max_idle_timeout  # its max_idle_timeout transport parameter
        if peer is not None and peer > 0:
            return min(local, float(peer))
        return local

    @property
    def keep_alive_interval(self) -> float | None:
        """Seconds between keep-alive PINGs: the configured interval, but at most half the
        effective idle timeout so that neither side's idle timer fires (None: disabled)."""
        configured = self._config.keep_alive_interval
        if configured is None:
            return None
        return min(configured, self.idle_timeout / 2)

    @property
    def keep_alive_pings(self) -> int:
        """How many keep-alive PINGs this connection sent."""
        return self._pings

    def _arm_keep_alive(self) -> None:
        interval = self.keep_alive_interval
        if interval is not None and not self.is_closed and self._keep_alive is None:
            self._keep_alive = self._loop.call_later(interval, self._send_keep_alive)

    def _send_keep_alive(self) -> None:
        """A QUIC PING, so an idle connection outlives both sides' idle timeouts.

        A connection that has carried no session for a whole idle timeout is not kept
        alive: the pings stop and QUIC's idle timeout reaps it.
        """
        self._keep_alive = None
        if self.is_closed:
            return
        if not self._sessions and self._loop.time() - self._sessionless_since >= self.idle_timeout:
            logger.debug("connection %s: no session for %.1fs; keep-alive stops", self._connection_id,
                         self.idle_timeout)
            return
        self._pings += 1
        self._quic.send_ping(self._pings)
        self.schedule_flush()
        self._arm_keep_alive()

    @property
    def sessionless_for(self) -> float | None:
        """Seconds this connection has carried no session: since it was accepted, or since its
        last session ended (None while it carries one, or once it is closed). A server at
        ``max_connections`` may close the connection idle the longest to admit a new client."""
        if self._sessions or self.is_closed:
            return None
        return max(0.0, self._loop.time() - self._sessionless_since)

    def _add_session(self, session: WebTransportSession) -> None:
        self._sessions[session.session_id] = session
        if self._established_at is not None:
            self._arm_keep_alive()  # it may have stopped while there was no session

    def _remove_session(self, session_id: SessionId) -> WebTransportSession | None:
        session = self._sessions.pop(session_id, None)
        if session is not None and not self._sessions:
            self._sessionless_since = self._loop.time()
        return session

    def _check_pinned_certificate(self) -> None:
        der = self._quic.peer_certificate_der
        if der is None:
            return
        self._peer_checked = True
        digest = hashlib.sha256(der).digest()
        assert self._pinned is not None
        if digest not in self._pinned:
            logger.error("server certificate hash %s is not pinned; closing", digest.hex())
            self._close_error = CertificateError(f"server certificate SHA-256 {digest.hex()} matches none of the "
                                                 "configured server_certificate_hashes")
            self._engine.close(c.H3_NO_ERROR, "certificate not pinned")
            self._loop.call_soon(self._terminated, c.H3_NO_ERROR, "certificate not pinned", False)

    def _check_client_certificate(self, config: ServerConfig) -> None:
        """Server, right after the handshake: verify the client's certificate as
        ``verify_client`` asks, before any of its requests is handled; on failure close the
        connection with the TLS alert as CRYPTO_ERROR (RFC 9001 §4.8), its reason phrase
        saying why (the client's HandshakeError carries it)."""
        if config.verify_client == "none":
            self._peer_checked = True
            return
        if not self._quic.handshake_complete:
            return
        self._peer_checked = True
        leaf = self._quic.peer_certificate
        if leaf is None:
            if config.verify_client != "required":
                return
            alert, problem = TLS_ALERT_CERTIFICATE_REQUIRED, "client certificate required"
        else:
            assert config.ca_certs is not None  # the configuration requires it with verify_client
            failure = verify_client_certificate(leaf, self._quic.peer_certificate_chain, config.ca_certs)
            if failure is None:
                return
            alert, problem = TLS_ALERT_BAD_CERTIFICATE, f"client certificate rejected: {failure}"
        logger.warning("connection %s from %s:%s: %s; closing", self._connection_id, self._remote_address[0],
                       self._remote_address[1], problem)
        self._close_error = CertificateError(problem)
        code = close_with_tls_alert(self._quic, alert, problem)
        self._engine.close(c.H3_NO_ERROR, problem)  # its sessions end; QUIC is closing already
        # A request that came in the same datagram as the client's Finished is never served.
        while (event := self._engine.next_event()) is not None:
            if isinstance(event, (ev.ConnectionIdIssued, ev.ConnectionIdRetired)):
                self.handle_event(event)
        self._endpoint.transmit(self)  # the CONNECTION_CLOSE, before the connection is forgotten
        self._loop.call_soon(self._terminated, code, problem, False)

    # ------------------------------------------------------------------ TLS and transport facts

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's TLS leaf certificate (a server sees the client's with mTLS; None without)."""
        return self._quic.peer_certificate

    def export_keying_material(self, label: bytes, context: bytes = b"", length: int = 32) -> bytes:
        """TLS-Exporter(label, context, length) of the connection (RFC 8446 §7.5): the same bytes
        on both ends. Sessions bind it to themselves: ``WebTransportSession.export_keying_material``."""
        if self.is_closed:
            raise ConnectionClosedError("the connection is closed", error_code=self._close_code,
                                        reason=self._close_reason)
        try:
            return self._quic.export_keying_material(bytes(label), bytes(context), length)
        except RuntimeError as exc:
            raise HandshakeError(str(exc)) from exc

    def transport_rtt(self) -> RttSample:
        """RTT, congestion window and bytes in flight from the QUIC connection's loss recovery."""
        return self._quic.rtt()

    @property
    def quic_backend(self) -> str:
        """The QUIC implementation of this connection ("aioquic", "qh3")."""
        return self._quic.backend

    # ------------------------------------------------------------------ engine events

    def _process_events(self) -> None:
        engine = self._engine
        debug = self._config.debug
        while (event := engine.next_event()) is not None:
            if debug:
                logger.debug("connection %s: %r", self._connection_id, event)
            try:
                self.handle_event(event)
            except Exception:  # a callback's bug must not stop event delivery
                logger.exception("error while handling %r", event)

    def handle_event(self, event: ev.EngineEvent) -> None:
        """Internal: one engine event, handled here or routed to the session it concerns."""
        if isinstance(event, _SESSION_EVENTS):
            session = self._sessions.get(event.session_id)
            if session is not None:
                session.handle_event(event)
        elif isinstance(event, ev.SessionRequested):
            self._on_requested(event)
        elif isinstance(event, (ev.SessionRejected, ev.SessionClosed)):
            session = self._remove_session(event.session_id)
            if session is not None:
                session.handle_event(event)
                self._events.emit_nowait(EventType.SESSION_CLOSED, {"connection_id": self._connection_id,
                                                                    "session_id": event.session_id})
        elif isinstance(event, ev.H3Ready):
            self._state = ConnectionState.CONNECTED
            self._established_at = self._loop.time()
            self._h3_ready.set()
            self._arm_keep_alive()
            self._events.emit_nowait(EventType.CONNECTION_ESTABLISHED,
                                     {"connection_id": self._connection_id, "dialect": event.dialect})
        elif isinstance(event, ev.ConnectionIdIssued):
            self._endpoint.register_cid(event.connection_id, self)
        elif isinstance(event, ev.ConnectionIdRetired):
            self._endpoint.unregister_cid(event.connection_id)
        elif isinstance(event, ev.ProtocolViolation):
            for session in list(self._sessions.values()):
                session.handle_event(event)
            self._close_error = ConnectionClosedError(f"protocol error: {event.reason}",
                                                      error_code=event.error_code, reason=event.reason)
            self._events.emit_nowait(EventType.PROTOCOL_ERROR, {"error_code": event.error_code,
                                                                "reason": event.reason})
        elif isinstance(event, ev.ConnectionTerminated):
            if self._close_error is None and not self._h3_ready.is_set():
                if event.by_peer and event.error_code == _QUIC_CONNECTION_REFUSED:
                    host, port = self._remote_address[0], self._remote_address[1]
                    self._close_error = ConnectionRefusedError(
                        f"{host}:{port} refused the connection (CONNECTION_REFUSED): "
                        f"{event.reason or 'no reason given'}", error_code=event.error_code)
                else:
                    self._close_error = HandshakeError(f"handshake failed: {event.reason or 'connection closed'}",
                                                       error_code=event.error_code)
            self._terminated(event.error_code, event.reason, event.by_peer)

    def _on_requested(self, event: ev.SessionRequested) -> None:
        session = WebTransportSession(connection=self, session_id=event.session_id, path=event.path,
                                      headers=event.headers, control_stream_id=event.session_id)
        self._add_session(session)
        session.log_requested()
        if self._on_session_request is None:
            self.reject_session(session, status_code=404)
            return
        self._on_session_request(self, session, event)

    # ------------------------------------------------------------------ diagnostics

    def diagnostics(self) -> dict[str, Any]:
        """A snapshot of the connection for logs and health checks."""
        rtt = self._quic.rtt().smoothed
        return {
            "connection_id": self._connection_id,
            "state": self._state.value,
            "is_client": self.is_client,
            "remote_address": self._remote_address,
            "local_address": self.local_address,
            "dialect": self.dialect,
            "peer_settings": dict(self._engine.peer_settings.raw) if self._engine.peer_settings else None,
            "sessions": len(self._sessions),
            "smoothed_rtt": rtt,
            "uptime": (self._loop.time() - self._established_at) if self._established_at else 0.0,
            "close_code": self._close_code,
            "close_reason": self._close_reason,
            "idle_timeout": self.idle_timeout,
            "keep_alive_interval": self.keep_alive_interval,
            "keep_alive_pings": self._pings,
            "quic_backend": self._quic.backend,
            "datagrams_lost": self._quic.datagrams_dropped,
        }

    def __repr__(self) -> str:
        return (f"<WebTransportConnection id={self._connection_id} {self._state.value} "
                f"remote={self._remote_address[0]}:{self._remote_address[1]} sessions={len(self._sessions)}>")

