# cython: language_level=3, boundscheck=False, wraparound=False
"""HTTP datagrams (RFC 9297 §2.1) and a bounded receive ring, compiled (see ``datagrams.pyi``)."""

from collections import deque

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

from pywebtransport._wire._args cimport as_index, as_size, get_bytes
from pywebtransport._wire._varint cimport (as_varint, read_varint, varint_len_from_first, varint_size_c,
                                           write_varint)

from pywebtransport.exceptions import DatagramError, DatagramTooLargeError

__all__ = [
    "DatagramRing",
    "check_payload_size",
    "decode_datagram",
    "encode_datagram",
    "max_payload_size",
]

# QUIC DATAGRAM frame type (1 byte, 0x31) + its length varint (2 bytes for any frame that fits
# a packet, RFC 9221 §4).
cdef Py_ssize_t _FRAME_OVERHEAD = 3

cdef extern from *:
    """
    #define PWT_DGRAM_SSIZE_MAX PY_SSIZE_T_MAX
    """
    const Py_ssize_t PWT_DGRAM_SSIZE_MAX


cdef uint64_t _quarter(object session_id) except? 0xFFFFFFFFFFFFFFFF:
    """The quarter stream id of a session: its id is a client bidi stream id (a varint, % 4 == 0)."""
    cdef uint64_t number = as_varint(session_id, "session_id")
    if number & 3:
        raise ValueError(f"session_id {number} is not a client-initiated bidirectional stream id")
    return number >> 2


def encode_datagram(session_id, payload):
    """Quarter stream id varint + payload."""
    cdef uint8_t head[8]
    cdef Py_ssize_t n = write_varint(head, _quarter(session_id))
    cdef Py_buffer view
    cdef bytes result
    cdef char* dest
    get_bytes(payload, &view, "payload")
    try:
        result = PyBytes_FromStringAndSize(NULL, n + view.len)
        dest = PyBytes_AS_STRING(result)
        memcpy(dest, head, n)
        memcpy(dest + n, view.buf, view.len)
        return result
    finally:
        PyBuffer_Release(&view)


def decode_datagram(data):
    """``(session_id, payload)``; DatagramError when the quarter stream id is cut short."""
    cdef Py_buffer view
    cdef const uint8_t* buf
    cdef Py_ssize_t end, after
    cdef uint64_t quarter
    get_bytes(data, &view, "data")
    try:
        buf = <const uint8_t*>view.buf
        end = view.len
        if end == 0:
            raise DatagramError("empty HTTP datagram: no quarter stream id")
        after = read_varint(buf, end, 0, &quarter)
        if after < 0:
            raise DatagramError(f"HTTP datagram quarter stream id needs {varint_len_from_first(buf[0])} bytes, "
                                f"only {end} present")
        # bytes are sliced; any other buffer is copied once
        payload = data[after:] if type(data) is bytes else PyBytes_FromStringAndSize(<const char*>buf + after,
                                                                                     end - after)
        return (<object>quarter) * 4, payload
    finally:
        PyBuffer_Release(&view)


def max_payload_size(session_id, max_datagram_frame_size, path_limit):
    """min(max_datagram_frame_size, path_limit) - DATAGRAM frame overhead - len(quarter stream id),
    never below 0, and 0 when the peer's max_datagram_frame_size is 0 (no datagrams)."""
    cdef uint64_t quarter = _quarter(session_id)
    frame_limit = as_index(max_datagram_frame_size, "max_datagram_frame_size")
    path = as_index(path_limit, "path_limit")
    if frame_limit <= 0:
        return 0
    room = min(frame_limit, path) - _FRAME_OVERHEAD - varint_size_c(quarter)
    return room if room > 0 else 0


def check_payload_size(size, limit):
    """DatagramTooLargeError(size=size, limit=limit) if size > limit."""
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
        # A bound above what memory can hold never binds: clamp it (the twin does the same).
        self._max_count = as_size(max_count, "max_count", PWT_DGRAM_SSIZE_MAX)
        self._max_bytes = as_size(max_bytes, "max_bytes", PWT_DGRAM_SSIZE_MAX)
        self._queue = deque()
        self._nbytes = 0
        self._count = 0
        self._dropped = 0

    def push(self, payload):
        """Append ``payload`` (bytes: TypeError otherwise); returns how many were dropped."""
        if not isinstance(payload, bytes):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        cdef Py_ssize_t size = len(payload)
        cdef Py_ssize_t dropped = 0
        if size > self._max_bytes:
            self._dropped += 1
            return 1
        while self._count and (self._count >= self._max_count or size > self._max_bytes - self._nbytes):
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

    def __len__(self):
        return self._count

    @property
    def dropped(self):
        return self._dropped

    @property
    def nbytes(self):
        return self._nbytes
