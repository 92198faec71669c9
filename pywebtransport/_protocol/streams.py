"""Every QUIC stream the engine tracks: what it carries, and forgetting it once it is done.

A stream's record lives from its first byte (or our open) until both directions are over.
Then it is *finished*: removed from every index at once, and its record dropped as soon as
aioquic has discarded the QUIC stream too (aioquic then drops late frames for it itself),
so nothing a stream leaves behind outlives it: no tombstones, no per-stream counters.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final, Protocol

from pywebtransport._protocol.budget import BudgetAccount
from pywebtransport._wire import capsules, frames

__all__ = [
    "KIND_CONNECT", "KIND_CONTROL", "KIND_FINISHED", "KIND_PENDING_BIDI", "KIND_PENDING_UNI",
    "KIND_QPACK_DECODER", "KIND_QPACK_ENCODER", "KIND_REQUEST", "KIND_WEBTRANSPORT", "PendingBytes",
    "StreamKind", "StreamRecord", "StreamTable"
]


class StreamKind(enum.Enum):
    """What a stream carries (RFC 9114 §6, draft-15 §4.2-4.3)."""

    PENDING_UNI = "pending-uni"  # a peer's unidirectional stream whose type is not read yet
    PENDING_BIDI = "pending-bidi"  # a peer's bidirectional stream whose first frame is not read yet
    CONTROL = "control"
    QPACK_ENCODER = "qpack-encoder"
    QPACK_DECODER = "qpack-decoder"
    REQUEST = "request"  # server: a request stream before it became a session
    CONNECT = "connect"  # a session's CONNECT stream
    WEBTRANSPORT = "webtransport"
    FINISHED = "finished"  # done with; late frames are dropped until aioquic discards it


CRITICAL_KINDS = frozenset({StreamKind.CONTROL, StreamKind.QPACK_ENCODER, StreamKind.QPACK_DECODER})

#: The kinds as module names, for the engine's per-packet code. On Python 3.10 and 3.11
#: reading ``StreamKind.X`` goes through ``EnumType.__getattr__`` (about 100 ns, a module
#: global about 10; 3.12 made it a plain attribute load), and a packet compares a stream's
#: kind several times.
KIND_PENDING_UNI: Final = StreamKind.PENDING_UNI
KIND_PENDING_BIDI: Final = StreamKind.PENDING_BIDI
KIND_CONTROL: Final = StreamKind.CONTROL
KIND_QPACK_ENCODER: Final = StreamKind.QPACK_ENCODER
KIND_QPACK_DECODER: Final = StreamKind.QPACK_DECODER
KIND_REQUEST: Final = StreamKind.REQUEST
KIND_CONNECT: Final = StreamKind.CONNECT
KIND_WEBTRANSPORT: Final = StreamKind.WEBTRANSPORT
KIND_FINISHED: Final = StreamKind.FINISHED


class PendingBytes:
    """Bytes waiting for session credit: appended whole, taken from the front in grants,
    without moving what is left (a deque of chunks and an offset into the first).

    Every stream record has one and most never hold a byte, so the deque (~0.6 KiB) is made
    on the first append and dropped when the bytes are gone."""

    __slots__ = ("_chunks", "_offset", "size")

    def __init__(self) -> None:
        self._chunks: deque[bytes] | None = None
        self._offset = 0
        #: Bytes held (read on every write and send: an attribute, not a ``len()`` call).
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes) -> None:
        if data:
            if self._chunks is None:
                self._chunks = deque()
            self._chunks.append(data)
            self.size += len(data)

    def take(self, n: int) -> bytes:
        """Remove and return up to ``n`` bytes from the front."""
        chunks = self._chunks
        want = min(n, self.size)
        if chunks is None or want <= 0:
            return b""
        parts: list[bytes] = []
        while want > 0:
            head = chunks[0]
            end = min(len(head), self._offset + want)
            parts.append(head[self._offset:end])
            want -= end - self._offset
            if end == len(head):
                chunks.popleft()
                self._offset = 0
            else:
                self._offset = end
        taken = parts[0] if len(parts) == 1 else b"".join(parts)
        self.size -= len(taken)
        if not chunks:
            self._chunks = None
        return taken

    def clear(self) -> int:
        """Drop everything; returns how many bytes were dropped."""
        dropped = self.size
        self._chunks = None
        self._offset = self.size = 0
        return dropped


@dataclass(slots=True, eq=False)
class StreamRecord:
    """The engine's state of one QUIC stream."""

    stream_id: int
    kind: StreamKind
    is_unidirectional: bool
    local: bool
    session_id: int = -1
    preamble: bytearray = field(default_factory=bytearray)
    parser: frames.FrameParser | None = None
    capsules: capsules.CapsuleParser | None = None
    headers_done: bool = False
    send_closed: bool = False
    recv_closed: bool = False
    #: Bytes waiting for session data credit, and whether FIN follows them.
    pending: PendingBytes = field(default_factory=PendingBytes)
    pending_fin: bool = False
    #: An early stream (its session is not established yet): what arrived so far, and when.
    #: One growable buffer, not a list of chunks: a peer cutting its payload into 1-byte
    #: STREAM frames must not make each counted byte cost dozens in objects (draft-15 §4.6).
    early: bytearray | None = None
    early_bytes: int = 0
    early_fin: bool = False
    early_since: float = 0.0
    #: The HTTP/3 code of a STOP_SENDING that came while the stream was early: reported once
    #: the stream is announced (no event may name a stream before it).
    early_stop: int | None = None
    #: Bytes of an incomplete request header block held for this stream (charged to the
    #: receive budget, as ``early_bytes`` are).
    held_request_bytes: int = 0
    #: Whether the stream carried session payload (its bytes count against session credit).
    carries_payload: bool = False


class QuicStreams(Protocol):
    """What the table asks of the QUIC shim."""

    def has_stream(self, stream_id: int) -> bool: ...
    def forget_stream(self, stream_id: int) -> None: ...


class StreamTable:
    """Stream records by id, with the indexes the engine needs kept in step (no scans)."""

    def __init__(self, quic: QuicStreams, *, receive: BudgetAccount | None = None) -> None:
        self._quic = quic
        #: The engine's share of the server's receive budget: early bytes and held request
        #: bytes are taken from it as they arrive and returned when the stream lets go of them.
        self.receive = receive if receive is not None else BudgetAccount(None)
        self._records: dict[int, StreamRecord] = {}
        #: The record of a stream id, or None: the dict's own ``get``, with no Python frame
        #: of ours around it (the engine looks a stream up several times per packet).
        self.get: Callable[[int], StreamRecord | None] = self._records.get
        #: Session id -> ids of its open WebTransport streams.
        self._by_session: dict[int, set[int]] = {}
        #: Session id -> ids of streams waiting for it to be established.
        self._early: dict[int, set[int]] = {}
        self.early_count = 0
        self.early_bytes = 0
        #: Finished streams aioquic still holds; their records go once it discards them.
        self._finished: set[int] = set()
        self._sweep_at = 64

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[StreamRecord]:
        return iter(list(self._records.values()))

    def add(self, record: StreamRecord) -> StreamRecord:
        self._records[record.stream_id] = record
        return record

    # -- session membership
    def attach(self, record: StreamRecord, session_id: int) -> None:
        """The stream now belongs to an established session."""
        record.kind = KIND_WEBTRANSPORT
        record.session_id = session_id
        record.carries_payload = True
        self._by_session.setdefault(session_id, set()).add(record.stream_id)

    def session_stream_ids(self, session_id: int) -> list[int]:
        return list(self._by_session.get(session_id, ()))

    def session_stream_count(self, session_id: int) -> int:
        return len(self._by_session.get(session_id, ()))

    # -- early streams (draft-15 §4.6)
    def hold_early(self, record: StreamRecord, session_id: int, now: float) -> None:
        record.kind = KIND_WEBTRANSPORT
        record.session_id = session_id
        record.carries_payload = True
        record.early = bytearray()
        record.early_since = now
        self._early.setdefault(session_id, set()).add(record.stream_id)
        self.early_count += 1

    def add_early_bytes(self, record: StreamRecord, data: bytes, fin: bool) -> bool:
        """Buffer bytes of an early stream; False (nothing kept) when the receive budget
        has no room for them."""
        assert record.early is not None
        if data and not self.receive.try_take(len(data)):
            return False
        record.early += data  # in place: memory follows the bytes counted, however they are cut
        record.early_bytes += len(data)
        record.early_fin = record.early_fin or fin
        self.early_bytes += len(data)
        return True

    def hold_request_bytes(self, record: StreamRecord, amount: int) -> bool:
        """Account for ``amount`` bytes of an incomplete header block held for ``record``;
        False (nothing changed) when the receive budget has no room for the growth."""
        grow = amount - record.held_request_bytes
        if grow > 0 and not self.receive.try_take(grow):
            return False
        if grow < 0:
            self.receive.release(-grow)
        record.held_request_bytes = amount
        return True

    def release_early(self, record: StreamRecord) -> tuple[bytes, bool]:
        """Stop holding an early stream; returns what it buffered (all of it, in arrival
        order, as one ``bytes``) and whether FIN came."""
        early, fin = record.early, record.early_fin
        self._drop_early(record)
        return (bytes(early) if early else b""), fin

    def early_ids(self, session_id: int) -> list[int]:
        return sorted(self._early.get(session_id, ()))

    def early_sessions(self) -> list[int]:
        return list(self._early)

    def oldest_early(self) -> float | None:
        """When the longest-waiting early stream arrived (None when there is none)."""
        oldest: float | None = None
        for ids in self._early.values():
            for stream_id in ids:
                since = self._records[stream_id].early_since
                oldest = since if oldest is None or since < oldest else oldest
        return oldest

    def _drop_early(self, record: StreamRecord) -> None:
        if record.early is None:
            return
        ids = self._early.get(record.session_id)
        if ids is not None:
            ids.discard(record.stream_id)
            if not ids:
                del self._early[record.session_id]
        self.early_count -= 1
        self.early_bytes -= record.early_bytes
        self.receive.release(record.early_bytes)
        record.early = None
        record.early_bytes = 0

    # -- the end
    def finish(self, record: StreamRecord) -> None:
        """Forget a stream everywhere; its record goes as soon as aioquic has let go too."""
        if record.kind is KIND_FINISHED:
            return
        if record.early is not None:
            self._drop_early(record)
        if record.held_request_bytes:
            self.receive.release(record.held_request_bytes)
            record.held_request_bytes = 0
        ids = self._by_session.get(record.session_id)
        if ids is not None:
            ids.discard(record.stream_id)
            if not ids:
                del self._by_session[record.session_id]
        record.kind = KIND_FINISHED
        record.parser = None
        record.capsules = None
        if record.preamble:  # typed streams emptied it already
            record.preamble = bytearray()
        if record.pending.size:
            record.pending.clear()
        self._quic.forget_stream(record.stream_id)
        if self._quic.has_stream(record.stream_id):
            self._finished.add(record.stream_id)
        else:
            del self._records[record.stream_id]

    def sweep(self, force: bool = False) -> None:
        """Drop the records of finished streams aioquic has discarded; amortised O(1)."""
        if not self._finished or (not force and len(self._finished) < self._sweep_at):
            return
        for stream_id in [sid for sid in self._finished if not self._quic.has_stream(sid)]:
            self._finished.discard(stream_id)
            self._records.pop(stream_id, None)
        self._sweep_at = max(64, 2 * len(self._finished))

    def forget_session(self, session_id: int) -> None:
        self._by_session.pop(session_id, None)
