"""HTTP datagrams (RFC 9297 §2.1) and a bounded receive ring, pure twin of ``datagrams.pyx``."""

from __future__ import annotations

import sys
from collections import deque

from pywebtransport._wire._args_py import as_bytes, as_index, as_size
from pywebtransport._wire._varint_py import as_varint, encode, length, read
from pywebtransport._wire._varint_py import size as varint_size
from pywebtransport.exceptions import DatagramError, DatagramTooLargeError

__all__ = [
    "DatagramRing",
    "check_payload_size",
    "decode_datagram",
    "encode_datagram",
    "max_payload_size",
]

#: QUIC DATAGRAM frame type (1 byte, 0x31) + its length varint (2 bytes for any frame that fits
#: a packet, RFC 9221 §4).
_FRAME_OVERHEAD = 3


def _quarter(session_id: int) -> int:
    """The quarter stream id of a session: its id is a client bidi stream id (a varint, % 4 == 0)."""
    number = as_varint(session_id, "session_id")
    if number & 3:
        raise ValueError(f"session_id {number} is not a client-initiated bidirectional stream id")
    return number >> 2


def encode_datagram(session_id: int, payload: bytes | bytearray | memoryview) -> bytes:
    """Quarter stream id varint + payload."""
    head = encode(_quarter(session_id), "session_id")
    return head + (payload if type(payload) is bytes else as_bytes(payload, "payload"))


def decode_datagram(data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    """``(session_id, payload)``; DatagramError when the quarter stream id is cut short."""
    raw = data if type(data) is bytes else as_bytes(data, "data")
    if not raw:
        raise DatagramError("empty HTTP datagram: no quarter stream id")
    quarter, after = read(raw, 0)
    if after < 0:
        raise DatagramError(f"HTTP datagram quarter stream id needs {length(raw[0])} bytes, "
                            f"only {len(raw)} present")
    return quarter * 4, raw[after:]


def max_payload_size(session_id: int, max_datagram_frame_size: int, path_limit: int) -> int:
    """min(max_datagram_frame_size, path_limit) - DATAGRAM frame overhead - len(quarter stream id),
    never below 0, and 0 when the peer's max_datagram_frame_size is 0 (no datagrams)."""
    quarter = _quarter(session_id)
    frame_limit = as_index(max_datagram_frame_size, "max_datagram_frame_size")
    path = as_index(path_limit, "path_limit")
    if frame_limit <= 0:
        return 0
    return max(0, min(frame_limit, path) - _FRAME_OVERHEAD - varint_size(quarter, "session_id"))


def check_payload_size(size: int, limit: int) -> None:
    """DatagramTooLargeError(size=size, limit=limit) if size > limit."""
    if size > limit:
        raise DatagramTooLargeError(size=size, limit=limit)


class DatagramRing:
    """FIFO of received datagrams bounded by count and bytes; the oldest are dropped first."""

    __slots__ = ("_dropped", "_max_bytes", "_max_count", "_nbytes", "_queue")

    def __init__(self, *, max_count: int, max_bytes: int) -> None:
        # A bound above what memory can hold never binds: clamp it, as the compiled ring must.
        self._max_count = as_size(max_count, "max_count", sys.maxsize)
        self._max_bytes = as_size(max_bytes, "max_bytes", sys.maxsize)
        self._queue: deque[bytes] = deque()
        self._nbytes = 0
        self._dropped = 0

    def push(self, payload: bytes) -> int:
        """Append ``payload`` (bytes: TypeError otherwise); returns how many were dropped."""
        if not isinstance(payload, bytes):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        size = len(payload)
        if size > self._max_bytes:
            self._dropped += 1
            return 1
        dropped = 0
        while self._queue and (len(self._queue) >= self._max_count or self._nbytes + size > self._max_bytes):
            self._nbytes -= len(self._queue.popleft())
            dropped += 1
        self._queue.append(payload)
        self._nbytes += size
        self._dropped += dropped
        return dropped

    def pop(self) -> bytes | None:
        if not self._queue:
            return None
        payload = self._queue.popleft()
        self._nbytes -= len(payload)
        return payload

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def nbytes(self) -> int:
        """Bytes of the payloads held."""
        return self._nbytes
