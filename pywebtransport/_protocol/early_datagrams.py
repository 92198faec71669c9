"""Datagrams that arrive for a session still being established, held until it is (draft-15
§4.6): a ring per session, bounded by count and bytes, and all of them together charged to
the connection's receive account (a server's shared budget). A client sending datagrams to
100 sessions it never let settle used to hold 7.4 MB per connection, charged nowhere."""

from __future__ import annotations

from pywebtransport._protocol.budget import BudgetAccount
from pywebtransport._wire import datagrams

__all__ = ["EarlyDatagrams"]


class EarlyDatagrams:
    """Per session, the datagrams that came before it was established."""

    __slots__ = ("_account", "_max_bytes", "_max_count", "_rings", "nbytes")

    def __init__(self, *, max_count: int, max_bytes: int, account: BudgetAccount) -> None:
        """``max_count`` and ``max_bytes`` bound each session's ring (its oldest are dropped
        first); ``account`` is charged for every byte held."""
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._account = account
        self._rings: dict[int, datagrams.DatagramRing] = {}
        #: Bytes held, over every session.
        self.nbytes = 0

    def push(self, session_id: int, payload: bytes, *, room: int) -> bool:
        """Hold ``payload`` for ``session_id``; False (it is dropped) when it is larger than
        ``room`` (what the connection may still hold) or the receive budget is spent. Older
        datagrams of the session may be dropped to make it fit its ring."""
        size = len(payload)
        if size > room or not self._account.try_take(size):
            return False
        ring = self._rings.get(session_id)
        if ring is None:
            ring = self._rings[session_id] = datagrams.DatagramRing(max_count=self._max_count,
                                                                    max_bytes=self._max_bytes)
        before = ring.nbytes
        ring.push(payload)
        kept = ring.nbytes - before  # the payload, less what the ring dropped for it
        self._account.release(size - kept)
        self.nbytes += kept
        return True

    def take(self, session_id: int) -> list[bytes]:
        """Every datagram held for ``session_id``, oldest first; none is held any more."""
        ring = self._rings.pop(session_id, None)
        if ring is None:
            return []
        self._forget(ring)
        out = []
        while (payload := ring.pop()) is not None:
            out.append(payload)
        return out

    def discard(self, session_id: int) -> None:
        """Drop what is held for ``session_id`` (its session ended before it was established)."""
        ring = self._rings.pop(session_id, None)
        if ring is not None:
            self._forget(ring)

    def _forget(self, ring: datagrams.DatagramRing) -> None:
        self.nbytes -= ring.nbytes
        self._account.release(ring.nbytes)
