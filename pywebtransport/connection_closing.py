"""How a connection ends: GOAWAY, a clean close of its sessions first, waiting for their
acknowledgement, the end of local state, and QUIC's closing period handed to the endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from pywebtransport import constants as c
from pywebtransport._addresses import format_address
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.settings import Dialect
from pywebtransport._waiters import wait_future
from pywebtransport.connection_core import ConnectionCore
from pywebtransport.events import EventType
from pywebtransport.exceptions import ConnectionError, HandshakeError
from pywebtransport.types import CloseCause, ConnectionState, SessionId, StreamId

__all__ = ["BROWSER_CLOSE_SETTLE", "CLOSE_CONFIRM_GRACE", "ConnectionClosing"]

#: The connection's logger (docs/debugging.md names it): every part of the class logs to it.
logger = logging.getLogger("pywebtransport.connection")

#: After a close capsule was acknowledged, how long a close waits at most for the peer's FIN
#: on the CONNECT stream (the sign its application read the close) before CONNECTION_CLOSE.
CLOSE_CONFIRM_GRACE = 0.25
#: After a browser confirmed a close, how long before CONNECTION_CLOSE may follow.
BROWSER_CLOSE_SETTLE = 0.1


class ConnectionClosing(ConnectionCore):
    """Closing and the closing period (a part of WebTransportConnection)."""

    def send_goaway(self) -> None:
        """Graceful shutdown: the peer may open no new sessions; current ones carry on."""
        if not self.is_closed:
            self._engine.send_goaway()
            self.process_engine_events()

    async def close(self, *, error_code: int = c.H3_NO_ERROR, reason: str = "") -> None:
        """Close every session cleanly, then the connection.

        Each open session first gets WT_CLOSE_SESSION (code 0) and a FIN, and the close waits,
        at most ``config.close_timeout``, for those to be acknowledged: a CONNECTION_CLOSE
        sent in the same flight overtakes them at the peer, which then reports a lost
        connection instead of a clean close. The close runs to its end even when the caller
        is cancelled, and every later call waits for the same close. It returns once the
        CONNECTION_CLOSE is sent; the endpoint answers the peer's late packets with it for
        QUIC's closing period (RFC 9000 §10.2.1, see ``wait_closing_period``).
        """
        task = self.start_close(error_code=error_code, reason=reason)
        if task is not None:
            await asyncio.shield(task)

    def start_close(self, *, error_code: int = c.H3_NO_ERROR, reason: str = "") -> asyncio.Task[None] | None:
        """Begin ``close()`` without waiting for it: the connection counts as closed at once
        (``is_closed``). Returns the close's task (None when the connection had ended already)."""
        if self._close_task is None:
            if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED):
                return None
            self._state = ConnectionState.CLOSING
            self._close_task = self._loop.create_task(self._close(error_code, reason),
                                                      name=f"pywebtransport-close-{self._connection_id}")
        return self._close_task

    async def wait_closing_period(self, *, timeout: float) -> bool:
        """After the close: wait, at most ``timeout`` seconds, until QUIC's closing or draining
        period (RFC 9000 §10.2, three PTOs) is over, during which the endpoint still answers
        the peer's late packets with our CONNECTION_CLOSE. A client connection's own socket
        is closed then, or at the timeout at the latest (False). Returns True at once for a
        server connection (its server waits for the shared socket as a whole) and False at
        once for a connection that is not closed yet.
        """
        if not self._owns_endpoint:
            return True
        if self._state not in (ConnectionState.CLOSED, ConnectionState.FAILED):
            return False
        try:
            quiet = await self._endpoint.wait_quiet(timeout)
        except asyncio.CancelledError:  # the loop is shutting down: do not leave the socket open
            self._endpoint.close()
            raise
        if not quiet:
            self._endpoint.close()
        return quiet

    async def _close(self, error_code: int, reason: str) -> None:
        if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED):
            return  # the connection ended (the peer's close, say) before this close began
        self._state = ConnectionState.CLOSING
        open_ids = [session.session_id for session in list(self._sessions.values()) if session.is_ready]
        now = time.monotonic()
        for session_id in open_ids:
            self._engine.close_session(session_id, 0, "", now=now)
        if open_ids:
            self._process_events()
        # The sessions just closed, and any closed a moment ago whose close has not left or
        # not been acknowledged yet (a client closes its connection when its last session
        # closes, and a paced or congested send can still hold that session's close).
        closing_ids = self._engine.unconfirmed_closes()
        if closing_ids:
            if open_ids:  # their WT_CLOSE_SESSION now, not a loop pass later
                self._endpoint.transmit(self)
            await self.wait_close_confirmed(closing_ids, timeout=self._config.close_timeout)
        # Put what is still queued on the wire first: once QUIC is closing it sends nothing
        # but CONNECTION_CLOSE. What went through a transmit pass already needs none.
        self._endpoint.transmit_if_pending(self)
        self._engine.close(error_code, reason, now=time.monotonic())
        self._process_events()
        self._endpoint.transmit(self)  # the CONNECTION_CLOSE itself
        # Nothing more will be said: local state goes now, and the endpoint keeps only what
        # the closing period needs (_retire).
        self._terminated(error_code, reason, False)

    async def wait_acknowledged(self, stream_ids: Iterable[StreamId], *, timeout: float) -> bool:
        """Wait until everything sent on ``stream_ids`` (FIN included) is acknowledged.

        Returns False when ``timeout`` seconds pass first or the connection ends; it is woken
        by acknowledgements, not by polling.
        """
        ids = tuple(stream_ids)
        engine = self._engine
        return await self._wait_until(lambda: all(engine.stream_send_acknowledged(sid) for sid in ids), timeout)

    async def wait_close_confirmed(self, session_ids: Iterable[SessionId], *, timeout: float) -> bool:
        """After closing sessions: wait until their WT_CLOSE_SESSION is acknowledged or the peer
        ended its side of the CONNECT stream (``session_close_settled``), then (at most
        ``CLOSE_CONFIRM_GRACE`` more) until the peer ended its side of each CONNECT stream.

        An acknowledgement says the bytes arrived, not that the peer's application read them:
        Chromium reported 'Connection lost' when CONNECTION_CLOSE followed right after. A peer
        that answers the close with its FIN has read it; one that never does costs the grace.
        """
        ids = tuple(session_ids)
        loop = self._loop
        deadline = loop.time() + timeout
        engine = self._engine
        if not await self._wait_until(lambda: all(engine.session_close_settled(sid) for sid in ids), timeout):
            return False
        grace = min(CLOSE_CONFIRM_GRACE, max(0.0, deadline - loop.time()))
        confirmed = await self._wait_until(lambda: all(engine.session_close_confirmed(sid) for sid in ids), grace)
        if confirmed and self._engine.dialect is Dialect.DRAFT02:
            # Browsers (draft-02) answer with their FIN from the network stack, before the page
            # has seen the close; a CONNECTION_CLOSE right behind it still surfaces there as
            # 'Connection lost' (Chromium 1-4 in 10 runs). A short settle time lets it through.
            await asyncio.sleep(min(BROWSER_CLOSE_SETTLE, max(0.0, deadline - loop.time())))
        return confirmed

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait, at most ``timeout`` s, until ``condition()`` holds; it is checked after every
        received datagram while someone waits (never polled on a timer)."""
        if condition():
            return True
        if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED) or timeout <= 0:
            return False
        waiter: asyncio.Future[None] = self._loop.create_future()
        entry = (condition, waiter)
        self._ack_waiters.append(entry)
        try:
            await wait_future(waiter, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            if entry in self._ack_waiters:
                self._ack_waiters.remove(entry)
        return condition()

    def _wake_ack_waiters(self, *, everyone: bool = False) -> None:
        for condition, waiter in list(self._ack_waiters):
            if not waiter.done() and (everyone or condition()):
                waiter.set_result(None)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def _abandon(self, reason: str) -> None:
        self._close_error = HandshakeError(reason)
        await self.close(error_code=c.H3_NO_ERROR, reason=reason)

    #: Set when the QUIC library raised on a datagram: nothing more is handed to it.
    _quic_failed = False

    def _fail_on_quic_error(self, exc: Exception) -> None:
        """The QUIC library raised while handling a datagram (its state is not to be
        trusted any more). Close with H3_INTERNAL_ERROR at once: a connect under way raises a
        ConnectionError naming the failure instead of waiting out its timeout."""
        if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED):
            return
        self._quic_failed = True
        logger.error("connection %s: the QUIC library failed on a datagram; closing", self._connection_id,
                     exc_info=exc)
        if self._close_error is None:
            self._close_error = ConnectionError(f"the QUIC library failed on a datagram from the peer: {exc!r}")
        try:
            self._engine.close(c.H3_INTERNAL_ERROR, "internal error", now=time.monotonic())
        except Exception:  # it may fail again; the connection ends here either way
            logger.debug("closing after the QUIC failure failed too", exc_info=True)
        self._loop.call_soon(self._terminated, c.H3_INTERNAL_ERROR, "internal error", False)

    def _drop_unauthenticated(self) -> None:
        """Server: nothing in the datagram that made this connection decrypted. An Initial is
        protected with keys anyone derives from its connection id (RFC 9001 §5.2), so a real
        client's always does; junk shaped like one would otherwise hold a connection, and a
        ``max_concurrent_handshakes`` slot, until ``connect_timeout``: a few dozen datagrams
        from spoofed sources every few seconds kept every client out. It is forgotten at once,
        with no word sent (an answer would go to a source address nothing vouches for)."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("connection %s: its first datagram, from %s, did not decrypt; dropped",
                         self._connection_id, format_address(*self._remote_address))
        self._terminated(c.H3_NO_ERROR, "its first datagram did not decrypt", False)

    def _terminated(self, error_code: int, reason: str, by_peer: bool) -> None:
        if self._state in (ConnectionState.CLOSED, ConnectionState.FAILED):
            return
        if self._keep_alive is not None:
            self._keep_alive.cancel()
        was_connected = self._established_at is not None
        self._state = ConnectionState.CLOSED if was_connected else ConnectionState.FAILED
        self._close_code = error_code
        self._close_reason = reason
        self._wake_ack_waiters(everyone=True)
        # The engine ended its sessions already; these are the ones it never knew as open.
        cause = CloseCause.PEER_CONNECTION_CLOSE if by_peer else CloseCause.CONNECTION_CLOSED
        for session_id in list(self._sessions):
            session = self._remove_session(session_id)
            if session is not None:
                session.handle_event(ev.SessionClosed(session_id, 0, reason or "connection closed", by_peer, cause))
        try:
            self._quic.end_qlog()  # a connection closed locally ends its trace itself
        except (OSError, ValueError):
            logger.exception("could not write the qlog file of connection %s", self._connection_id)
        self._closed.set()
        self._retire()
        event = EventType.CONNECTION_LOST if by_peer else EventType.CONNECTION_CLOSED
        self._events.emit_nowait(event, {"connection_id": self._connection_id, "error_code": error_code,
                                         "reason": reason})

    def _retire(self) -> None:
        """Hand the endpoint what QUIC's closing or draining period needs (RFC 9000 §10.2):
        our CONNECTION_CLOSE datagrams to answer late packets with, or none when the peer
        closed, and when the period ends. This connection is forgotten at once.

        A server keeps both periods: its shared socket must not hand a late packet to anyone
        else. A client's own socket stays open for the closing period only, after a
        handshake: while draining it would only drop packets (a closed port does the same),
        and a peer that never completed a handshake has no connection to be told about.
        """
        quic = self._quic
        if quic.close_pending:  # it goes out first (a pass for nothing otherwise: _close just sent it)
            self._endpoint.transmit(self)
        close_datagrams = quic.close_datagrams
        lingers = (quic.handshake_complete and bool(close_datagrams)) if self.is_client \
            else self._datagrams_from_peer > 0
        self._endpoint.retire(self, close_datagrams=close_datagrams,
                              until=quic.closing_deadline if lingers else None,
                              validated=self.is_client or quic.handshake_complete, peer=self._remote_address,
                              close_endpoint=self._owns_endpoint)

