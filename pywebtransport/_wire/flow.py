"""Flow-control accounting (WebTransport draft-15 §5.4, modelled on RFC 9000 §4).

The same two classes count bytes (WT_MAX_DATA) and streams (WT_MAX_STREAMS): every
quantity is cumulative and every limit only grows.

Plain Python, one module for both ``_wire`` variants: its only caller is the pure-Python
session flow control (``_protocol/flow_control.py``), and most of a call's cost is the
Python call itself. When it had a Cython twin, compiling saved about 0.2 µs per 1200-byte
write-and-read step: well under 1% of a flow-controlled stream transfer.
"""

from __future__ import annotations

from pywebtransport._wire._varint_py import VARINT_MAX, as_varint
from pywebtransport.exceptions import FlowControlError

__all__ = ["ReceiveWindow", "SendCredit"]


class SendCredit:
    """What we may send: the peer's limit, and how much of it we used."""

    __slots__ = ("_limit", "_reported", "_used")

    def __init__(self, limit: int) -> None:
        """ValueError unless 0 <= limit <= 2**62-1 (TypeError if not an integer)."""
        self._limit = as_varint(limit, "limit")
        self._used = 0
        self._reported = -1

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def available(self) -> int:
        """limit - used (never negative)."""
        return self._limit - self._used

    def try_consume(self, amount: int) -> int:
        """Use up to ``amount``; returns how much was granted (0 when blocked)."""
        if type(amount) is not int or not 0 <= amount <= VARINT_MAX:  # checked without a call when plain
            amount = as_varint(amount, "amount")
        granted = min(amount, self._limit - self._used)
        self._used += granted
        return granted

    def release(self, amount: int) -> None:
        """Give back ``amount`` of what was used: bytes counted as sent that never reached the
        peer's count, as those a reset's final size leaves out (RFC 9000 §4.5). ValueError if
        more is given back than was used."""
        amount = as_varint(amount, "amount")
        if amount > self._used:
            raise ValueError(f"cannot release {amount}: only {self._used} used")
        self._used -= amount

    def update_limit(self, limit: int) -> bool:
        """Apply a new limit from the peer; returns True if it grew. Smaller values are
        ignored (limits only grow)."""
        value = as_varint(limit, "limit")
        if value <= self._limit:
            return False
        self._limit = value
        return True

    def blocked_at(self) -> int | None:
        """When everything is used and this limit was not reported yet, return the limit
        to put in a *_BLOCKED capsule (once per limit); otherwise None."""
        if self._used < self._limit or self._reported == self._limit:
            return None
        self._reported = self._limit
        return self._limit


class ReceiveWindow:
    """What the peer may send us: the limit we advertised, what arrived, what was consumed."""

    __slots__ = ("_auto_extend", "_consumed", "_limit", "_received", "_window")

    def __init__(self, initial: int, *, auto_extend: bool = True) -> None:
        """``initial`` is both the first advertised limit and the window size used to
        extend it. ValueError unless 0 <= initial <= 2**62-1."""
        self._limit = as_varint(initial, "initial")
        self._window = self._limit
        self._received = 0
        self._consumed = 0
        self._auto_extend = bool(auto_extend)

    @property
    def limit(self) -> int:
        """The highest limit advertised to the peer."""
        return self._limit

    @property
    def received(self) -> int:
        return self._received

    def on_receive(self, amount: int) -> None:
        """The peer sent ``amount`` more. FlowControlError (WT_FLOW_CONTROL_ERROR) if
        received would exceed limit; the counters are unchanged then."""
        if type(amount) is not int or not 0 <= amount <= VARINT_MAX:
            amount = as_varint(amount, "amount")
        total = self._received + amount
        if total > self._limit:
            raise FlowControlError(f"peer exceeded its credit: {total} > limit {self._limit}")
        self._received = total

    def on_consume(self, amount: int) -> int | None:
        """The application consumed ``amount``. With auto_extend, when less than half a
        window of credit remains (limit - consumed < window / 2) return the new limit
        consumed + window to advertise (and adopt it); otherwise None. ValueError if more
        is consumed than received."""
        if type(amount) is not int or not 0 <= amount <= VARINT_MAX:
            amount = as_varint(amount, "amount")
        if self._consumed + amount > self._received:
            raise ValueError(f"cannot consume {amount}: only {self._received - self._consumed} received and unread")
        self._consumed += amount
        if self._auto_extend and (self._limit - self._consumed) * 2 < self._window:
            new = min(self._consumed + self._window, VARINT_MAX)
            if new > self._limit:
                self._limit = new
                return new
        return None

    def grant(self, limit: int) -> int | None:
        """Raise the advertised limit by hand; returns it if it grew, None otherwise."""
        value = as_varint(limit, "limit")
        if value <= self._limit:
            return None
        self._limit = value
        return value
