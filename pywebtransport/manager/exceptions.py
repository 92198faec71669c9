"""Errors raised by the resource managers."""

from __future__ import annotations

from pywebtransport.exceptions import WebTransportError

__all__ = ["ConnectionLimitError", "ResourceLimitError", "SessionLimitError"]


class ResourceLimitError(WebTransportError, RuntimeError):
    """A manager is full: adding one more resource would exceed its limit."""

    def __init__(self, message: str = "", *, limit: int = 0) -> None:
        super().__init__(message or f"resource limit of {limit} reached")
        self.limit = limit


class ConnectionLimitError(ResourceLimitError):
    """A ConnectionManager already holds ``max_connections`` connections."""


class SessionLimitError(ResourceLimitError):
    """A SessionManager already holds ``max_sessions`` sessions."""
