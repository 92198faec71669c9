"""WebTransportConnection: one QUIC connection, its HTTP/3 engine and the sessions on it.

The class is put together from parts, each in the module named for what it holds:

- ``connection_core.py``: the connection's state, identity, sessions and read-only facts;
- ``connection_client.py``: connecting (``connect``, ``wait_connected``, ``ConnectStage``);
- ``connection_closing.py``: GOAWAY, ``close()``, waiting for acknowledgements, the end of
  local state and QUIC's closing period handed to the endpoint;
- ``connection_keepalive.py``: the idle timeout, keep-alive PINGs, time without a session;
- ``connection_tls.py``: certificate checks after the handshake, the exporter, RTT;
- ``connection_config.py``: the engine's limits and QUIC settings from a configuration.

This module holds the class itself: opening sessions, accepting and rejecting them, what
the UDP endpoint drives (datagrams, timers), and the one entry going up, ``handle_event``,
which routes each engine event to the session it concerns. Every name stays importable
from here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pywebtransport._addresses import format_address
from pywebtransport._protocol import events as ev
from pywebtransport.config import ServerConfig
from pywebtransport.connection_client import ConnectionClient, ConnectStage
from pywebtransport.connection_closing import BROWSER_CLOSE_SETTLE as BROWSER_CLOSE_SETTLE
from pywebtransport.connection_closing import CLOSE_CONFIRM_GRACE as CLOSE_CONFIRM_GRACE
from pywebtransport.connection_closing import ConnectionClosing
from pywebtransport.connection_config import build_quic_configuration, engine_config
from pywebtransport.connection_keepalive import ConnectionKeepAlive
from pywebtransport.connection_tls import ConnectionTLS
from pywebtransport.events import EventType
from pywebtransport.exceptions import ConnectionClosedError, ConnectionRefusedError, HandshakeError, TimeoutError
from pywebtransport.session.session import WebTransportSession
from pywebtransport.types import Address, ConnectionState, Headers

__all__ = ["ConnectStage", "SessionRequestHandler", "WebTransportConnection", "build_quic_configuration",
           "engine_config"]

logger = logging.getLogger(__name__)

#: The QUIC transport error a server refuses a connection with (RFC 9000 §20.1): when it
#: is full or shutting down (``WebTransportServer``), answering the client's Initial at once.
_QUIC_CONNECTION_REFUSED = 0x02
#: QUIC's CRYPTO_ERROR range: 0x100 + a TLS alert (RFC 9001 §4.8).
_CRYPTO_ERROR = 0x100

#: Events that concern one session and go to its ``handle_event``.
#: The states after which no packet is processed, read per datagram and per transmit pass:
#: a module global, where ``ConnectionState.X`` costs about 100 ns on Python 3.10 and 3.11.
_OVER_STATES = (ConnectionState.CLOSED, ConnectionState.FAILED)
_SESSION_EVENTS = (ev.StreamDataReceived, ev.DatagramReceived, ev.StreamOpened, ev.StreamReset,
                   ev.StreamStopSending, ev.StreamWritable, ev.StreamCreditAvailable, ev.SessionEstablished,
                   ev.SessionDraining, ev.SessionCreditUpdated, ev.SessionBlocked)

#: Called by a server connection for every session a client asks for.
SessionRequestHandler = Callable[["WebTransportConnection", WebTransportSession, ev.SessionRequested], None]


class WebTransportConnection(ConnectionClient, ConnectionClosing, ConnectionKeepAlive, ConnectionTLS):
    """A QUIC connection carrying HTTP/3 and any number of WebTransport sessions."""

    # ------------------------------------------------------------------ client side (connecting: connection_client.py)

    async def open_session(self, *, path: str, authority: str, origin: str | None = None,
                           headers: Headers | None = None, timeout: float | None = None,
                           protocols: Sequence[str] | None = None) -> WebTransportSession:
        """Client: open a session and wait until it is ready (SessionRejectedError if refused);
        ``protocols`` is the subprotocol offer (draft-15 §3.3)."""
        session = self.request_session(path=path, authority=authority, origin=origin, headers=headers,
                                       protocols=protocols)
        return await self.wait_session_ready(session, timeout=timeout)

    def request_session(self, *, path: str, authority: str, origin: str | None = None,
                        headers: Headers | None = None, protocols: Sequence[str] | None = None) -> WebTransportSession:
        """Client: ask for a session now, without waiting; ``wait_session_ready`` waits for the answer.

        It may be called before the handshake ends: the engine holds the CONNECT until the
        server's SETTINGS arrive (RFC 9220 §3) and sends it in the same pass, so with a server
        that sends SETTINGS in its handshake flight the request leaves with our Finished.
        """
        if self._close_error is not None:  # failing already, say a refusal reported at the first send
            raise self._close_error
        if self.is_closed:
            raise ConnectionClosedError("the connection is closed", error_code=self._close_code,
                                        reason=self._close_reason)
        session_id = self._engine.open_session(authority=authority, path=path, origin=origin, headers=headers,
                                               protocols=tuple(protocols or ()), now=time.monotonic())
        # The request as the engine built it (pseudo-headers included).
        snapshot = self._engine.session_snapshot(session_id)
        session = WebTransportSession(connection=self, session_id=session_id, path=path,
                                      headers=snapshot.headers if snapshot is not None else dict(headers or {}),
                                      control_stream_id=session_id)
        self._add_session(session)
        session.log_requested()
        self.process_engine_events()
        return session

    async def wait_session_ready(self, session: WebTransportSession, *,
                                 timeout: float | None = None) -> WebTransportSession:
        """Client: wait until a requested session is ready (SessionRejectedError if refused;
        TimeoutError naming how far the connection got after ``timeout``, default
        ``config.connect_timeout``, and the session closed). Cancelled, it closes the session
        at once before CancelledError propagates: nobody else holds it to close it later."""
        wait = timeout if timeout is not None else self._config.connect_timeout
        try:
            await session.ready(timeout=wait)
        except TimeoutError:
            stage = self.connect_stage
            await session.close(error_code=0, reason="timed out")
            if stage is ConnectStage.HTTP3:
                raise TimeoutError(f"the server did not answer the CONNECT request for {session.path} within "
                                   f"{wait:.1f}s ({stage.value})") from None
            raise TimeoutError(f"no session on {session.path} within {wait:.1f}s: {self._describe_stage()}") from None
        except BaseException:
            # Cancelled before the caller got the session (a rejected or closed one is closed
            # already): close it now, without waiting, or it stays established with no owner.
            session.close_nowait(reason="cancelled")
            raise
        return session

    # ------------------------------------------------------------------ server side

    def accept_session(self, session: WebTransportSession, *, headers: Headers | None = None,
                       protocol: str | None = None) -> None:
        """Server: accept a requested session (200), answering ``protocol`` as its subprotocol."""
        self._engine.accept_session(session.session_id, headers=headers, protocol=protocol, now=time.monotonic())
        self.process_engine_events()

    def reject_session(self, session: WebTransportSession, *, status_code: int = 404) -> None:
        """Server: refuse a requested session with ``status_code``."""
        self._engine.reject_session(session.session_id, status_code, now=time.monotonic())
        self.process_engine_events()
        self._remove_session(session.session_id)
        session.handle_event(ev.SessionRejected(session.session_id, status_code, {}, f"rejected with {status_code}"))

    # ------------------------------------------------------------------ endpoint driver

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        if self._state in _OVER_STATES or self._quic_failed:
            return
        self._datagrams_from_peer += 1
        try:
            self._engine.receive_datagram(data, addr, now)
        except Exception as exc:  # the QUIC library failed on it: end now, not at a timeout
            self._fail_on_quic_error(exc)
            return
        if self._datagrams_from_peer == 1 and not self.is_client and not self._quic.has_accepted_packet():
            self._drop_unauthenticated()
            return
        if addr != self._remote_address:
            # Only QUIC knows whether this datagram authenticated the move (RFC 9000 §9): one
            # that failed to decrypt, sent from a spoofed address, must not move the peer
            # (what RateLimit keys on, logs name, and the closing period answers).
            path = self._quic.peer_address()
            if path is not None:
                self._remote_address = path
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
        if self._state in _OVER_STATES:
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
        if self._engine_events:  # most calls (a write, a read's credit) make none
            self._process_events()
        self._endpoint.schedule_flush(self)

    # ------------------------------------------------------------------ engine events

    def _process_events(self) -> None:
        events = self._engine_events
        debug = self._config.debug
        sessions = self._sessions
        while events:
            event = events.popleft()
            if debug:
                logger.debug("connection %s: %r", self._connection_id, event)
            try:
                # The most frequent events: straight to their session.
                if type(event) is ev.DatagramReceived:
                    session = sessions.get(event.session_id)
                    if session is not None:
                        session.deliver_datagram(event.data)
                    continue
                if type(event) is ev.StreamDataReceived:
                    session = sessions.get(event.session_id)
                    if session is not None:
                        session.deliver_stream_data(event.stream_id, event.data, event.end_stream)
                    continue
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
            if self._close_error is not None:  # e.g. the server's SETTINGS came with a certificate we refused
                return
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
                    self._close_error = ConnectionRefusedError(
                        f"{format_address(*self._remote_address)} refused the connection (CONNECTION_REFUSED): "
                        f"{event.reason or 'no reason given'}", error_code=event.error_code)
                else:
                    alert = event.error_code - _CRYPTO_ERROR if (
                        not event.application and _CRYPTO_ERROR <= event.error_code < _CRYPTO_ERROR + 0x100) else None
                    self._close_error = HandshakeError(f"handshake failed: {event.reason or 'connection closed'}",
                                                       error_code=event.error_code, tls_alert=alert)
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
                f"remote={format_address(*self._remote_address)} sessions={len(self._sessions)}>")

