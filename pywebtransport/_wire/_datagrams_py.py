"""HTTP datagrams (RFC 9297 §2.1) and a bounded receive ring, pure twin of ``datagrams.pyx``."""

from __future__ import annotations

from collections import deque

from pywebtransport.exceptions import DatagramError, DatagramTooLargeError

__all__ = [
    "DATAGRAM_FRAME_OVERHEAD",
    "DatagramError",
    "DatagramRing",
    "DatagramTooLargeError",
    "check_payload_size",
    "decode_datagram",
    "encode_datagram",
    "max_payload_size",
]

#: QUIC DATAGRAM frame type (1 byte, 0x31) + its length varint (2 bytes for any frame that fits
#: a packet, RFC 9221 §4).
DATAGRAM_FRAME_OVERHEAD = 3


def _varint(value: int) -> bytes:
    if value < 0x40:
        return bytes((value,))
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x40000000:
        return (value | 0x80000000).to_bytes(4, "big")
    if value < 1 << 62:
        return (value | 0xC000000000000000).to_bytes(8, "big")
    raise ValueError(f"varint out of range: {value}")


def _check_session_id(session_id: int) -> None:
    if session_id < 0 or session_id % 4 or session_id >= 1 << 64:
        raise ValueError(f"session id {session_id} is not a client-initiated bidirectional stream id")


def encode_datagram(session_id: int, payload: bytes | bytearray | memoryview) -> bytes:
    _check_session_id(session_id)
    return _varint(session_id // 4) + bytes(payload)


def decode_datagram(data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    raw = data if type(data) is bytes else bytes(data)
    if not raw:
        raise DatagramError("empty HTTP datagram: no quarter stream id")
    length = 1 << (raw[0] >> 6)
    if length > len(raw):
        raise DatagramError(f"HTTP datagram quarter stream id needs {length} bytes, only {len(raw)} present")
    quarter = raw[0] & 0x3F
    for i in range(1, length):
        quarter = (quarter << 8) | raw[i]
    return quarter * 4, raw[length:]


def max_payload_size(session_id: int, max_datagram_frame_size: int, path_limit: int) -> int:
    """min(max_datagram_frame_size, path_limit) - DATAGRAM_FRAME_OVERHEAD - len(quarter stream id),
    never below 0, and 0 when the peer's max_datagram_frame_size is 0 (no datagrams)."""
    _check_session_id(session_id)
    if max_datagram_frame_size <= 0:
        return 0
    room = min(max_datagram_frame_size, path_limit) - DATAGRAM_FRAME_OVERHEAD - len(_varint(session_id // 4))
    return max(0, room)


def check_payload_size(size: int, limit: int) -> None:
    if size > limit:
        raise DatagramTooLargeError(size=size, limit=limit)


class DatagramRing:
    """FIFO of received datagrams bounded by count and bytes; the oldest are dropped first."""

    __slots__ = ("_dropped", "_max_bytes", "_max_count", "_nbytes", "_queue")

    def __init__(self, *, max_count: int, max_bytes: int) -> None:
        if max_count < 1 or max_bytes < 1:
            raise ValueError(f"max_count and max_bytes must be >= 1, got {max_count} and {max_bytes}")
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._queue: deque[bytes] = deque()
        self._nbytes = 0
        self._dropped = 0

    def push(self, payload: bytes) -> int:
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

    def clear(self) -> int:
        removed = len(self._queue)
        self._queue.clear()
        self._nbytes = 0
        return removed

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def max_count(self) -> int:
        return self._max_count

    @property
    def max_bytes(self) -> int:
        return self._max_bytes
