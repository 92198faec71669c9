"""qh3 stream credit that follows the application: read-driven windows, stream-count limits.

qh3 raises a stream's receive window as data *arrives* and doubles the MAX_STREAMS it
grants once the peer used half; neither bounds a peer that a slow application cannot keep
up with. The pieces here make both follow the application instead (see ``quic_qh3.py``'s
docstring): a ``QuicStream`` subclass whose window grows only up to *consumed + window*,
a MAX_STREAMS limit raised only as the peer's streams finish, and qh3's set of discarded
streams that hands each finished peer stream's slot back. ``Qh3Connection`` installs them.
"""

from __future__ import annotations

import operator
from typing import Any

from qh3.quic.stream import QuicStream

__all__: list[str] = []

#: MAX_STREAMS of each kind granted in the transport parameters (aioquic's fixed value).
_INITIAL_MAX_STREAMS = 128

#: The slot descriptor behind ``QuicStream.max_stream_data_local`` (the window we police).
_WINDOW_SLOT: Any = QuicStream.__dict__["max_stream_data_local"]


def _keep_window_unless_lowered(stream: QuicStream, value: int) -> None:
    # qh3 raises the window as data arrives and doubles it on STREAM_DATA_BLOCKED: both are
    # refused. Only Qh3Connection.consume_stream_data raises it, through the slot itself.
    if value <= _WINDOW_SLOT.__get__(stream, QuicStream):
        _WINDOW_SLOT.__set__(stream, value)


class ReadDrivenQuicStream(QuicStream):
    """A QuicStream (same layout, so qh3's streams are switched to it on creation) whose
    receive window qh3 itself can no longer raise: it grows only by read-driven grants.

    One class for every connection: a class made per connection cost about 50 us to build
    and left CPython's attribute caches cold for each new one.
    """

    __slots__ = ()
    # The getter is the slot's own (C, no Python frame): qh3 reads the window per stream per packet.
    max_stream_data_local = property(_WINDOW_SLOT.__get__, _keep_window_unless_lowered)


class _StreamCountLimit:
    """The MAX_STREAMS we grant of one kind, raised only as the peer's streams finish (as
    aioquic does), by ``grant``. Same fields as qh3's ``Limit``.

    Finished streams are handed back in batches, by aioquic's rule: the slots wait in
    ``pending`` until the peer has fewer streams left to open than they would grant. qh3
    writes a MAX_STREAMS frame whenever ``value`` moved, so granting each slot as it came
    back cost a frame per stream, and the packet (and the peer's ACK) carrying it.

    qh3 doubles a limit in every packet it builds once ``used * 2 > value``, which bounds
    nothing. ``used`` reads as 0 to qh3, so that raise never happens, while ``value`` stays a
    plain attribute: qh3 reads it several times per packet, and a property there cost a
    Python call each time (about 40 per new-stream echo). The real count is ``peer_streams``.
    """

    __slots__ = ("_zero", "frame_type", "name", "peer_streams", "pending", "sent", "value")

    def __init__(self, limit: Any, initial: int) -> None:
        self.frame_type: int = limit.frame_type
        self.name: str = limit.name
        self.sent: int = initial
        self.value: int = initial
        self.peer_streams: int = limit.used
        self.pending = 0
        self._zero = 0

    def _record_used(self, count: int) -> None:
        # qh3 writes the count of every stream the peer opens when it exceeds ``used``, which
        # reads as 0: a lower stream arriving late (its first packet was lost) comes too.
        if count > self.peer_streams:
            self.peer_streams = count
        if self.pending:
            self._release_if_due()

    #: Reads as 0 (through a C getter: qh3 reads it per limit per packet), so that qh3's
    #: doubling rule (used * 2 > value) never fires; what qh3 writes is kept in ``peer_streams``.
    used = property(operator.attrgetter("_zero"), _record_used)

    def grant(self) -> None:
        """One more stream of this kind may be opened by the peer (sent with the next batch)."""
        self.pending += 1
        self._release_if_due()

    def _release_if_due(self) -> None:
        # aioquic's batching rule: grant once the streams the peer may still open are
        # fewer than the slots waiting. A peer at its limit gets its first slot back at once.
        if self.value - self.peer_streams < self.pending:
            self.value += self.pending
            self.pending = 0


class _FinishedStreams(set[int]):
    """qh3's set of discarded stream ids, which also returns a finished peer stream's slot."""

    def __init__(self, existing: set[int], on_finished: Any) -> None:
        super().__init__(existing)
        self._on_finished = on_finished

    def add(self, stream_id: int) -> None:
        if stream_id not in self:
            super().add(stream_id)
            self._on_finished(stream_id)

