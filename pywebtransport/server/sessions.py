"""What a server does with each session request: the route's handler, the origin check, the
decider, the session manager's room, the subprotocol, then running the handler and telling
a session that simply ended from a handler that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from pywebtransport._protocol import events as ev
from pywebtransport.connection import WebTransportConnection
from pywebtransport.exceptions import (
    ConnectionClosedError,
    SessionClosedError,
    StreamClosedError,
    WebTransportError,
)
from pywebtransport.manager.exceptions import ResourceLimitError
from pywebtransport.server.core import ServerCore, SessionHandler, is_rejection_status
from pywebtransport.server.router import check_handler
from pywebtransport.session.session import WebTransportSession
from pywebtransport.types import CloseCause

__all__ = ["ServerSessions"]

#: The server's logger (docs/debugging.md names it): every part of the class logs to it.
logger = logging.getLogger("pywebtransport.server.server")

#: The status of a request whose decider did not answer within ``config.connect_timeout``: the
#: server cannot take the request now (RFC 9110 §15.6.4), the client may retry it later.
_DECIDE_TIMEOUT_STATUS = 503
#: The status a request decided while the server closes is refused with.
_CLOSING_STATUS = 503
#: How long a handler's transport error waits for its session's close to arrive (seconds).
_CLOSE_GRACE = 0.25
#: Close causes that mean the peer (or the path to it) ended the session, not this server.
_PEER_CAUSES = frozenset({CloseCause.PEER_CLOSE, CloseCause.PEER_RESET, CloseCause.PEER_CONNECTION_CLOSE,
                          CloseCause.IDLE_TIMEOUT})
#: Errors a handler meets because its session closed under it: a normal end, not a bug.
_CLOSED_ERRORS = (SessionClosedError, StreamClosedError, ConnectionClosedError)


class ServerSessions(ServerCore):
    """Routing, deciding on and running sessions (a part of WebTransportServer)."""

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

    def choose_protocol(self, session: WebTransportSession) -> str | None:
        """The subprotocol to answer: the one a decider selected, else the first of the server's
        ``protocols`` the client offered, else None (no WT-Protocol is sent)."""
        if session.selected_protocol is not None:
            return session.selected_protocol
        offered = session.available_protocols
        return next((p for p in self._protocols if p in offered), None)

    def _on_session_request(self, connection: WebTransportConnection, session: WebTransportSession,
                            request: ev.SessionRequested) -> None:
        self.spawn(self._serve(connection, session), name=f"pywebtransport-decide-{session.session_id}")

    def origin_allowed(self, session: WebTransportSession) -> bool:
        """Whether the request's ``origin`` may connect under ``config.allowed_origins``.

        Draft-15 §3.2: a server verifies the Origin header when there is one. A request
        without one is allowed: browsers always send it, native clients may not.
        """
        if self._allowed_origins is None or "*" in self._allowed_origins:
            return True
        origin = session.headers.get("origin")
        return origin is None or origin.rstrip("/") in self._allowed_origins

    async def _decide(self, connection: WebTransportConnection,
                      session: WebTransportSession) -> SessionHandler | None:
        """Accept or reject the session; the handler to run when it was accepted, else None."""
        handler = self.resolve(session)
        status: int | None = None
        if not self.origin_allowed(session):
            logger.info("%s rejected with 403: origin %r is not allowed", session.path, session.headers.get("origin"))
            status = 403
        elif handler is None:
            status = self._config.reject_status_for_unknown_path
        elif self._decider is not None:
            status = await self._ask_decider(session)
        if connection.is_closed or session.is_closed:
            return None
        if status is None and self._session_manager is not None:
            status = await self._admit(session)
        if connection.is_closed or session.is_closed:
            return None
        if status is None and self._closing:
            # Decided while the server closes (close(drain_timeout=...) lets connections
            # finish): no new session starts now (RFC 9114 §5.2), as at the door.
            logger.info("%s rejected with %d: the server is closing", session.path, _CLOSING_STATUS)
            status = _CLOSING_STATUS
        if status is not None:
            self.sessions_rejected += 1
            connection.reject_session(session, status_code=status)
            return None
        connection.accept_session(session, protocol=self.choose_protocol(session))
        self.sessions_accepted += 1
        assert handler is not None
        return handler

    async def _ask_decider(self, session: WebTransportSession) -> int | None:
        """The decider's verdict on ``session``: the status to reject it with, or None.

        The decider runs in a task of its own, so that the decision ends with the request:
        it is cancelled when the session closes first (the client gave up or its connection
        closed; nothing is answered then, see ``_decide``), and when it takes longer than
        ``config.connect_timeout``, which rejects the request with ``_DECIDE_TIMEOUT_STATUS``.
        """
        deciding = self.spawn(self._verdict(session), name=f"pywebtransport-decider-{session.session_id}")
        withdrawn = asyncio.ensure_future(session.wait_closed())
        try:
            done, _ = await asyncio.wait((deciding, withdrawn), timeout=self._config.connect_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            withdrawn.cancel()
            deciding.cancel()  # nothing when it has answered
        if deciding in done:
            if deciding.cancelled():  # only the decider itself can have cancelled it before the wait ended
                if self._closing:
                    return None
                logger.error("request decider for %s ended by a CancelledError of its own (it awaited something "
                             "that was cancelled); rejecting with 500", session.path)
                return 500
            status: int | None = deciding.result()
            return status
        if session.is_closed:
            logger.debug("the request for %s ended before it was decided; the decision was cancelled", session.path)
            return None
        held = self._decide_timeout_log.admit(time.monotonic())
        if held is not None:
            more = f" ({held} more since the last message)" if held else ""
            logger.warning("%s rejected with %d: the request decider did not answer within connect_timeout (%.1fs) "
                           "and was cancelled%s", session.path, _DECIDE_TIMEOUT_STATUS, self._config.connect_timeout,
                           more)
        return _DECIDE_TIMEOUT_STATUS

    async def _verdict(self, session: WebTransportSession) -> int | None:
        """Run the decider on ``session``: the status to reject it with, or None to accept it.

        A decider that raises, or answers with anything but a verdict (True or None accepts,
        False rejects with 403, an int in ``REJECTION_STATUSES`` with that status), has a
        bug: the request is rejected with 500 (it fails closed) and the bug is logged.
        """
        assert self._decider is not None
        try:
            verdict = await self._decider(session)
        except Exception:
            logger.exception("request decider failed for %s; rejecting with 500", session.path)
            return 500
        if verdict is None or verdict is True:
            return None
        if verdict is False:
            return 403
        if is_rejection_status(verdict):
            return verdict
        logger.error("request decider for %s answered %r, which is not a verdict (True or None accepts, False "
                     "rejects with 403, an int in 300-599 rejects with that status); rejecting with 500",
                     session.path, verdict)
        return 500

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

    async def _serve(self, connection: WebTransportConnection, session: WebTransportSession) -> None:
        """The one task of a session request: decide on it, then run the route's handler in
        this same frame (an idle session costs its handler's frame, this one and the task)."""
        handler = await self._decide(connection, session)
        if handler is None:
            return
        # Who ended the session is read from its close cause after the handler, not from a
        # SESSION_CLOSED listener: a listener would make every session an event emitter.
        try:
            await handler(session)
        except asyncio.CancelledError:
            # The server's close cancels handlers after closing their sessions; a handler may
            # also end by a CancelledError of its own (awaiting a helper task it cancelled).
            # Either way nothing serves the session any more: it must not stay open for good.
            if not session.is_closed:
                cancelling = getattr(asyncio.current_task(), "cancelling", None)  # Task.cancelling: 3.11+
                if cancelling is not None and not cancelling():  # nobody cancelled this task
                    logger.warning("session handler for %s ended by a CancelledError of its own; closing the "
                                   "session", session.path)
                session.close_nowait(error_code=1, reason="handler cancelled")
            raise
        except Exception as exc:
            if isinstance(exc, WebTransportError) and not session.is_closed:
                # A peer that leaves resets its streams and then closes the session; the
                # handler may wake between the two. Give the close a moment to arrive.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(session.wait_closed(), _CLOSE_GRACE)
            if _ended_by_close(session, exc):
                logger.info("session handler for %s ended: the session was closed (code %s, reason %r): %s",
                            session.path, session.close_code, session.close_reason, exc)
                return
            logger.exception("session handler for %s failed", session.path)
            if not session.is_closed:
                await session.close(error_code=1, reason="internal server error")
            return
        if not session.is_closed:
            await session.close()


def _ended_by_close(session: WebTransportSession, exc: Exception) -> bool:
    """Whether a handler's exception only says that its session is gone (the peer left, or
    the server is closing it), as opposed to a bug in the handler."""
    if not session.is_closed:
        return False
    if isinstance(exc, _CLOSED_ERRORS):
        return True
    return isinstance(exc, WebTransportError) and session.close_cause in _PEER_CAUSES
