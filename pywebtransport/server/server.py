"""WebTransportServer: accept QUIC connections and WebTransport sessions on a UDP port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from pywebtransport._io import UdpEndpoint
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.budget import SharedBudgets
from pywebtransport._protocol.quic import QuicSettings, build_connection_refused
from pywebtransport._protocol.settings import DIALECT_DRAFT02
from pywebtransport.config import ServerConfig
from pywebtransport.connection import WebTransportConnection, build_quic_configuration
from pywebtransport.events import Event, EventType
from pywebtransport.exceptions import (
    ConnectionClosedError,
    ServerError,
    SessionClosedError,
    StreamClosedError,
    WebTransportError,
)
from pywebtransport.manager.exceptions import ResourceLimitError
from pywebtransport.server.router import check_handler
from pywebtransport.session.session import WebTransportSession
from pywebtransport.types import Address, CloseCause

if TYPE_CHECKING:
    from pywebtransport.manager.session_manager import SessionManager

__all__ = ["DEFAULT_MAX_CONCURRENT_HANDSHAKES", "DEFAULT_PRE_SESSION_GRACE", "REAP_REASON", "RequestDecider",
           "SessionHandler", "WebTransportServer"]

logger = logging.getLogger(__name__)

#: Handshakes in progress at once (each costs the server 8-16 ms of CPU); beyond it new
#: clients are refused at once, so a burst cannot starve established sessions. Read from
#: ``ServerConfig.max_concurrent_handshakes`` when the config has that field.
DEFAULT_MAX_CONCURRENT_HANDSHAKES = 64
#: At ``max_connections``, a connection that has carried no session for this many seconds
#: (since it was accepted, or since its last session ended) may be closed to admit a new
#: client: the default of ``ServerConfig.pre_session_grace``.
DEFAULT_PRE_SESSION_GRACE = 3.0
#: The reason phrase of the CONNECTION_CLOSE (H3_NO_ERROR) that a reaped connection gets.
REAP_REASON = "closed while idle without a session: the server is at max_connections"
#: At most one "refusing connection" warning per this many seconds; the others are counted.
_REFUSAL_LOG_INTERVAL = 1.0
#: Original destination connection ids of recently refused Initials: a client's retransmitted
#: Initial is not counted or logged again.
_REMEMBERED_REFUSALS = 4096
#: How long a handler's transport error waits for its session's close to arrive (seconds).
_CLOSE_GRACE = 0.25
#: Close causes that mean the peer (or the path to it) ended the session, not this server.
_PEER_CAUSES = frozenset({CloseCause.PEER_CLOSE, CloseCause.PEER_CONNECTION_CLOSE, CloseCause.IDLE_TIMEOUT})
#: Errors a handler meets because its session closed under it: a normal end, not a bug.
_CLOSED_ERRORS = (SessionClosedError, StreamClosedError, ConnectionClosedError)

#: Runs a session once it is accepted; the session is closed when it returns.
SessionHandler = Callable[[WebTransportSession], Awaitable[None]]
#: Decides on a request: True/None accepts, False rejects with 403, an int rejects with that status.
RequestDecider = Callable[[WebTransportSession], Awaitable["bool | int | None"]]


class WebTransportServer:
    """A WebTransport server bound to ``config.host``/``config.port``.

    Register handlers per path with ``@server.route("/path")`` (or ``handler=`` for every
    path); a request for a path without a handler is refused with 404. Use
    ``async with server:`` and ``await server.serve_forever()``.

    Before a session is accepted: a present ``origin`` header not in ``config.allowed_origins``
    gets 403, then the path's handler and ``decider`` are consulted, then ``session_manager``
    (if given) must have room for it, else ``session_limit_status`` (503). New connections
    over the concurrent handshake cap are refused with CONNECTION_REFUSED. At
    ``config.max_connections``, the connection without a session for the longest time is
    closed to make room, if that is longer than ``pre_session_grace`` (3 s; see
    ``DEFAULT_PRE_SESSION_GRACE``); only when there is none is the new client refused.
    Connections in QUIC's closing period (RFC 9000 §10.2) do not count.
    """

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
        self._refusal_logged_at: float | None = None
        self._refusals_suppressed = 0
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
        self._reap_logged_at: float | None = None
        self._reaps_unlogged = 0

    # -- configuration
    @property
    def config(self) -> ServerConfig:
        return self._config

    def route(self, path: str) -> Callable[[SessionHandler], SessionHandler]:
        """Decorator: run the decorated coroutine for sessions on ``path``."""
        def register(handler: SessionHandler) -> SessionHandler:
            self.add_route(path, handler)
            return handler
        return register

    def add_route(self, path: str, handler: SessionHandler) -> None:
        """Run ``handler(session)`` for sessions on ``path``; TypeError at once if the handler
        cannot be called with the session as its only argument."""
        if not path.startswith("/"):
            raise ValueError(f"a route path must start with '/', got {path!r}")
        check_handler(path, handler)
        self._routes[path] = handler

    def resolve(self, session: WebTransportSession) -> SessionHandler | None:
        """The handler for a session's path (the query string is ignored), or None."""
        return self._routes.get(session.path.split("?", 1)[0], self._default_handler)

    # -- lifecycle
    @property
    def local_address(self) -> Address:
        if self._endpoint is None:
            raise ServerError("the server is not listening; call start() first")
        return self._endpoint.local_address

    @property
    def is_serving(self) -> bool:
        return self._endpoint is not None and not self._closing

    @property
    def connections(self) -> list[WebTransportConnection]:
        """The live connections (a connection leaves as soon as it closes or is lost)."""
        return [c for c in self._connections if _is_live(c)]

    @property
    def pre_session_grace(self) -> float:
        """Seconds without a session after which a connection may be closed to admit a new
        client when the server is at ``max_connections`` (``ServerConfig.pre_session_grace``)."""
        return float(self._config.pre_session_grace)

    @property
    def max_concurrent_handshakes(self) -> int:
        """How many handshakes may be in progress at once before new clients are refused."""
        value = getattr(self._config, "max_concurrent_handshakes", None)
        return DEFAULT_MAX_CONCURRENT_HANDSHAKES if value is None else int(value)

    async def start(self) -> None:
        """Bind the UDP socket and start accepting."""
        if self._endpoint is not None:
            return
        self._quic_configuration = build_quic_configuration(self._config)
        try:
            self._endpoint = await UdpEndpoint.open(local_addr=(self._config.host, self._config.port),
                                                    new_connection=self._new_connection,
                                                    socket_buffer_size=self._config.socket_buffer_size,
                                                    refuse=_refusal, reuse_port=self._config.reuse_port)
        except OSError as exc:
            raise ServerError(f"cannot listen on {self._config.host}:{self._config.port}: {exc}") from exc
        host, port = self.local_address
        logger.info("WebTransport server listening on %s:%d", host, port)

    async def serve_forever(self) -> None:
        """Serve until close() is called."""
        await self.start()
        await self._closed.wait()

    async def close(self, *, drain_timeout: float = 0.0) -> None:
        """Stop accepting, close every session cleanly, then every connection; cancel handlers.

        With ``drain_timeout`` > 0, sessions first get WT_DRAIN_SESSION and that long to end
        by themselves; connections get GOAWAY, except draft-02 peers (Chromium's network
        service crashes on a GOAWAY, see docs/browsers.md). Browsers ignore WT_DRAIN_SESSION,
        so whatever is still open at the deadline is closed with WT_CLOSE_SESSION code 0,
        which a page sees as a clean close. The close runs to its end even if the caller is
        cancelled; every call waits for the same close.
        """
        if self._close_task is None:
            self._closing = True
            self._close_task = asyncio.get_running_loop().create_task(self._close(drain_timeout),
                                                                      name="pywebtransport-server-close")
        await asyncio.shield(self._close_task)

    async def _close(self, drain_timeout: float) -> None:
        try:
            connections = list(self._connections)
            if drain_timeout > 0:
                await self._drain(connections, drain_timeout)
            await asyncio.gather(*(c.close(reason="server shutting down") for c in connections),
                                 return_exceptions=True)
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._endpoint is not None:
                # RFC 9000 §10.2: the socket answers late packets with each CONNECTION_CLOSE
                # until the closing periods are over (bounded by close_timeout).
                await self._endpoint.wait_quiet(self._config.close_timeout)
        finally:
            if self._endpoint is not None:
                self._endpoint.close()
            self._closed.set()

    @staticmethod
    async def _drain(connections: list[WebTransportConnection], drain_timeout: float) -> None:
        for connection in connections:
            if connection.dialect != DIALECT_DRAFT02:
                connection.send_goaway()
            for session in connection.sessions:
                if session.is_ready:
                    try:
                        await session.drain()
                    except Exception:
                        logger.debug("could not drain session %d", session.session_id)
        sessions = [s for c in connections for s in c.sessions if not s.is_closed]
        if sessions:
            waiters = [asyncio.ensure_future(s.wait_closed()) for s in sessions]
            try:
                await asyncio.wait(waiters, timeout=drain_timeout)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def __aenter__(self) -> WebTransportServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connections and sessions
    def _new_connection(self, original_dcid: bytes, addr: Address) -> WebTransportConnection | None:
        if self._closing:
            return None
        handshaking = self._handshakes_in_progress()
        if handshaking >= self.max_concurrent_handshakes:
            self._note_refusal(original_dcid, addr, f"{handshaking} handshakes in progress "
                                                    f"(max_concurrent_handshakes)", handshake=True)
            return None
        live = self.connections
        # A retransmitted Initial of a client already refused reaps nothing: that client has gone.
        if len(live) >= self._config.max_connections and (original_dcid in self._recent_refusals
                                                          or not self._reap(live)):
            self._note_refusal(original_dcid, addr, f"max_connections ({self._config.max_connections}) reached")
            return None
        self._recent_refusals.pop(original_dcid, None)
        assert self._endpoint is not None and self._quic_configuration is not None
        connection = WebTransportConnection(
            config=self._config, endpoint=self._endpoint, quic_configuration=self._quic_configuration,
            remote_address=addr, original_destination_connection_id=original_dcid,
            on_session_request=self._on_session_request, budgets=self._budgets)
        self._connections.add(connection)
        self._handshaking[connection] = time.monotonic()

        def established(_event: Event) -> None:
            self._handshaking.pop(connection, None)

        def gone(_event: Event) -> None:
            self._connections.discard(connection)
            self._handshaking.pop(connection, None)

        connection.events.on(EventType.CONNECTION_ESTABLISHED, established)
        connection.events.on(EventType.CONNECTION_CLOSED, gone)
        connection.events.on(EventType.CONNECTION_LOST, gone)
        return connection

    def _reap(self, live: list[WebTransportConnection]) -> bool:
        """At ``max_connections``: close the connection that has carried no session for the
        longest time, if that is longer than ``pre_session_grace``, with CONNECTION_CLOSE
        (H3_NO_ERROR, ``REAP_REASON``). False when none qualifies (the new client is refused)."""
        grace = self.pre_session_grace
        idle = [(since, c) for c in live if (since := c.sessionless_for) is not None and since >= grace]
        if not idle:
            return False
        since, victim = max(idle, key=lambda entry: entry[0])
        victim.start_close(reason=REAP_REASON)  # it stops counting at once
        self.spawn(victim.close(), name=f"pywebtransport-reap-{victim.connection_id}")
        self._handshaking.pop(victim, None)
        self.connections_reaped += 1
        now = time.monotonic()
        if self._reap_logged_at is not None and now - self._reap_logged_at < _REFUSAL_LOG_INTERVAL:
            self._reaps_unlogged += 1
            return True
        unlogged, self._reaps_unlogged = self._reaps_unlogged, 0
        self._reap_logged_at = now
        more = f" ({unlogged} more since the last message)" if unlogged else ""
        logger.info("max_connections (%d) reached: closed the connection from %s:%d, %.1fs without a session, "
                    "to admit a new client%s", self._config.max_connections, victim.remote_address[0],
                    victim.remote_address[1], since, more)
        return True

    def _handshakes_in_progress(self) -> int:
        """Handshakes under way; one older than ``config.connect_timeout`` is abandoned (its
        connection closed), so peers that never finish cannot hold the cap."""
        deadline = time.monotonic() - self._config.connect_timeout
        for connection, started in list(self._handshaking.items()):
            if not _is_live(connection):
                del self._handshaking[connection]
            elif started < deadline:
                del self._handshaking[connection]
                self.handshakes_abandoned += 1
                logger.info("abandoning the handshake with %s:%d: not done within %.1fs",
                            connection.remote_address[0], connection.remote_address[1], self._config.connect_timeout)
                self.spawn(connection.close(reason="handshake timeout"),
                           name=f"pywebtransport-abandon-{connection.connection_id}")
        return len(self._handshaking)

    def _note_refusal(self, original_dcid: bytes, addr: Address, why: str, *, handshake: bool = False) -> None:
        """Count and log a connection we will not serve (at most one warning per interval,
        with how many were suppressed), unless it is a retransmission of an Initial already
        refused. The endpoint answers the Initial itself with CONNECTION_REFUSED."""
        if original_dcid in self._recent_refusals:
            return
        self._recent_refusals[original_dcid] = None
        while len(self._recent_refusals) > _REMEMBERED_REFUSALS:
            self._recent_refusals.popitem(last=False)
        self.connections_refused += 1
        if handshake:
            self.handshakes_refused += 1
        now = time.monotonic()
        if self._refusal_logged_at is not None and now - self._refusal_logged_at < _REFUSAL_LOG_INTERVAL:
            self._refusals_suppressed += 1
            return
        suppressed, self._refusals_suppressed = self._refusals_suppressed, 0
        self._refusal_logged_at = now
        self.refusal_warnings += 1
        more = f" ({suppressed} more refused since the last warning)" if suppressed else ""
        logger.warning("refusing connection from %s:%d: %s%s", addr[0], addr[1], why, more)

    def choose_protocol(self, session: WebTransportSession) -> str | None:
        """The subprotocol to answer: the one a decider selected, else the first of the server's
        ``protocols`` the client offered, else None (no WT-Protocol is sent)."""
        if session.selected_protocol is not None:
            return session.selected_protocol
        offered = session.available_protocols
        return next((p for p in self._protocols if p in offered), None)

    def _on_session_request(self, connection: WebTransportConnection, session: WebTransportSession,
                            request: ev.SessionRequested) -> None:
        self.spawn(self._decide(connection, session), name=f"pywebtransport-decide-{session.session_id}")

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

    def origin_allowed(self, session: WebTransportSession) -> bool:
        """Whether the request's ``origin`` may connect under ``config.allowed_origins``.

        Draft-15 §3.2: a server verifies the Origin header when there is one. A request
        without one is allowed: browsers always send it, native clients may not.
        """
        if self._allowed_origins is None or "*" in self._allowed_origins:
            return True
        origin = session.headers.get("origin")
        return origin is None or origin.rstrip("/") in self._allowed_origins

    async def _decide(self, connection: WebTransportConnection, session: WebTransportSession) -> None:
        handler = self.resolve(session)
        status: int | None = None
        if not self.origin_allowed(session):
            logger.info("%s rejected with 403: origin %r is not allowed", session.path, session.headers.get("origin"))
            status = 403
        elif handler is None:
            status = self._config.reject_status_for_unknown_path
        elif self._decider is not None:
            try:
                verdict = await self._decider(session)
            except Exception:
                logger.exception("request decider failed for %s; rejecting with 500", session.path)
                verdict = 500
            if verdict is False:
                status = 403
            elif isinstance(verdict, int) and not isinstance(verdict, bool):
                status = verdict
        if connection.is_closed or session.is_closed:
            return
        if status is None and self._session_manager is not None:
            status = await self._admit(session)
        if connection.is_closed or session.is_closed:
            return
        if status is not None:
            self.sessions_rejected += 1
            connection.reject_session(session, status_code=status)
            return
        connection.accept_session(session, protocol=self.choose_protocol(session))
        self.sessions_accepted += 1
        assert handler is not None
        await self._run_handler(handler, session)

    async def _admit(self, session: WebTransportSession) -> int | None:
        """Add the session to the session manager before accepting it: a full (or shut down)
        manager refuses it with ``session_limit_status`` rather than accepting it and failing."""
        assert self._session_manager is not None
        try:
            await self._session_manager.add_session(session=session)
        except ResourceLimitError as exc:
            logger.info("%s rejected with %d: %s", session.path, self._session_limit_status, exc)
            return self._session_limit_status
        except SessionClosedError:
            return None  # it closed meanwhile; _decide sees that
        except RuntimeError as exc:  # the manager is not active or is shutting down
            logger.info("%s rejected with %d: %s", session.path, self._session_limit_status, exc)
            return self._session_limit_status
        return None

    async def _run_handler(self, handler: SessionHandler, session: WebTransportSession) -> None:
        closed_by_peer: list[bool] = []

        def on_closed(event: Event) -> None:
            data = event.data if isinstance(event.data, dict) else {}
            closed_by_peer.append(bool(data.get("by_peer", False)))

        session.events.on(EventType.SESSION_CLOSED, on_closed)
        try:
            await handler(session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, WebTransportError) and not session.is_closed:
                # A peer that leaves resets its streams and then closes the session; the
                # handler may wake between the two. Give the close a moment to arrive.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(session.wait_closed(), _CLOSE_GRACE)
            if _ended_by_close(session, exc, closed_by_peer):
                logger.info("session handler for %s ended: the session was closed (code %s, reason %r): %s",
                            session.path, session.close_code, session.close_reason, exc)
                return
            logger.exception("session handler for %s failed", session.path)
            if not session.is_closed:
                await session.close(error_code=1, reason="internal server error")
            return
        finally:
            session.events.off(EventType.SESSION_CLOSED, on_closed)
        if not session.is_closed:
            await session.close()

    def get_stats(self) -> dict[str, Any]:
        return {
            "connections": len(self.connections),
            "sessions_accepted": self.sessions_accepted,
            "sessions_rejected": self.sessions_rejected,
            "connections_refused": self.connections_refused,
            "handshakes_in_progress": self._handshakes_in_progress(),
            "handshakes_refused": self.handshakes_refused,
            "handshakes_abandoned": self.handshakes_abandoned,
            "connections_reaped": self.connections_reaped,
            "connections_closing": self._endpoint.closing_count if self._endpoint is not None else 0,
            "tasks": len(self._tasks),
        }


def _is_live(connection: WebTransportConnection) -> bool:
    """Not closed, and not already ending at the QUIC level (when the engine can tell)."""
    if connection.is_closed:
        return False
    return not getattr(connection.protocol_handler, "is_closing", False)


def _ended_by_close(session: WebTransportSession, exc: Exception, closed_by_peer: list[bool]) -> bool:
    """Whether a handler's exception only says that its session is gone (the peer left, or
    the server is closing it), as opposed to a bug in the handler."""
    if not session.is_closed:
        return False
    if isinstance(exc, _CLOSED_ERRORS):
        return True
    if not isinstance(exc, WebTransportError):
        return False
    cause = getattr(session, "close_cause", None)
    if isinstance(cause, CloseCause):
        return cause in _PEER_CAUSES
    return any(closed_by_peer)


def _refusal(version: int, client_dcid: bytes, client_scid: bytes) -> bytes | None:
    """The endpoint's answer to an Initial the server declines: CONNECTION_REFUSED, at once."""
    return build_connection_refused(version=version, client_dcid=client_dcid, client_scid=client_scid)
