"""Reconnecting sessions: ``async for session in client.sessions(url)`` with backoff and jitter.

After a connection loss (idle timeout, the peer's CONNECTION_CLOSE, a network error), a
server that announced it was going away (WT_DRAIN_SESSION, GOAWAY) or a session closed by the
server with an error code, the iterator waits an exponentially growing, jittered delay and
opens a new session, running an ``on_connect`` callback each time so the application can
restore its state. A clean close by the server (code 0, which is also what a plain
``server.close()`` sends) or a 4xx refusal ends the iteration instead; a server that will be
back should drain (``server.close(drain_timeout=...)``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import math
import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from pywebtransport import exceptions as errors
from pywebtransport.events import Event, EventType
from pywebtransport.exceptions import (
    CertificateError,
    ClientError,
    ConfigurationError,
    HandshakeError,
    SessionClosedError,
    SessionRejectedError,
)
from pywebtransport.session.session import WebTransportSession
from pywebtransport.types import CloseCause, Headers

if TYPE_CHECKING:
    from pywebtransport.client.client import WebTransportClient

__all__ = [
    "OnConnect",
    "ReconnectPolicy",
    "ReconnectingClient",
    "SessionEnd",
    "backoff_delay",
    "classify_session_end",
    "is_retryable_error",
]

logger = logging.getLogger(__name__)

#: Awaited with each newly opened session, before it is handed out, to restore state.
OnConnect = Callable[[WebTransportSession], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """How long to wait between connection attempts and when to give up.

    The delay before retry ``n`` is ``min(max_delay, initial_delay * factor ** (n - 1))``,
    reduced by up to ``jitter`` of itself at random; ``max_attempts`` bounds the attempts of
    one (re)connection (None: keep trying); ``connect_timeout`` bounds each attempt (None: the
    client's ``connect_timeout``).
    """

    initial_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.5
    max_attempts: int | None = None
    connect_timeout: float | None = None

    def __post_init__(self) -> None:
        problem = _backoff_problem(initial_delay=self.initial_delay, factor=self.factor, max_delay=self.max_delay,
                                   jitter=self.jitter)
        if problem:
            raise ConfigurationError(problem)
        if self.max_attempts is not None and (isinstance(self.max_attempts, bool) or self.max_attempts < 1):
            raise ConfigurationError(f"max_attempts must be None or >= 1, got {self.max_attempts!r}")
        if self.connect_timeout is not None and not self.connect_timeout > 0:
            raise ConfigurationError(f"connect_timeout must be None or > 0, got {self.connect_timeout!r}")

    def delay(self, retry: int, *, random: Callable[[], float] = _random.random) -> float:
        """The wait before retry number ``retry`` (1-based), drawing jitter from ``random()``."""
        return backoff_delay(retry, initial_delay=self.initial_delay, factor=self.factor,
                             max_delay=self.max_delay, jitter=self.jitter, rand=random())


def backoff_delay(retry: int, *, initial_delay: float, factor: float, max_delay: float, jitter: float,
                  rand: float) -> float:
    """Exponential backoff with jitter, as a pure function of the retry number and a draw in [0, 1).

    The exponential part is capped at ``max_delay``; jitter then takes off up to ``jitter``
    of it (``rand`` = 0 takes nothing off), so ``max_delay`` is a true upper bound and many
    clients dropped at once do not come back in lockstep.
    """
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, got {retry}")
    if not 0 <= rand <= 1:
        raise ValueError(f"rand must be in [0, 1], got {rand}")
    problem = _backoff_problem(initial_delay=initial_delay, factor=factor, max_delay=max_delay, jitter=jitter)
    if problem:
        raise ValueError(problem)
    if initial_delay == 0:  # zero whatever the retry: no 0 * inf once factor ** (retry - 1) overflows
        return 0.0
    try:
        # float(): a float power overflows at once, where an int factor would build a huge int.
        base = initial_delay * float(factor) ** (retry - 1)
    except OverflowError:  # beyond any float: max_delay caps it
        base = math.inf
    base = min(base, max_delay)
    if base == math.inf:  # an infinite max_delay: no fraction of it to take off (inf * 0 is NaN)
        return base
    return base * (1.0 - jitter * rand)


def _backoff_problem(*, initial_delay: float, factor: float, max_delay: float, jitter: float) -> str:
    """What is wrong with these backoff parameters, naming the field ("" if nothing): NaN
    anywhere, and an infinite factor (an initial_delay of 0 times it is NaN)."""
    if not initial_delay >= 0:
        return f"initial_delay must be >= 0, got {initial_delay!r}"
    if not 1 <= factor < math.inf:
        return f"factor must be a finite number >= 1, got {factor!r}"
    if not max_delay >= 0:
        return f"max_delay must be >= 0, got {max_delay!r}"
    if not 0 <= jitter <= 1:
        return f"jitter must be between 0 and 1, got {jitter!r}"
    return ""


class SessionEnd(str, Enum):
    """Why a session handed out by the iterator ended, as far as reconnecting is concerned."""

    #: The QUIC connection died under the session: idle timeout, the peer's CONNECTION_CLOSE,
    #: a network or transport error. Reconnect.
    CONNECTION_LOST = "connection_lost"
    #: The server said it was going away (WT_DRAIN_SESSION or GOAWAY) before the session ended,
    #: whoever closed it then. Reconnect.
    GOING_AWAY = "going_away"
    #: The server closed the session with a non-zero application error code. Reconnect.
    PEER_ERROR = "peer_error"
    #: The server closed the session cleanly (code 0). The iteration ends.
    PEER_CLOSED = "peer_closed"
    #: This side closed the session (``session.close()``, ``client.close()``). The iteration ends.
    LOCAL_CLOSED = "local_closed"

    @property
    def reconnects(self) -> bool:
        """Whether the iterator opens a new session after an end of this kind."""
        return self in (SessionEnd.CONNECTION_LOST, SessionEnd.GOING_AWAY, SessionEnd.PEER_ERROR)


def classify_session_end(*, error_code: int, cause: CloseCause, going_away: bool) -> SessionEnd:
    """Decide how a session ended from its ``close_cause`` (no inference from side effects).

    ``going_away`` says whether the server had sent WT_DRAIN_SESSION or GOAWAY, which ask
    the client to come back on a new connection.
    """
    if cause in (CloseCause.LOCAL_CLOSE, CloseCause.CONNECTION_CLOSED):
        return SessionEnd.GOING_AWAY if going_away else SessionEnd.LOCAL_CLOSED
    if cause in (CloseCause.PEER_CONNECTION_CLOSE, CloseCause.IDLE_TIMEOUT, CloseCause.CONNECTION_ERROR):
        return SessionEnd.CONNECTION_LOST
    if going_away:
        return SessionEnd.GOING_AWAY
    if cause is CloseCause.PEER_CLOSE and error_code == 0:
        return SessionEnd.PEER_CLOSED
    return SessionEnd.PEER_ERROR  # a non-zero code, a reset CONNECT stream, a session error or a refusal


def is_retryable_error(exc: BaseException) -> bool:
    """Whether a failed connection attempt may succeed if tried again.

    Network trouble (timeouts, OS errors, handshake failures other than TLS alerts, a session
    closed before it was ready) and refusals with 429, 5xx or no status at all are retryable;
    other 4xx refusals, certificate errors and anything unexpected are not.
    """
    if isinstance(exc, SessionRejectedError):
        status = exc.status_code
        return status == 0 or status == 429 or 500 <= status <= 599
    if isinstance(exc, CertificateError):
        return False
    if isinstance(exc, HandshakeError):  # a TLS alert will come again; anything else may not
        return exc.tls_alert is None
    if isinstance(exc, (errors.ConnectionError, SessionClosedError, OSError)):
        return True
    if isinstance(exc, (builtins.TimeoutError, asyncio.TimeoutError)):  # distinct classes before 3.11
        return True
    if isinstance(exc, ClientError):  # e.g. a failed DNS lookup, but not "the client is closed"
        return isinstance(exc.__cause__, OSError)
    return False


@dataclass(slots=True)
class _Watch:
    """What the iterator learns about its current session while the user holds it."""

    draining: bool = False
    end: SessionEnd | None = None
    error_code: int = 0
    reason: str = ""


class ReconnectingClient:
    """Hands out sessions to one URL, opening a new one whenever the connection is lost.

    Made by ``WebTransportClient.sessions(url)``; use ``async for session in ...``, optionally
    inside ``async with`` so that leaving the block (or being cancelled) closes the current
    session. Each session is handed out once ``on_connect`` has run on it; when the loop body
    asks for the next one, the iterator waits for the current session to end, then reconnects
    or stops (see :class:`SessionEnd`). A failed attempt that cannot succeed on retry, or the
    last attempt allowed by the policy, raises its error from the iterator.
    """

    def __init__(self, client: WebTransportClient, url: str, *, headers: Headers | None = None,
                 policy: ReconnectPolicy | None = None, on_connect: OnConnect | None = None,
                 random: Callable[[], float] = _random.random) -> None:
        self._client = client
        self._url = url
        self._headers = dict(headers) if headers is not None else None
        self._policy = policy or ReconnectPolicy()
        self._on_connect = on_connect
        self._random = random
        self._session: WebTransportSession | None = None
        self._watch = _Watch()
        self._started = False
        self._finished = False
        self._stopping = asyncio.Event()
        self._attempts = 0
        self._reconnects = 0
        self._last_error: BaseException | None = None
        self._last_end: SessionEnd | None = None

    # ------------------------------------------------------------------ state

    @property
    def url(self) -> str:
        return self._url

    @property
    def policy(self) -> ReconnectPolicy:
        return self._policy

    @property
    def session(self) -> WebTransportSession | None:
        """The session handed out last (None before the first, between a loss and the next, and at the end)."""
        return self._session

    @property
    def connected(self) -> bool:
        """Whether the current session is open."""
        return self._session is not None and not self._session.is_closed

    @property
    def attempts(self) -> int:
        """Connection attempts made for the current (or latest) connection, the successful one included."""
        return self._attempts

    @property
    def reconnects(self) -> int:
        """How many times a new session was opened after losing one."""
        return self._reconnects

    @property
    def last_error(self) -> BaseException | None:
        """The latest failure: a failed attempt's exception or a SessionClosedError for a lost session."""
        return self._last_error

    @property
    def last_end(self) -> SessionEnd | None:
        """How the latest session ended (None while it is open)."""
        return self._last_end

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> ReconnectingClient:
        return self

    async def __anext__(self) -> WebTransportSession:
        if self._finished:
            raise StopAsyncIteration
        try:
            if not self._started:
                self._started = True
                return await self._connect(reconnecting=False)
            session = self._session
            if session is not None and not session.is_closed:
                await session.wait_closed()
            end = self._session_end()
            self._session = None
            self._last_end = end
            if not end.reconnects or self._client.is_closed:
                self._finished = True
                raise StopAsyncIteration
            watch = self._watch
            self._last_error = SessionClosedError(f"session to {self._url} ended: {end.value}",
                                                  error_code=watch.error_code, reason=watch.reason)
            session = await self._connect(reconnecting=True)
            self._reconnects += 1
            return session
        except BaseException:  # StopAsyncIteration included: whatever ends the iteration closes the session
            self._finished = True
            await self._close_session()
            raise

    async def __aenter__(self) -> ReconnectingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def client_closed(self) -> None:
        """Internal (WebTransportClient.close): a backoff in progress ends now, and with it the
        iteration, instead of sleeping out its delay first."""
        self._stopping.set()

    async def aclose(self) -> None:
        """Stop: no more sessions are opened (a pending backoff ends early, an attempt under way is
        cancelled) and the current one is closed."""
        self._finished = True
        self._stopping.set()
        await self._close_session()

    # ------------------------------------------------------------------ internals

    async def _connect(self, *, reconnecting: bool) -> WebTransportSession:
        policy = self._policy
        self._attempts = 0
        while True:
            retry = self._attempts + 1 if reconnecting else self._attempts
            if retry:
                delay = policy.delay(retry, random=self._random)
                logger.info("reconnecting to %s: attempt %d in %.3fs", self._url, self._attempts + 1, delay)
                await self._pause(delay)
            self._stop_if_closed(reconnecting)
            self._attempts += 1
            try:
                session = await self._attempt(reconnecting)
            except Exception as exc:
                self._last_error = exc
                self._stop_if_closed(reconnecting)
                if not is_retryable_error(exc) or self._out_of_attempts():
                    raise
                logger.debug("attempt %d to %s failed: %s", self._attempts, self._url, exc)
                continue
            self._watch_session(session)  # from here on, a failure or cancellation closes it
            self._stop_if_closed(reconnecting)
            if self._on_connect is not None:
                try:
                    await self._on_connect(session)
                except Exception as exc:
                    if session.is_closed and self._session_end().reconnects and not self._out_of_attempts():
                        # The connection died while state was being restored: one more failed attempt.
                        self._last_error = exc
                        logger.debug("on_connect failed as the session to %s ended: %s", self._url, exc)
                        continue
                    raise
                self._stop_if_closed(reconnecting)
            self._last_end = None
            return session

    async def _attempt(self, reconnecting: bool) -> WebTransportSession:
        """One ``client.connect()``, cancelled (which closes its connection) as soon as aclose(),
        or client.close() under a reconnect, ends the iteration: nobody waits out its timeout.

        client.close() under the first attempt needs no cancelling: it closes the connection,
        and the connect fails at once with ClientError, which the iteration raises.
        """
        connecting = asyncio.ensure_future(self._client.connect(self._url, headers=self._headers,
                                                                timeout=self._policy.connect_timeout))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((connecting, stopping), return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done() and self._stops(reconnecting):
                connecting.cancel()
            await asyncio.wait((connecting,))
        finally:
            stopping.cancel()
            if not connecting.done():  # we were cancelled: so is the attempt, and it cleans up first
                connecting.cancel()
                await asyncio.wait((connecting,))
        if connecting.cancelled():
            raise StopAsyncIteration
        return connecting.result()  # a session that opened all the same is closed by the stop check after

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds of backoff, or less if aclose() is called meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    def _stop_if_closed(self, reconnecting: bool) -> None:
        """End the iteration if aclose() was called meanwhile, or the client closed under a reconnect."""
        if self._stops(reconnecting):
            raise StopAsyncIteration

    def _stops(self, reconnecting: bool) -> bool:
        """Whether the iteration is over: aclose() was called, or the client closed under a reconnect."""
        return self._finished or (reconnecting and self._client.is_closed)

    def _out_of_attempts(self) -> bool:
        limit = self._policy.max_attempts
        return limit is not None and self._attempts >= limit

    def _watch_session(self, session: WebTransportSession) -> None:
        """Record how ``session`` ends, at the moment it ends (the connection's state changes after)."""
        self._session = session
        watch = self._watch = _Watch()

        def on_draining(_event: Event) -> None:
            watch.draining = True

        def on_closed(_event: Event) -> None:
            self._settle(watch, session)

        if session.is_closed:  # it closed before it reached us
            self._settle(watch, session)
            return
        session.events.once(EventType.SESSION_DRAINING, on_draining)
        session.events.once(EventType.SESSION_CLOSED, on_closed)

    @staticmethod
    def _settle(watch: _Watch, session: WebTransportSession) -> None:
        engine = session.protocol_handler
        going_away = watch.draining or (engine is not None and engine.goaway_received is not None)
        cause = session.close_cause or CloseCause.CONNECTION_CLOSED
        watch.error_code = session.close_code or 0
        watch.reason = session.close_reason or ""
        watch.end = classify_session_end(error_code=watch.error_code, cause=cause, going_away=going_away)
        logger.debug("session %d ended (code %d, cause %s, going_away=%s): %s", session.session_id,
                     watch.error_code, cause.value, going_away, watch.end.value)

    def _session_end(self) -> SessionEnd:
        end = self._watch.end
        return SessionEnd.LOCAL_CLOSED if end is None else end

    async def _close_session(self) -> None:
        session = self._session
        if session is not None and not session.is_closed:
            await session.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "finished" if self._finished else "waiting"
        return f"<ReconnectingClient {self._url} {state} attempts={self._attempts} reconnects={self._reconnects}>"
