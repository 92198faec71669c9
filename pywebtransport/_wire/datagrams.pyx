# cython: language_level=3, boundscheck=False, wraparound=False
"""HTTP datagrams (RFC 9297 §2.1) and a bounded receive ring, compiled (see ``datagrams.pyi``)."""

from collections import deque

from libc.stdint cimport uint8_t, uint64_t

from pywebtransport._wire._varint cimport read_varint, varint_size_c, write_varint

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

DATAGRAM_FRAME_OVERHEAD = 3
cdef Py_ssize_t _OVERHEAD = 3


cdef uint64_t _quarter(object session_id) except? 0xFFFFFFFFFFFFFFFF:
    if session_id < 0 or session_id % 4 or session_id >= 1 << 64:
        raise ValueError(f"session id {session_id} is not a client-initiated bidirectional stream id")
    return <uint64_t>(session_id // 4)


def encode_datagram(session_id, payload):
    cdef uint8_t head[8]
    cdef Py_ssize_t n = write_varint(head, _quarter(session_id))
    if n == 0:
        raise ValueError(f"varint out of range: {session_id // 4}")
    return (<char*>head)[:n] + bytes(payload)


def decode_datagram(data):
    cdef const uint8_t[:] view = data if not isinstance(data, memoryview) else data.cast("B")
    cdef Py_ssize_t end = view.shape[0]
    cdef uint64_t quarter
    cdef Py_ssize_t after
    if end == 0:
        raise DatagramError("empty HTTP datagram: no quarter stream id")
    after = read_varint(&view[0], end, 0, &quarter)
    if after < 0:
        raise DatagramError(f"HTTP datagram quarter stream id needs {1 << (view[0] >> 6)} bytes, only {end} present")
    # bytes slice in one memcpy; other buffers are copied once through the view
    payload = data[after:] if type(data) is bytes else bytes(view[after:])
    return (<object>quarter) * 4, payload


def max_payload_size(session_id, max_datagram_frame_size, path_limit):
    cdef uint64_t quarter = _quarter(session_id)
    if max_datagram_frame_size <= 0:
        return 0
    room = min(max_datagram_frame_size, path_limit) - _OVERHEAD - varint_size_c(quarter)
    return room if room > 0 else 0


def check_payload_size(size, limit):
    if size > limit:
        raise DatagramTooLargeError(size=size, limit=limit)


cdef class DatagramRing:
    """FIFO of received datagrams bounded by count and bytes; the oldest are dropped first."""

    cdef object _queue
    cdef Py_ssize_t _max_count
    cdef Py_ssize_t _max_bytes
    cdef Py_ssize_t _nbytes
    cdef Py_ssize_t _count
    cdef unsigned long long _dropped

    def __init__(self, *, max_count, max_bytes):
        if max_count < 1 or max_bytes < 1:
            raise ValueError(f"max_count and max_bytes must be >= 1, got {max_count} and {max_bytes}")
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._queue = deque()
        self._nbytes = 0
        self._count = 0
        self._dropped = 0

    def push(self, bytes payload):
        cdef Py_ssize_t size = len(payload)
        cdef Py_ssize_t dropped = 0
        if size > self._max_bytes:
            self._dropped += 1
            return 1
        while self._count and (self._count >= self._max_count or self._nbytes + size > self._max_bytes):
            self._nbytes -= len(<bytes>self._queue.popleft())
            self._count -= 1
            dropped += 1
        self._queue.append(payload)
        self._count += 1
        self._nbytes += size
        self._dropped += dropped
        return dropped

    def pop(self):
        if not self._count:
            return None
        cdef bytes payload = self._queue.popleft()
        self._count -= 1
        self._nbytes -= len(payload)
        return payload

    def clear(self):
        cdef Py_ssize_t removed = self._count
        self._queue.clear()
        self._count = 0
        self._nbytes = 0
        return removed

    def __len__(self):
        return self._count

    @property
    def nbytes(self):
        return self._nbytes

    @property
    def dropped(self):
        return self._dropped

    @property
    def max_count(self):
        return self._max_count

    @property
    def max_bytes(self):
        return self._max_bytes
