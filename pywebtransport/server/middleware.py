"""Checks run on each session request before it is accepted.

A middleware is ``async (request) -> None | int``: None lets the request through, an int
rejects it with that HTTP status (300-599, ``server.core.REJECTION_STATUSES``). Raising
:class:`Reject` does the same. Any other answer (a bool, a str, a status outside that range)
is a bug in the middleware: it is logged and the request is rejected with 500.
"""

from __future__ import annotations

import inspect
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pywebtransport.server.core import REJECTION_STATUSES, is_rejection_status
from pywebtransport.session import WebTransportSession
from pywebtransport.types import Address, Headers

__all__ = ["HeaderAuth", "Middleware", "OriginAllowList", "RateLimit", "Reject", "SessionRequest"]


@dataclass(slots=True)
class SessionRequest:
    """What a middleware sees: the requested session, its path parameters and the client."""

    session: WebTransportSession
    path: str
    headers: Headers
    remote_address: Address | None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str | None:
        return self.headers.get("origin")


class Reject(Exception):
    """Raised by a middleware to refuse the request with ``status`` (an int in 300-599;
    ValueError at once for anything else)."""

    def __init__(self, status: int, reason: str = "") -> None:
        if not is_rejection_status(status):
            raise ValueError(f"Reject needs an int HTTP status in {REJECTION_STATUSES.start}-"
                             f"{REJECTION_STATUSES.stop - 1}, got {status!r}")
        super().__init__(reason or f"rejected with {status}")
        self.status = status


Middleware = Callable[[SessionRequest], Awaitable["int | None"]]


class OriginAllowList:
    """403 unless the request's ``origin`` header is one of ``origins`` ("*" allows any)."""

    def __init__(self, origins: list[str]) -> None:
        self._origins = {o.rstrip("/") for o in origins}

    async def __call__(self, request: SessionRequest) -> int | None:
        if "*" in self._origins:
            return None
        origin = (request.origin or "").rstrip("/")
        return None if origin in self._origins else 403


class HeaderAuth:
    """401 when ``header`` is missing, 403 when ``validator(value)`` says no (sync or async)."""

    def __init__(self, header: str, validator: Callable[[str], bool | Awaitable[bool]]) -> None:
        self._header = header.lower()
        self._validator = validator

    async def __call__(self, request: SessionRequest) -> int | None:
        value = request.headers.get(self._header)
        if value is None:
            return 401
        verdict = self._validator(value)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return None if verdict else 403


class RateLimit:
    """429 when one client address asks for more than ``max_sessions`` sessions within
    ``per_seconds``. Memory is bounded: at most ``max_addresses`` addresses are tracked
    (the least recently seen are forgotten first)."""

    def __init__(self, max_sessions: int, per_seconds: float, *, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_sessions < 1 or per_seconds <= 0 or max_addresses < 1:
            raise ValueError("RateLimit needs max_sessions >= 1, per_seconds > 0 and max_addresses >= 1")
        self._max = max_sessions
        self._window = per_seconds
        self._max_addresses = max_addresses
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    async def __call__(self, request: SessionRequest) -> int | None:
        address = request.remote_address[0] if request.remote_address else "?"
        now = self._clock()
        times = self._seen.pop(address, None) or deque()
        while times and now - times[0] >= self._window:
            times.popleft()
        self._seen[address] = times
        while len(self._seen) > self._max_addresses:
            self._seen.popitem(last=False)
        if len(times) >= self._max:
            return 429
        times.append(now)
        return None

    @property
    def tracked_addresses(self) -> int:
        return len(self._seen)
