"""Sessions: WebTransportSession, its statistics and diagnostics, and SessionManager."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pywebtransport.session.session import WebTransportSession
from pywebtransport.session.stats import SessionDiagnostics, SessionStatistics, SessionStats

__all__ = ["SessionDiagnostics", "SessionManager", "SessionStatistics", "SessionStats", "WebTransportSession"]

if TYPE_CHECKING:
    from pywebtransport.manager import SessionManager


def __getattr__(name: str) -> Any:
    # SessionManager lives in pywebtransport.manager; imported lazily to avoid a cycle.
    if name == "SessionManager":
        from pywebtransport.manager import SessionManager

        return SessionManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
