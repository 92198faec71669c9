"""Flow-control accounting, pure Python twin of ``flow.pyx`` (see ``flow.pyi``)."""

from __future__ import annotations

from pywebtransport.exceptions import FlowControlError

__all__ = ["FlowControlError", "ReceiveWindow", "SendCredit"]

_MAX = (1 << 62) - 1


def _check(name: str, value: int) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0 or value > _MAX:
        raise ValueError(f"{name} must be in [0, 2**62-1], got {value}")
    return value


class SendCredit:
    """What we may send: the peer's limit and how much of it we used."""

    __slots__ = ("_limit", "_reported", "_used")

    def __init__(self, limit: int) -> None:
        self._limit = _check("limit", limit)
        self._used = 0
        self._reported = -1

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def used(self) -> int:
        return self._used

    @property
    def available(self) -> int:
        return self._limit - self._used

    def consume(self, amount: int) -> None:
        _check("amount", amount)
        if amount > self._limit - self._used:
            raise ValueError(f"cannot consume {amount}: only {self._limit - self._used} of credit left")
        self._used += amount

    def try_consume(self, amount: int) -> int:
        _check("amount", amount)
        granted = min(amount, self._limit - self._used)
        self._used += granted
        return granted

    def update_limit(self, limit: int) -> bool:
        _check("limit", limit)
        if limit <= self._limit:
            return False
        self._limit = limit
        return True

    def blocked_at(self) -> int | None:
        if self._used < self._limit or self._reported == self._limit:
            return None
        self._reported = self._limit
        return self._limit


class ReceiveWindow:
    """What the peer may send us: the advertised limit, what arrived, what was consumed."""

    __slots__ = ("_auto_extend", "_consumed", "_limit", "_received", "_window")

    def __init__(self, initial: int, *, auto_extend: bool = True) -> None:
        self._limit = _check("initial", initial)
        self._window = initial
        self._received = 0
        self._consumed = 0
        self._auto_extend = bool(auto_extend)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def received(self) -> int:
        return self._received

    @property
    def consumed(self) -> int:
        return self._consumed

    @property
    def window(self) -> int:
        return self._window

    @property
    def auto_extend(self) -> bool:
        return self._auto_extend

    def on_receive(self, amount: int) -> None:
        _check("amount", amount)
        if self._received + amount > self._limit:
            raise FlowControlError(f"peer exceeded its credit: {self._received + amount} > limit {self._limit}")
        self._received += amount

    def on_consume(self, amount: int) -> int | None:
        _check("amount", amount)
        if self._consumed + amount > self._received:
            raise ValueError(f"cannot consume {amount}: only {self._received - self._consumed} received and unread")
        self._consumed += amount
        if self._auto_extend and (self._limit - self._consumed) * 2 < self._window:
            new = min(self._consumed + self._window, _MAX)
            if new > self._limit:
                self._limit = new
                return new
        return None

    def grant(self, limit: int) -> int | None:
        _check("limit", limit)
        if limit <= self._limit:
            return None
        self._limit = limit
        return limit
