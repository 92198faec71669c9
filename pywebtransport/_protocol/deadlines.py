"""Slowloris deadlines: SETTINGS after the handshake, complete request headers, early
streams waiting for their session, and the optional session idle timeout."""

from __future__ import annotations

import logging

from pywebtransport import constants as c
from pywebtransport._protocol.dispatch import QuicDispatch
from pywebtransport._protocol.streams import StreamKind

__all__ = ["Deadlines"]

logger = logging.getLogger(__name__)


class Deadlines(QuicDispatch):
    """The next deadline (for ``get_timer``) and what happens when one passes."""

    def _next_deadline(self) -> float | None:
        if self._closed:
            return None
        cfg = self.config
        deadlines = [self._settings_deadline] if self._settings_deadline is not None else []
        if self._incomplete_openings:
            deadlines.append(min(self._incomplete_openings.values()) + cfg.request_timeout)
        oldest = self._streams.oldest_early() if self._streams.early_count else None
        if oldest is not None:
            deadlines.append(oldest + cfg.early_stream_timeout)
        if cfg.session_idle_timeout is not None and self._active_sessions:
            quiet = [s.last_activity for s in self._sessions.values() if s.is_open]
            if quiet:
                deadlines.append(min(quiet) + cfg.session_idle_timeout)
        return min(deadlines) if deadlines else None

    def _end_incomplete_opening(self, stream_id: int) -> None:
        """Give up on a peer stream that did not finish opening within ``request_timeout``."""
        record = self._streams.get(stream_id)
        if record is None:
            return
        timeout = self.config.request_timeout
        if record.kind is StreamKind.REQUEST:
            logger.info("stream %d: request headers incomplete after %.1fs; resetting it with %s", stream_id,
                        timeout, c.describe_code(c.H3_REQUEST_INCOMPLETE))
            self.abort_stream(stream_id, c.H3_REQUEST_INCOMPLETE)
        elif record.kind is StreamKind.PENDING_BIDI or record.kind is StreamKind.PENDING_UNI:
            # A bidirectional stream opens a request or carries a WebTransport signal (RFC 9114
            # §4.1, H3_REQUEST_INCOMPLETE); a unidirectional one that never names its type is
            # abandoned as a stream that could not be created (RFC 9114 §6.2).
            code = c.H3_REQUEST_INCOMPLETE if record.kind is StreamKind.PENDING_BIDI else c.H3_STREAM_CREATION_ERROR
            logger.info("stream %d: %d opening bytes and no more after %.1fs; refusing it with %s", stream_id,
                        len(record.preamble), timeout, c.describe_code(code))
            self._refuse_stream(record, code)

    def _check_deadlines(self) -> None:
        """Slowloris bounds: nothing the peer started may stay half-done forever."""
        if self._closed:
            return
        now, cfg = self._now, self.config
        if self._settings_deadline is not None and now >= self._settings_deadline:
            self._connection_error(c.H3_MISSING_SETTINGS, f"no SETTINGS within {cfg.settings_timeout}s")
            return
        for stream_id, started in list(self._incomplete_openings.items()):
            if now >= started + cfg.request_timeout:
                del self._incomplete_openings[stream_id]
                self._end_incomplete_opening(stream_id)
        if self._streams.early_count:
            for session_id in self._streams.early_sessions():
                for stream_id in self._streams.early_ids(session_id):
                    record = self._streams.get(stream_id)
                    if record is not None and now >= record.early_since + cfg.early_stream_timeout:
                        self._refuse_unseen(record, c.WT_BUFFERED_STREAM_REJECTED)
        if cfg.session_idle_timeout is not None:
            for session in [s for s in self._sessions.values() if s.is_open]:
                if now >= session.last_activity + cfg.session_idle_timeout:
                    logger.info("session %d: nothing arrived for %.1fs; closing it", session.session_id,
                                cfg.session_idle_timeout)
                    session.close_locally(0, "session idle timeout")
