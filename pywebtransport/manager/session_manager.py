"""SessionManager: a bounded set of WebTransport sessions, tidied as they close."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pywebtransport.events import EventType
from pywebtransport.exceptions import SessionClosedError
from pywebtransport.manager._base import _ResourceManager
from pywebtransport.manager.exceptions import SessionLimitError
from pywebtransport.types import ConnectionId, SessionId, SessionState

if TYPE_CHECKING:
    from pywebtransport.session.session import WebTransportSession

__all__ = ["SessionManager"]

logger = logging.getLogger(__name__)

#: Sessions are keyed by (connection id, session id): a session id is only unique on its
#: own connection (every connection's first session has id 0).
_SessionKey = tuple[ConnectionId, SessionId]


class SessionManager(_ResourceManager[_SessionKey, "WebTransportSession"]):
    """Tracks up to ``max_sessions`` sessions; use as ``async with SessionManager(...)``.

    A session leaves the manager by itself when it closes (SESSION_CLOSED on
    ``session.events``); a background task sweeps closed sessions every
    ``session_cleanup_interval`` seconds as a safety net. ``shutdown()`` (also on leaving
    ``async with``) stops that task and closes every managed session.

    Session ids repeat across connections. Lookups by ``session_id`` alone
    (``get_session``, ``get_resource``, ``remove_session``) pick the session with that id
    that was added first; pass ``connection_id=`` to choose one on a given connection, or
    use :meth:`get_sessions_by_id` to see them all.

    ``total_closed`` in the statistics counts every session that left the manager, closed
    or removed by hand, so ``total_created - total_closed == current_count``.

    On a server, pass the manager as ``WebTransportServer(session_manager=...)`` (or
    ``ServerApp(session_manager=...)``) rather than adding sessions in the handler: the server
    then adds each session before accepting it, and a full manager makes the server refuse
    the request with 503 instead of accepting the session only to fail it.
    """

    _kind = "session"
    _limit_error = SessionLimitError
    _closed_events = (EventType.SESSION_CLOSED,)

    def __init__(self, *, max_sessions: int = 10000, session_cleanup_interval: float = 60.0) -> None:
        super().__init__(max_resources=max_sessions, cleanup_interval=session_cleanup_interval)
        self._by_session_id: dict[SessionId, list[_SessionKey]] = {}

    @classmethod
    def create(cls, *, max_sessions: int = 10000, session_cleanup_interval: float = 60.0) -> SessionManager:
        """A new manager (enter it with ``async with`` before adding sessions)."""
        return cls(max_sessions=max_sessions, session_cleanup_interval=session_cleanup_interval)

    @property
    def max_sessions(self) -> int:
        return self._max_resources

    @property
    def session_cleanup_interval(self) -> float:
        assert self._cleanup_interval is not None
        return self._cleanup_interval

    # ------------------------------------------------------------------ hooks

    def _key_of(self, resource: WebTransportSession) -> _SessionKey:
        connection = resource.connection
        owner = connection.connection_id if connection is not None else f"detached-{id(resource):x}"
        return (owner, resource.session_id)

    async def _close(self, resource: WebTransportSession) -> None:
        if not resource.is_closed:
            await resource.close(reason="session manager shutting down")

    def _state_name(self, resource: WebTransportSession) -> str:
        return resource.state.value

    def _all_states(self) -> list[str]:
        return [state.value for state in SessionState]

    def _closed_error(self, resource: WebTransportSession) -> Exception:
        return SessionClosedError(f"session {resource.session_id} is already closed; not adding it",
                                  error_code=resource.close_code, reason=resource.close_reason or "")

    def _after_add(self, key: _SessionKey, resource: WebTransportSession) -> None:
        self._by_session_id.setdefault(key[1], []).append(key)

    def _after_forget(self, key: _SessionKey, resource: WebTransportSession) -> None:
        keys = self._by_session_id.get(key[1])
        if keys is not None:
            keys.remove(key)
            if not keys:
                del self._by_session_id[key[1]]

    def _lookup(self, session_id: SessionId, connection_id: ConnectionId | None) -> _SessionKey | None:
        for key in self._by_session_id.get(session_id, ()):
            if connection_id is None or key[0] == connection_id:
                return key
        return None

    # ------------------------------------------------------------------ documented API

    async def add_session(self, *, session: WebTransportSession) -> SessionId:
        """Manage ``session`` and return its id (adding it again is a no-op).

        RuntimeError if the manager is not active (outside ``async with``) or shutting
        down; SessionLimitError (a RuntimeError) when ``max_sessions`` are managed;
        SessionClosedError if the session is already closed.
        """
        await self._add(session)
        return session.session_id

    async def remove_session(self, *, session_id: SessionId,
                             connection_id: ConnectionId | None = None) -> WebTransportSession | None:
        """Stop managing a session (it is not closed); the session, or None if unknown.
        With duplicates, the first added (on ``connection_id`` if given) is removed."""
        async with self._lock:
            key = self._lookup(session_id, connection_id)
            if key is None:
                return None
            session = self._resources[key]
            self._forget(key, session)
            return session

    async def get_session(self, *, session_id: SessionId,
                          connection_id: ConnectionId | None = None) -> WebTransportSession | None:
        """The managed session with this id (the first added, on ``connection_id`` if
        given), or None."""
        async with self._lock:
            key = self._lookup(session_id, connection_id)
            return None if key is None else self._resources[key]

    async def get_resource(self, *, resource_id: SessionId,
                           connection_id: ConnectionId | None = None) -> WebTransportSession | None:
        """The same as :meth:`get_session`."""
        return await self.get_session(session_id=resource_id, connection_id=connection_id)

    async def get_sessions_by_id(self, *, session_id: SessionId) -> list[WebTransportSession]:
        """Every managed session with this id (one per connection), oldest first."""
        async with self._lock:
            return [self._resources[key] for key in self._by_session_id.get(session_id, ())]

    async def get_all_sessions(self) -> list[WebTransportSession]:
        """Every managed session, oldest first."""
        async with self._lock:
            return list(self._resources.values())

    async def get_all_resources(self) -> list[WebTransportSession]:
        """The same as :meth:`get_all_sessions`."""
        return await self.get_all_sessions()

    async def get_sessions_by_state(self, *, state: SessionState) -> list[WebTransportSession]:
        """The managed sessions whose state is ``state`` now."""
        async with self._lock:
            return [s for s in self._resources.values() if s.state is state]

    def get_session_count(self) -> int:
        """How many sessions are managed now (no locking)."""
        return len(self._resources)

    async def cleanup_closed_sessions(self) -> int:
        """Drop managed sessions that are closed; how many were dropped."""
        return await self._cleanup_closed()

    async def close_all_sessions(self) -> None:
        """Close every managed session and stop managing them (the manager stays usable)."""
        await self._close_all()

    async def get_stats(self) -> dict[str, Any]:
        """total_created, total_closed, current_count, max_concurrent, ``states`` (count per
        SessionState value), max_sessions, session_cleanup_interval, active, cleanup_runs."""
        async with self._lock:
            stats = self._base_stats()
        stats["max_sessions"] = self._max_resources
        stats["session_cleanup_interval"] = self._cleanup_interval
        return stats

    async def shutdown(self) -> None:
        """Stop the cleanup task, stop accepting and close every managed session."""
        await super().shutdown()

    def __repr__(self) -> str:
        return f"<SessionManager {len(self._resources)}/{self._max_resources} active={self.is_active}>"
