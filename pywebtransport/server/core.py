"""What every part of a server reads: its configuration, handlers, connections, tasks, counters.

``ServerCore`` holds the state of a :class:`~pywebtransport.server.WebTransportServer` and
the tasks it runs; the other parts (``lifecycle``, ``sessions``) are mixins over it, put
together in ``server.py`` with admission control (which connections are served).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from pywebtransport._protocol.budget import SharedBudgets
from pywebtransport.config import ServerConfig
from pywebtransport.server.router import check_handler
from pywebtransport.server.throttle import LogThrottle
from pywebtransport.session.session import WebTransportSession

if TYPE_CHECKING:
    from pywebtransport._io import UdpEndpoint
    from pywebtransport._protocol.quic import QuicSettings
    from pywebtransport.connection import WebTransportConnection
    from pywebtransport.manager.session_manager import SessionManager
    from pywebtransport.types import Address

__all__ = ["REJECTION_STATUSES", "RequestDecider", "ServerCore", "SessionHandler", "is_rejection_status"]

#: The server's logger (docs/debugging.md names it): every part of the class logs to it.
logger = logging.getLogger("pywebtransport.server.server")

#: Runs a session once it is accepted; the session is closed when it returns.
SessionHandler = Callable[[WebTransportSession], Awaitable[None]]
#: Decides on a request: True/None accepts, False rejects with 403, an int in
#: ``REJECTION_STATUSES`` rejects with that status. Anything else is a bug in the decider: the
#: request is rejected with 500. One that does not answer within ``config.connect_timeout``
#: is cancelled and the request rejected with 503, and one whose request is withdrawn (the
#: session or its connection closed) is cancelled.
RequestDecider = Callable[[WebTransportSession], Awaitable["bool | int | None"]]
#: The statuses that can refuse a session request: a final status that is not 2xx (1xx ones
#: are interim, RFC 9114 §4.1), the range the engine will answer a CONNECT with.
REJECTION_STATUSES = range(300, 600)
#: Warnings peers can trigger at will (refusals, reaps, decisions cut short): at most one of
#: each kind per this many seconds; the others are counted into the next one.
LOG_INTERVAL = 1.0


def is_rejection_status(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an int (not a bool) in ``REJECTION_STATUSES``."""
    return isinstance(value, int) and not isinstance(value, bool) and value in REJECTION_STATUSES


class ServerCore:
    """The state of one server and what its parts share (internal; see WebTransportServer)."""

    def __init__(self, *, config: ServerConfig | None = None, handler: SessionHandler | None = None,
                 decider: RequestDecider | None = None, session_manager: SessionManager | None = None,
                 session_limit_status: int = 503, protocols: Sequence[str] = ()) -> None:
        self._config = config or ServerConfig()
        #: Buffered-byte budgets all of this server's connections share (send and receive).
        self._budgets = SharedBudgets.of(send=self._config.max_server_send_buffer,
                                         receive=self._config.max_server_receive_buffer)
        #: Subprotocols this server speaks, most preferred first (draft-15 §3.3): a session gets
        #: the first of these the client offered, unless a decider chose with select_protocol().
        self._protocols = tuple(protocols)
        if handler is not None:
            check_handler("*", handler)
        self._default_handler = handler
        self._decider = decider
        self._session_manager = session_manager
        if not 400 <= session_limit_status <= 599:
            raise ValueError(f"session_limit_status must be a 4xx or 5xx status, got {session_limit_status!r}")
        self._session_limit_status = session_limit_status
        origins = self._config.allowed_origins
        self._allowed_origins = None if origins is None else frozenset(o.rstrip("/") for o in origins)
        self._routes: dict[str, SessionHandler] = {}
        self._endpoint: UdpEndpoint | None = None
        self._quic_configuration: QuicSettings | None = None
        self._connections: set[WebTransportConnection] = set()
        self._handshaking: dict[WebTransportConnection, float] = {}  # -> when it started (monotonic)
        self._recent_refusals: OrderedDict[bytes, None] = OrderedDict()
        #: Refusals, reaps and decisions cut short: peers cause them at will, so each kind
        #: is logged at most once per second.
        self._refusal_log = LogThrottle(LOG_INTERVAL)
        self._reap_log = LogThrottle(LOG_INTERVAL)
        self._decide_timeout_log = LogThrottle(LOG_INTERVAL)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self.sessions_accepted = 0
        self.sessions_rejected = 0
        self.connections_refused = 0
        self.handshakes_refused = 0
        self.handshakes_abandoned = 0
        self.refusal_warnings = 0
        self.connections_reaped = 0

    # -- configuration
    @property
    def config(self) -> ServerConfig:
        return self._config

    def spawn(self, coro: Awaitable[Any], *, name: str) -> asyncio.Task[Any]:
        """Run a coroutine as a named task the server tracks and cancels on close."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("server task %s failed", task.get_name(), exc_info=task.exception())

    if TYPE_CHECKING:
        # Provided by WebTransportServer (server.py): admission control.
        def _new_connection(self, original_dcid: bytes, addr: Address) -> WebTransportConnection | None: ...
