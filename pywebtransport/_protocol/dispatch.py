"""QUIC events in, dispatched to the parts of the engine, and the end of the connection:
a local close, a termination QUIC reports, or a connection error we detected."""

from __future__ import annotations

import logging

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as quic_events
from pywebtransport._protocol.routing import StreamRouting
from pywebtransport._protocol.watches import WritabilityWatches
from pywebtransport._wire import datagrams
from pywebtransport.exceptions import RemoteProtocolError
from pywebtransport.types import CloseCause

__all__ = ["QuicDispatch"]

logger = logging.getLogger(__name__)


class QuicDispatch(WritabilityWatches, StreamRouting):
    """The QUIC event pump and the connection's end."""

    def close(self, error_code: int = c.H3_NO_ERROR, reason: str = "") -> None:
        """Close the whole connection (every session ends)."""
        if self._closed:
            return
        self._closed = True
        self.quic.close(error_code=error_code, reason_phrase=reason)
        self._release_budgets()
        cause = CloseCause.CONNECTION_CLOSED if error_code == c.H3_NO_ERROR else CloseCause.CONNECTION_ERROR
        self._end_all_sessions(reason or "connection closed", cause)

    def _pump(self) -> None:
        while (event := self.quic.next_event()) is not None:
            try:
                self._handle_quic_event(event)
            except RemoteProtocolError as exc:
                self._connection_error(exc.error_code or c.H3_GENERAL_PROTOCOL_ERROR, exc.message)
            except Exception as exc:  # a bug of ours must not take the event loop down
                logger.exception("internal error while handling %r", event)
                self._connection_error(c.H3_INTERNAL_ERROR, f"internal error: {exc!r}")
        if self._write_watch or self._credit_watch:
            self._check_watches()

    def _handle_quic_event(self, event: quic_events.QuicEvent) -> None:
        """Dispatch one backend-neutral QUIC event (the seam's classes, whichever the backend)."""
        kind = type(event)
        if kind is quic_events.StreamDataReceived:
            if not self._closed:
                self._on_stream_data(event.stream_id, event.data, event.end_stream)  # type: ignore[union-attr]
        elif kind is quic_events.DatagramFrameReceived:
            if not self._closed:
                self._on_datagram(event.data)  # type: ignore[union-attr]
        elif isinstance(event, quic_events.DatagramFrameLost):
            # Lost in transit and never resent (RFC 9221 §5.2): counted as dropped for its session.
            lost = self._sessions.get(datagrams.decode_datagram(event.data)[0])  # ours: it decodes
            if lost is not None:
                lost.datagrams_dropped += 1
        elif isinstance(event, quic_events.StreamReset):
            self._on_stream_reset(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.StopSendingReceived):
            self._on_stop_sending(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.HandshakeCompleted):
            self._h3.start()
            if self._h3.peer is None:
                self._settings_deadline = self._now + self.config.settings_timeout
        elif isinstance(event, quic_events.ProtocolNegotiated):
            # A server sends its SETTINGS at 0.5-RTT, with its first handshake flight (RFC
            # 9114 §6.2.1 asks for them at the start; RFC 9001 §4.1.1 allows 1-RTT data then):
            # the client can send its CONNECT with its Finished, one round trip earlier. Not
            # when it asks for a client certificate, which must be checked before anything.
            if not self.is_client and event.alpn_protocol and not self.quic.requests_client_certificate:
                self._h3.start()
        elif isinstance(event, quic_events.ConnectionIdIssued):
            self._events.append(ev.ConnectionIdIssued(event.connection_id))
        elif isinstance(event, quic_events.ConnectionIdRetired):
            self._events.append(ev.ConnectionIdRetired(event.connection_id))
        elif isinstance(event, quic_events.ConnectionTerminated):
            self._on_terminated(event)

    def _on_terminated(self, event: quic_events.ConnectionTerminated) -> None:
        # The QUIC library may close by itself (a frame it could not parse): only a
        # CONNECTION_CLOSE that came from the peer is the peer's.
        by_peer = event.by_peer and not self._closed
        self._closed = True
        self._release_budgets()
        if event.idle_timeout:  # QUIC's own idle timer, whichever backend noticed it
            by_peer, cause = False, CloseCause.IDLE_TIMEOUT
        elif by_peer:
            cause = CloseCause.PEER_CONNECTION_CLOSE
        else:
            cause = CloseCause.CONNECTION_CLOSED
        self._end_all_sessions(event.reason_phrase or "connection terminated", cause)
        self._events.append(ev.ConnectionTerminated(event.error_code, event.reason_phrase, by_peer,
                                                    application=event.application))

    def _connection_error(self, error_code: int, reason: str) -> None:
        if self._closed:
            return
        logger.warning("closing connection: %s [%s]", reason, c.describe_code(error_code))
        self._events.append(ev.ProtocolViolation(error_code, reason))
        self.close(error_code, reason)

    def _end_all_sessions(self, reason: str, cause: CloseCause) -> None:
        for session in list(self._sessions.values()):
            if not session.is_closed:
                session.connection_ended(reason, cause)
