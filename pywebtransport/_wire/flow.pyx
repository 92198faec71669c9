# cython: language_level=3
"""Flow-control accounting, compiled (see ``flow.pyi``; twin: ``_flow_py.py``)."""

from pywebtransport.exceptions import FlowControlError

__all__ = ["FlowControlError", "ReceiveWindow", "SendCredit"]

cdef unsigned long long _MAX = (1ULL << 62) - 1


cdef unsigned long long _check(str name, object value) except? 0xFFFFFFFFFFFFFFFF:
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0 or value > _MAX:
        raise ValueError(f"{name} must be in [0, 2**62-1], got {value}")
    return <unsigned long long>value


cdef class SendCredit:
    """What we may send: the peer's limit and how much of it we used."""

    cdef unsigned long long _limit
    cdef unsigned long long _used
    cdef long long _reported

    def __init__(self, limit):
        self._limit = _check("limit", limit)
        self._used = 0
        self._reported = -1

    @property
    def limit(self):
        return self._limit

    @property
    def used(self):
        return self._used

    @property
    def available(self):
        return self._limit - self._used

    def consume(self, amount):
        cdef unsigned long long n = _check("amount", amount)
        if n > self._limit - self._used:
            raise ValueError(f"cannot consume {amount}: only {self._limit - self._used} of credit left")
        self._used += n

    def try_consume(self, amount):
        cdef unsigned long long n = _check("amount", amount)
        cdef unsigned long long left = self._limit - self._used
        if n > left:
            n = left
        self._used += n
        return n

    def update_limit(self, limit):
        cdef unsigned long long value = _check("limit", limit)
        if value <= self._limit:
            return False
        self._limit = value
        return True

    def blocked_at(self):
        if self._used < self._limit or self._reported == <long long>self._limit:
            return None
        self._reported = <long long>self._limit
        return self._limit


cdef class ReceiveWindow:
    """What the peer may send us: the advertised limit, what arrived, what was consumed."""

    cdef unsigned long long _limit
    cdef unsigned long long _window
    cdef unsigned long long _received
    cdef unsigned long long _consumed
    cdef bint _auto_extend

    def __init__(self, initial, *, auto_extend=True):
        self._limit = _check("initial", initial)
        self._window = self._limit
        self._received = 0
        self._consumed = 0
        self._auto_extend = bool(auto_extend)

    @property
    def limit(self):
        return self._limit

    @property
    def received(self):
        return self._received

    @property
    def consumed(self):
        return self._consumed

    @property
    def window(self):
        return self._window

    @property
    def auto_extend(self):
        return self._auto_extend

    def on_receive(self, amount):
        cdef unsigned long long n = _check("amount", amount)
        if self._received + n > self._limit:
            raise FlowControlError(f"peer exceeded its credit: {self._received + n} > limit {self._limit}")
        self._received += n

    def on_consume(self, amount):
        cdef unsigned long long n = _check("amount", amount)
        cdef unsigned long long new
        if self._consumed + n > self._received:
            raise ValueError(f"cannot consume {amount}: only {self._received - self._consumed} received and unread")
        self._consumed += n
        if self._auto_extend and (self._limit - self._consumed) * 2 < self._window:
            new = self._consumed + self._window
            if new > _MAX:
                new = _MAX
            if new > self._limit:
                self._limit = new
                return new
        return None

    def grant(self, limit):
        cdef unsigned long long value = _check("limit", limit)
        if value <= self._limit:
            return None
        self._limit = value
        return value
