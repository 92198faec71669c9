"""Resource managers: bounded sets of connections or sessions that tidy themselves up.

Both are asynchronous context managers: enter before adding, and leaving (or
``shutdown()``) closes whatever is still managed.
"""

from __future__ import annotations

from pywebtransport.manager.connection_manager import ConnectionManager
from pywebtransport.manager.exceptions import ConnectionLimitError, ResourceLimitError, SessionLimitError
from pywebtransport.manager.session_manager import SessionManager

__all__ = [
    "ConnectionLimitError",
    "ConnectionManager",
    "ResourceLimitError",
    "SessionLimitError",
    "SessionManager",
]
