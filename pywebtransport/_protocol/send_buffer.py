"""The bound on what one connection holds for sending: bytes our application wrote on its
session streams that QUIC has not finished with (unacknowledged with aioquic, unsent with
qh3) plus those waiting in the engine for session credit.

Each stream is bounded by its own drain high-water mark; this bounds their sum, per
connection (``EngineConfig.max_send_buffer``) and, through a shared
:class:`~pywebtransport._protocol.budget.ByteBudget`, per server. Writes are never refused
here (``write()`` queues, as documented); writers wait for :meth:`SendBufferBound.room`
instead, and once it is 0 it stays 0 until an eighth of the bound is free again, so a
crowd of blocked writers is woken once per eighth of the bound, not once per acknowledgement
(an eighth, not half: streams whose peer stopped reading hold their bytes, and must not keep
the others waiting until they are half gone).
"""

from __future__ import annotations

from collections.abc import Callable

from pywebtransport._protocol.budget import BudgetAccount

__all__ = ["SendBufferBound"]


class SendBufferBound:
    """Bytes held for sending on one connection, stream by stream, and the room left."""

    __slots__ = ("_account", "_blocked", "_by_stream", "_measure", "held", "limit", "peak")

    def __init__(self, limit: int, account: BudgetAccount, measure: Callable[[int], int]) -> None:
        if limit < 1:
            raise ValueError(f"max_send_buffer must be >= 1, got {limit!r}")
        self.limit = limit
        self._account = account
        #: Bytes a stream holds now (its engine-pending bytes plus what QUIC holds).
        self._measure = measure
        #: Streams holding bytes -> what they held when last measured (or written since).
        self._by_stream: dict[int, int] = {}
        self.held = 0
        #: The most this connection ever held at once (tests and diagnostics).
        self.peak = 0
        self._blocked = False

    @property
    def resume_at(self) -> int:
        """Room needed before blocked writers are told to go on: an eighth of the smaller bound."""
        budget = self._account.budget
        smallest = self.limit if budget is None else min(self.limit, budget.limit)
        return max(1, smallest // 8)

    @property
    def budget_short(self) -> bool:
        """Whether the shared budget, not this connection, is what leaves too little room."""
        budget = self._account.budget
        return budget is not None and budget.available < self.resume_at

    def room(self) -> int:
        """Bytes writers may still add before they must wait (0: wait for an announcement)."""
        room = self.limit - self.held
        budget = self._account.budget
        if budget is not None:
            room = min(room, budget.available)
        if room <= 0:
            self._blocked = True
            return 0
        if self._blocked:
            if room < self.resume_at:
                return 0
            self._blocked = False
        return room

    def wrote(self, stream_id: int, amount: int) -> None:
        """``amount`` bytes were just queued on ``stream_id`` (they are held until measured
        otherwise)."""
        if amount <= 0:
            return
        by_stream = self._by_stream
        by_stream[stream_id] = by_stream.get(stream_id, 0) + amount
        # _set_held(held + amount) without its calls (per write): the account holds what
        # this bound holds, so it grows by the same amount.
        held = self.held = self.held + amount
        if held > self.peak:
            self.peak = held
        self._account.take(amount)

    def refresh_stream(self, stream_id: int) -> None:
        """Measure one stream again (after a reset dropped its bytes, say)."""
        before = self._by_stream.get(stream_id)
        if before is None:
            return
        now = self._measure(stream_id)
        if now:
            self._by_stream[stream_id] = now
        else:
            del self._by_stream[stream_id]
        if now != before:
            self._set_held(self.held + now - before)

    def refresh(self) -> None:
        """Measure every stream that held bytes (after acknowledgements arrived);
        O(streams holding bytes), and streams found empty are dropped from the watch."""
        if not self._by_stream:
            return
        total = 0
        measure = self._measure
        for stream_id in list(self._by_stream):
            now = measure(stream_id)
            if now:
                self._by_stream[stream_id] = now
                total += now
            else:
                del self._by_stream[stream_id]
        if total != self.held:
            self._set_held(total)

    def close(self) -> None:
        """The connection is over: forget every stream and give the budget back."""
        self._by_stream.clear()
        self.held = 0
        self._account.close()

    def _set_held(self, held: int) -> None:
        self.held = held
        if held > self.peak:
            self.peak = held
        self._account.set_held(held)
