"""Byte budgets shared by the engines of one server: how much all its connections together
may hold in buffers, so that many connections cannot add up to unbounded memory.

A :class:`ByteBudget` is a plain counter with a limit; each engine holds a
:class:`BudgetAccount` of it (what that engine took), so a closing connection returns
everything it held in one call. An engine that finds a budget spent asks to be told when
room frees (:meth:`ByteBudget.notify_when`): another engine's release calls it back, and
nothing polls. Sans-I/O like the rest of the engine: no clock, no awaits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_CONNECTION_SEND_BUFFER", "DEFAULT_SERVER_RECEIVE_BUFFER", "DEFAULT_SERVER_SEND_BUFFER",
           "BudgetAccount", "ByteBudget", "SharedBudgets"]

#: Unacknowledged bytes our application may have written on one connection's session streams
#: before its writers wait: four full stream windows (realtime traffic wants little queued).
DEFAULT_CONNECTION_SEND_BUFFER = 4 << 20
#: The same, summed over every connection of a server.
DEFAULT_SERVER_SEND_BUFFER = 256 << 20
#: Bytes a server holds for all its peers together in early streams and incomplete request
#: headers (each connection is bounded too: ``EngineConfig.max_buffered_bytes``).
DEFAULT_SERVER_RECEIVE_BUFFER = 32 << 20


class ByteBudget:
    """At most ``limit`` bytes held by all the accounts of this budget together.

    ``try_take`` is all-or-nothing and counts a refusal when the bytes do not fit (what
    arrives from a peer is refused); ``take`` always succeeds and may pass the limit (what
    our application already wrote is queued; its writers wait for room instead).
    """

    __slots__ = ("_waiters", "limit", "name", "peak", "refusals", "used")

    def __init__(self, limit: int, *, name: str = "budget") -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"{name}: the limit must be an int >= 1, got {limit!r}")
        self.limit = limit
        self.name = name
        self.used = 0
        #: The most ever held at once (for tests and diagnostics).
        self.peak = 0
        #: How many times ``try_take`` refused (something a peer sent was refused for it).
        self.refusals = 0
        self._waiters: dict[Callable[[], None], int] = {}

    @property
    def available(self) -> int:
        """Bytes that may still be taken (0 when the budget is spent or overdrawn)."""
        return max(0, self.limit - self.used)

    def try_take(self, amount: int) -> bool:
        """Take ``amount`` bytes if they fit (a zero amount fits while the budget is not
        spent); otherwise take nothing, count a refusal and return False."""
        if self.used + max(amount, 1) > self.limit:
            self.refusals += 1
            return False
        self._add(amount)
        return True

    def take(self, amount: int) -> None:
        """Take ``amount`` bytes whether or not they fit."""
        if amount > 0:  # _add, inlined: once per stream write
            used = self.used = self.used + amount
            if used > self.peak:
                self.peak = used

    def release(self, amount: int) -> None:
        """Give ``amount`` bytes back; waiters whose room is now there are called back."""
        if amount <= 0:
            return
        self.used = max(0, self.used - amount)
        if self._waiters:
            self._announce()

    def notify_when(self, at_least: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, as soon as at least ``at_least`` bytes are available (at
        once if they are). A callback registered again replaces its earlier wish."""
        if self.available >= at_least:
            self._waiters.pop(callback, None)
            callback()
            return
        self._waiters[callback] = at_least

    def cancel(self, callback: Callable[[], None]) -> None:
        """Forget a callback registered with ``notify_when`` (no-op if there is none)."""
        self._waiters.pop(callback, None)

    @property
    def waiting(self) -> int:
        """How many callbacks wait for room."""
        return len(self._waiters)

    def _add(self, amount: int) -> None:
        if amount > 0:
            self.used += amount
            if self.used > self.peak:
                self.peak = self.used

    def _announce(self) -> None:
        available = self.available
        ready = [callback for callback, at_least in self._waiters.items() if available >= at_least]
        for callback in ready:
            self._waiters.pop(callback, None)
        for callback in ready:
            callback()

    def __repr__(self) -> str:
        return f"<ByteBudget {self.name}: {self.used}/{self.limit} (peak {self.peak}, refusals {self.refusals})>"


class BudgetAccount:
    """What one engine holds of a :class:`ByteBudget` (or of none: then only counted).

    Every take and release goes through here, so ``close()`` can give back all of it when the
    connection ends, and releasing more than was taken is impossible.
    """

    __slots__ = ("_closed", "budget", "held", "refusals")

    def __init__(self, budget: ByteBudget | None) -> None:
        self.budget = budget
        self.held = 0
        #: How many times this engine was refused by the shared budget.
        self.refusals = 0
        self._closed = False

    def try_take(self, amount: int) -> bool:
        """Take ``amount`` if the shared budget has room (always, without a budget)."""
        if self._closed:
            return False
        if self.budget is not None and not self.budget.try_take(amount):
            self.refusals += 1
            return False
        self.held += max(0, amount)
        return True

    def take(self, amount: int) -> None:
        """Take ``amount`` even past the budget's limit (see :meth:`ByteBudget.take`)."""
        if self._closed or amount <= 0:
            return
        self.held += amount
        if self.budget is not None:
            self.budget.take(amount)

    def release(self, amount: int) -> None:
        amount = min(amount, self.held)
        if amount <= 0:
            return
        self.held -= amount
        if self.budget is not None:
            self.budget.release(amount)

    def set_held(self, amount: int) -> None:
        """Make the account hold exactly ``amount`` (taking past the limit if it grows)."""
        if amount > self.held:
            self.take(amount - self.held)
        else:
            self.release(self.held - amount)

    def close(self) -> None:
        """Give everything back; later takes are refused and releases are no-ops."""
        self.release(self.held)
        self._closed = True


@dataclass(frozen=True, slots=True)
class SharedBudgets:
    """The budgets a server hands to each of its connections' engines.

    ``send``: bytes our application wrote on session streams that the peers have not
    acknowledged yet (or, with qh3, that are not sent yet), all connections together.
    ``receive``: bytes held for peers before anything can consume them, all connections
    together: streams waiting for their session (draft-15 §4.6) and request streams whose
    header block is not complete.
    """

    send: ByteBudget | None = None
    receive: ByteBudget | None = None

    @classmethod
    def of(cls, *, send: int | None = DEFAULT_SERVER_SEND_BUFFER,
           receive: int | None = DEFAULT_SERVER_RECEIVE_BUFFER) -> SharedBudgets:
        """Fresh budgets with these limits (None: no budget of that kind)."""
        return cls(send=None if send is None else ByteBudget(send, name="server send buffer"),
                   receive=None if receive is None else ByteBudget(receive, name="server receive buffer"))
