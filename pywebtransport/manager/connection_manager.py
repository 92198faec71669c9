"""ConnectionManager: a bounded set of WebTransport connections, tidied as they close."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pywebtransport.events import EventType
from pywebtransport.exceptions import ConnectionClosedError
from pywebtransport.manager._base import _ResourceManager
from pywebtransport.manager.exceptions import ConnectionLimitError
from pywebtransport.types import ConnectionId, ConnectionState

if TYPE_CHECKING:
    from pywebtransport.connection import WebTransportConnection

__all__ = ["ConnectionManager"]

logger = logging.getLogger(__name__)


class ConnectionManager(_ResourceManager[ConnectionId, "WebTransportConnection"]):
    """Tracks up to ``max_connections`` connections; use as ``async with ConnectionManager(...)``.

    A connection leaves the manager by itself when it closes or is lost (the manager
    listens for CONNECTION_CLOSED / CONNECTION_LOST on ``connection.events``); a sweep
    every ``connection_cleanup_interval`` seconds catches any that closed unnoticed.
    ``shutdown()`` (also on leaving ``async with``) closes whatever is still managed.

    ``total_closed`` in the statistics counts every connection that left the manager,
    closed or removed by hand, so ``total_created - total_closed == current_count``.
    """

    _kind = "connection"
    _limit_error = ConnectionLimitError
    _closed_events = (EventType.CONNECTION_CLOSED, EventType.CONNECTION_LOST)

    def __init__(self, *, max_connections: int, connection_cleanup_interval: float = 60.0) -> None:
        super().__init__(max_resources=max_connections, cleanup_interval=connection_cleanup_interval)

    @property
    def max_connections(self) -> int:
        return self._max_resources

    # ------------------------------------------------------------------ hooks

    def _key_of(self, resource: WebTransportConnection) -> ConnectionId:
        return resource.connection_id

    async def _close(self, resource: WebTransportConnection) -> None:
        if not resource.is_closed:
            await resource.close(reason="connection manager shutting down")

    def _state_name(self, resource: WebTransportConnection) -> str:
        return resource.state.value

    def _all_states(self) -> list[str]:
        return [state.value for state in ConnectionState]

    def _closed_error(self, resource: WebTransportConnection) -> Exception:
        return ConnectionClosedError(f"connection {resource.connection_id} is already closed; not adding it")

    # ------------------------------------------------------------------ documented API

    async def add_connection(self, *, connection: WebTransportConnection) -> ConnectionId:
        """Manage ``connection`` and return its id (adding it again is a no-op).

        RuntimeError if the manager is not active (outside ``async with``) or shutting
        down; ConnectionLimitError (a RuntimeError) when ``max_connections`` are managed;
        ConnectionClosedError if the connection is already closed.
        """
        return await self._add(connection)

    async def remove_connection(self, *, connection_id: ConnectionId) -> WebTransportConnection | None:
        """Stop managing a connection (it is not closed); the connection, or None if unknown."""
        return await self._remove(connection_id)

    async def get_resource(self, *, resource_id: ConnectionId) -> WebTransportConnection | None:
        """The managed connection with this id, or None."""
        async with self._lock:
            return self._resources.get(resource_id)

    async def get_all_resources(self) -> list[WebTransportConnection]:
        """Every managed connection, oldest first."""
        async with self._lock:
            return list(self._resources.values())

    async def cleanup_closed_connections(self) -> int:
        """Drop managed connections that are closed; how many were dropped."""
        return await self._cleanup_closed()

    async def close_all_connections(self) -> None:
        """Close every managed connection and stop managing them (the manager stays usable)."""
        await self._close_all()

    def get_connection_count(self) -> int:
        """How many connections are managed now (no locking)."""
        return len(self._resources)

    async def get_stats(self) -> dict[str, Any]:
        """total_created, total_closed, current_count, max_concurrent, ``states`` (count per
        ConnectionState value), max_connections, active, cleanup_runs."""
        async with self._lock:
            stats = self._base_stats()
        stats["max_connections"] = self._max_resources
        stats["connection_cleanup_interval"] = self._cleanup_interval
        return stats

    async def shutdown(self) -> None:
        """Stop accepting, cancel the cleanup task and close every managed connection."""
        await super().shutdown()

    def __repr__(self) -> str:
        return f"<ConnectionManager {len(self._resources)}/{self._max_resources} active={self.is_active}>"
