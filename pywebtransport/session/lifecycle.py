"""A session's lifecycle: the subprotocol choice, becoming ready, draining and every close path.

Closing locally (``close()``), being closed by the peer, rejected, or losing the connection
all end in ``_on_closed``, which fails what waits on the session exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from dataclasses import replace
from typing import Any

from pywebtransport._protocol import events as ev
from pywebtransport._waiters import wait_for_any
from pywebtransport.events import EventType
from pywebtransport.exceptions import SessionError, SessionRejectedError, TimeoutError
from pywebtransport.session.core import SessionCore
from pywebtransport.types import CloseCause, Headers, SessionState

__all__ = ["SessionLifecycle"]

logger = logging.getLogger(__name__)
#: Session lifecycle (requested, accepted, rejected, closed) at INFO.
lifecycle_logger = logging.getLogger("pywebtransport.session")


class SessionLifecycle(SessionCore):
    """Establishing and closing a session (a part of WebTransportSession)."""

    # ------------------------------------------------------------------ subprotocol

    @property
    def protocol(self) -> str | None:
        """The negotiated subprotocol (WT-Protocol, draft-15 §3.3); None when none was chosen."""
        snapshot = self._snapshot()
        return snapshot.protocol if snapshot is not None else None

    @property
    def selected_protocol(self) -> str | None:
        """Server: the subprotocol chosen with select_protocol() before acceptance (None: none)."""
        return self._selected_protocol

    def select_protocol(self, protocol: str) -> None:
        """Server, before acceptance (in a decider or middleware): answer ``protocol``, one of
        ``available_protocols``, as the session's subprotocol (WT-Protocol, draft-15 §3.3)."""
        if self.state is not SessionState.CONNECTING:
            raise SessionError(f"session {self._session_id} is {self.state.value}: a subprotocol is chosen "
                               "before the session is accepted")
        if protocol not in self.available_protocols:
            raise ValueError(f"subprotocol {protocol!r} was not offered (offered: {list(self.available_protocols)})")
        self._selected_protocol = protocol

    @property
    def available_protocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered (WT-Available-Protocols), in its order."""
        snapshot = self._snapshot()
        return snapshot.available_protocols if snapshot is not None else ()

    # ------------------------------------------------------------------ ready, drain, close

    async def initialize(self) -> None:
        """Prepare asyncio resources. Sessions are initialized when made; kept for the older
        API, it is idempotent."""
        self._loop = asyncio.get_running_loop()

    async def ready(self, *, timeout: float = 30.0) -> None:
        """Wait until the session is established (returns at once if it ever was).

        SessionRejectedError if the server refused it, SessionClosedError if it closed
        first, TimeoutError after ``timeout`` seconds. On a server, a session that was not
        accepted yet (middleware runs before acceptance) raises SessionError at once: await
        ``ready()`` in the handler instead.
        """
        if (not self._is_client and not self._ready_event.is_set()
                and self.state is SessionState.CONNECTING):
            raise SessionError(f"session {self._session_id} is not accepted yet: middleware and request "
                               "deciders run before the server accepts a session, so ready() would wait "
                               "forever there; await session.ready() in the session handler instead")
        # Established, closed or rejected, whichever comes first.
        if not await wait_for_any((self._ready_event, self._closed_event), timeout):
            raise TimeoutError(f"session {self._session_id} not ready within {timeout}s")
        # Established once is ready, as browsers resolve ``ready`` even when ``closed`` follows.
        if not self._ready_event.is_set():
            if self._error is not None:
                raise self._error
            raise self._closed_error_or_generic(f"session {self._session_id} closed before it was ready")

    async def wait_closed(self) -> None:
        """Wait until the session is closed."""
        await self._closed_event.wait()

    async def close(self, *, error_code: int = 0, reason: str | None = None, close_connection: bool = False,
                    **kwargs: Any) -> None:
        """Close the session with WT_CLOSE_SESSION (code and reason), optionally the connection.

        Streams the application finished (``write_all(..., end_stream=True)``, ``await
        stream.close()``) are delivered first: the close waits, at most ``config.close_timeout``
        seconds (the linger), until their data and FIN are acknowledged, and only then sends
        WT_CLOSE_SESSION. Streams still open at that point are reset, as draft-15 §6 requires of
        every stream of a closed session. So: finish the streams whose data matters, then close.
        With ``close_connection=True`` the connection is closed once the close capsule was
        acknowledged (bounded by the same timeout), so the peer sees the code and reason.
        ``code=`` is a deprecated alias of ``error_code``.

        A caller cancelled while the close waits (``asyncio.timeout`` around it, a task
        cancelled in ``async with session:``) stops only the waiting: the session is closed
        at once (WT_CLOSE_SESSION sent, streams not yet acknowledged reset), with
        ``close_connection=True`` the connection's own close is started (it runs to its end
        by itself), and then CancelledError propagates.
        """
        if "code" in kwargs:
            warnings.warn("close(code=...) is deprecated; use close(error_code=...)", DeprecationWarning,
                          stacklevel=2)
            error_code = kwargs.pop("code")
        if kwargs:
            raise TypeError(f"close() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        connection = self.connection
        linger = self._config.close_timeout
        try:
            try:
                if (self.is_ready and connection is not None and not connection.is_closed
                        and (finished := self._engine.finished_unacknowledged_streams(self._session_id))
                        and not await connection.wait_acknowledged(finished, timeout=linger)):
                    logger.info("session %d: %d finished stream(s) not acknowledged within %.1fs; resetting",
                                self._session_id, len(finished), linger)
            finally:  # also when the caller is cancelled during the linger: close at once
                self.close_nowait(error_code=error_code, reason=reason or "")
            if close_connection and connection is not None and not connection.is_closed:
                await connection.wait_close_confirmed([self._session_id], timeout=linger)
        except asyncio.CancelledError:
            if close_connection and connection is not None:
                connection.start_close()  # runs on by itself, the close capsule acknowledged first
            raise
        if close_connection and connection is not None:
            await connection.close()

    def close_nowait(self, *, error_code: int = 0, reason: str = "") -> None:
        """Close the session now, without waiting: ``close()`` without its linger. The
        WT_CLOSE_SESSION is sent at once and streams still open, finished ones not yet
        acknowledged included, are reset (draft-15 §6); nothing happens if it is closed."""
        connection = self.connection
        if not self.is_closed and connection is not None and not connection.is_closed:
            self._engine.close_session(self._session_id, error_code, reason, now=time.monotonic())
            connection.process_engine_events()
        if not self._closed_event.is_set():  # the connection was already gone
            self.handle_event(ev.SessionClosed(self._session_id, error_code, reason, False,
                                               CloseCause.LOCAL_CLOSE))

    async def drain(self) -> None:
        """Ask the peer to wind the session down (WT_DRAIN_SESSION); SessionClosedError (its
        code, reason and cause) once the session is closed, as for every operation."""
        connection = self._require_open()
        self._engine.drain_session(self._session_id)
        connection.process_engine_events()

    # ------------------------------------------------------------------ events that change the state

    def log_requested(self) -> None:
        """Internal: log at INFO that the session was requested (by the client or of the server)."""
        lifecycle_logger.info("session %d requested: path=%s", self._session_id, self._path)

    def _on_established(self, response_headers: Headers) -> None:
        self._response_headers = response_headers  # the engine made this dict for the event
        engine = self._engine
        if engine.is_client:
            # A client may ask before the server's SETTINGS (request_session): the CONNECT
            # was then built when they came (its :protocol is the server's upgrade token).
            sent = engine.session_snapshot(self._session_id)
            if sent is not None:
                self._headers = sent.headers
        self._ready_event.set()
        lifecycle_logger.info("session %d accepted: path=%s", self._session_id, self._path)
        self._emit(EventType.SESSION_READY, {"session_id": self._session_id})

    def _on_rejected(self, status_code: int, reason: str) -> None:
        message = f"session rejected with status {status_code}" if status_code else f"session failed: {reason}"
        self._error = SessionRejectedError(message, status_code=status_code)
        lifecycle_logger.info("session %d rejected: path=%s status=%d %s", self._session_id, self._path,
                              status_code, reason)
        # By the peer on a client (the server answered no); a server's own refusal is not.
        self._on_closed(ev.SessionClosed(self._session_id, 0, reason or message, self._is_client,
                                         CloseCause.REJECTED))

    def _on_closed(self, event: ev.SessionClosed) -> None:
        if self._closed_event.is_set():
            return
        snapshot = self._engine.session_snapshot(self._session_id)
        if snapshot is not None and snapshot.state is SessionState.CLOSED:
            info = (snapshot.close_code or 0, snapshot.close_reason or "",
                    snapshot.close_cause or event.cause)
            if isinstance(event.cause, CloseCause) and event.cause is CloseCause.REJECTED:
                info = (info[0], info[1], CloseCause.REJECTED)
        else:
            info = (event.error_code, event.reason, event.cause)
            if snapshot is not None:  # the engine never saw this end (its connection is gone)
                snapshot = replace(snapshot, state=SessionState.CLOSED, close_code=info[0],
                                   close_reason=info[1], close_cause=info[2],
                                   closed_at=snapshot.closed_at or time.monotonic())
        self._close_info = info
        self._final = snapshot
        if self._stats_record is not None:
            _ = self.stats  # refresh the SessionStats handed out with the final counters
        code, reason, cause = info
        for stream in list(self._streams.values()):
            stream.handle_event(event)
        self._wake_credit_waiters(None)
        self._incoming_waiters.wake()
        if self._datagrams is not None:
            self._datagrams.handle_event(event)
        self._closed_event.set()
        duration = 0.0
        if snapshot is not None and snapshot.ready_at is not None and snapshot.closed_at is not None:
            duration = snapshot.closed_at - snapshot.ready_at
        if cause is not CloseCause.REJECTED:
            lifecycle_logger.info(
                "session %d closed: path=%s code=%d reason=%r cause=%s by_peer=%s duration=%.3fs "
                "bytes_sent=%d bytes_received=%d", self._session_id, self._path, code, reason, cause.value,
                event.by_peer, duration, snapshot.data_sent if snapshot else 0,
                snapshot.data_received if snapshot else 0)
        self._emit(EventType.SESSION_CLOSED, {"session_id": self._session_id, "error_code": code,
                                              "reason": reason, "by_peer": event.by_peer, "cause": cause})

