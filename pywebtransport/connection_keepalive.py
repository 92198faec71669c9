"""Keeping a connection alive, and noticing when it is idle: the effective idle timeout,
keep-alive PINGs, and how long the connection has carried no session (which a full server
reads to choose whom to close).
"""

from __future__ import annotations

import logging

from pywebtransport.connection_core import ConnectionCore
from pywebtransport.session.session import WebTransportSession
from pywebtransport.types import SessionId

__all__ = ["ConnectionKeepAlive"]

#: The connection's logger (docs/debugging.md names it): every part of the class logs to it.
logger = logging.getLogger("pywebtransport.connection")


class ConnectionKeepAlive(ConnectionCore):
    """Idle timeout, keep-alive and session bookkeeping (a part of WebTransportConnection)."""

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

