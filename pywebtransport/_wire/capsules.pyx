# cython: language_level=3, boundscheck=False, wraparound=False
"""Capsules (RFC 9297 §3) and WebTransport capsules, compiled (see ``capsules.pyi``).

Bounds are checked by hand: every read goes through ``read_varint`` or an explicit
length comparison.
"""

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

from pywebtransport._wire._args cimport as_index, as_size, get_bytes
from pywebtransport._wire._varint cimport as_varint, read_varint, write_varint

from pywebtransport import constants as _c
from pywebtransport.exceptions import CapsuleError

__all__ = [
    "KNOWN_CAPSULE_TYPES",
    "CapsuleParser",
    "encode_capsule",
    "encode_close_session",
    "encode_drain_session",
    "encode_varint_capsule",
]

cdef uint64_t CLOSE = 0x2843
cdef uint64_t DRAIN = 0x78AE
cdef uint64_t DATAGRAM = 0x00
cdef uint64_t MAX_DATA = 0x190B4D3D
cdef uint64_t MAX_STREAMS_BIDI = 0x190B4D3F
cdef uint64_t MAX_STREAMS_UNI = 0x190B4D40
cdef uint64_t DATA_BLOCKED = 0x190B4D41
cdef uint64_t STREAMS_BLOCKED_BIDI = 0x190B4D43
cdef uint64_t STREAMS_BLOCKED_UNI = 0x190B4D44
cdef Py_ssize_t REASON_MAX = 1024
cdef object H3_MESSAGE_ERROR = _c.H3_MESSAGE_ERROR
cdef object H3_EXCESSIVE_LOAD = _c.H3_EXCESSIVE_LOAD

KNOWN_CAPSULE_TYPES = frozenset({_c.CAPSULE_DATAGRAM, _c.WT_CAPSULE_CLOSE_SESSION, _c.WT_CAPSULE_DRAIN_SESSION,
                                 _c.WT_CAPSULE_MAX_DATA, _c.WT_CAPSULE_MAX_STREAMS_BIDI,
                                 _c.WT_CAPSULE_MAX_STREAMS_UNI, _c.WT_CAPSULE_DATA_BLOCKED,
                                 _c.WT_CAPSULE_STREAMS_BLOCKED_BIDI, _c.WT_CAPSULE_STREAMS_BLOCKED_UNI})


cdef inline bint _is_varint_capsule(uint64_t t) noexcept nogil:
    return (t == MAX_DATA or t == MAX_STREAMS_BIDI or t == MAX_STREAMS_UNI or t == DATA_BLOCKED
            or t == STREAMS_BLOCKED_BIDI or t == STREAMS_BLOCKED_UNI)


cdef inline bint _is_known(uint64_t t) noexcept nogil:
    return t == CLOSE or t == DRAIN or t == DATAGRAM or _is_varint_capsule(t)


cdef bytes _capsule(uint64_t capsule_type, const uint8_t* value, Py_ssize_t size):
    """type varint + length varint + ``size`` bytes of value, in one allocation."""
    cdef uint8_t header[16]
    cdef Py_ssize_t n = write_varint(header, capsule_type)
    n += write_varint(header + n, <uint64_t>size)
    cdef bytes result = PyBytes_FromStringAndSize(NULL, n + size)
    cdef char* dest = PyBytes_AS_STRING(result)
    memcpy(dest, header, n)
    if size:
        memcpy(dest + n, value, size)
    return result


def encode_capsule(capsule_type, value):
    """type varint + length varint + value."""
    cdef uint64_t kind = as_varint(capsule_type, "capsule_type")
    cdef Py_buffer view
    get_bytes(value, &view, "value")
    try:
        return _capsule(kind, <const uint8_t*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


def encode_close_session(error_code, reason=""):
    """A whole WT_CLOSE_SESSION capsule (draft-15 §6)."""
    code = as_index(error_code, "error_code")
    if not 0 <= code <= 0xFFFFFFFF:
        raise ValueError(f"error_code must be in [0, 0xffffffff], got {code}")
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a str, not {type(reason).__name__}")
    cdef bytes raw = code.to_bytes(4, "big") + reason.encode("utf-8")
    if len(raw) - 4 > REASON_MAX:
        raise ValueError(f"close reason is {len(raw) - 4} bytes of UTF-8; at most {REASON_MAX} allowed")
    return _capsule(CLOSE, <const uint8_t*>PyBytes_AS_STRING(raw), len(raw))


def encode_drain_session():
    """A whole WT_DRAIN_SESSION capsule (empty value)."""
    return _capsule(DRAIN, NULL, 0)


def encode_varint_capsule(capsule_type, value):
    """A capsule whose value is one varint (WT_MAX_DATA, WT_MAX_STREAMS_*, WT_*_BLOCKED)."""
    cdef uint64_t kind = as_varint(capsule_type, "capsule_type")
    cdef uint8_t buf[8]
    cdef Py_ssize_t n = write_varint(buf, as_varint(value, "value"))
    return _capsule(kind, buf, n)


cdef object _decode_value(uint64_t capsule_type, bytes value):
    cdef const uint8_t* p = <const uint8_t*>(<char*>value)
    cdef Py_ssize_t n = len(value)
    cdef uint64_t number
    cdef Py_ssize_t after
    if capsule_type == CLOSE:
        if n < 4:
            raise CapsuleError(f"WT_CLOSE_SESSION of {n} bytes is shorter than its 4-byte code")
        if n - 4 > REASON_MAX:
            raise CapsuleError(f"WT_CLOSE_SESSION reason of {n - 4} bytes exceeds {REASON_MAX}")
        try:
            reason = value[4:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CapsuleError("WT_CLOSE_SESSION reason is not valid UTF-8") from exc
        number = (<uint64_t>p[0] << 24) | (<uint64_t>p[1] << 16) | (<uint64_t>p[2] << 8) | p[3]
        return (number, reason)
    if capsule_type == DRAIN:
        return None
    if capsule_type == DATAGRAM:
        return value
    after = read_varint(p, n, 0, &number)
    if after != n:
        raise CapsuleError(f"capsule {capsule_type:#x} must hold exactly one varint")
    return number


cdef class CapsuleParser:
    """Incremental capsule parser for one CONNECT stream (see capsules.pyi)."""

    cdef uint64_t _max
    cdef uint8_t _head[16]
    cdef Py_ssize_t _head_len
    cdef long long _type
    cdef Py_ssize_t _need
    cdef bytearray _value
    cdef uint64_t _skip
    cdef uint64_t _skip_type
    cdef bint _report
    cdef bint _failed

    def __init__(self, *, max_capsule_size=_c.DEFAULT_MAX_CAPSULE_SIZE, report_unknown=False):
        # No capsule can be longer than the largest varint, so the clamp changes nothing.
        self._max = as_size(max_capsule_size, "max_capsule_size", _c.VARINT_MAX)
        self._report = bool(report_unknown)
        self._skip_type = 0
        self._head_len = 0
        self._type = -1
        self._need = 0
        self._value = bytearray()
        self._skip = 0
        self._failed = False

    @property
    def buffered(self):
        return self._head_len + len(self._value)

    @property
    def in_capsule(self):
        return self._head_len > 0 or self._type >= 0 or self._skip > 0

    cdef _fail(self, error):
        self._failed = True
        return error

    def feed(self, data):
        cdef Py_buffer view
        if self._failed:
            raise CapsuleError("the capsule parser failed earlier; the stream is unusable")
        get_bytes(data, &view, "data")
        try:
            return self._feed(<const uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef list _feed(self, const uint8_t* buf, Py_ssize_t end):
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t take, after, held
        cdef uint64_t capsule_type, length
        cdef uint8_t joined[32]
        cdef list out = []
        while True:
            if self._skip:
                take = end - pos
                if <uint64_t>take > self._skip:
                    take = <Py_ssize_t>self._skip
                pos += take
                self._skip -= take
                if self._skip:
                    return out
                if self._report:
                    out.append((self._skip_type, None))
            if self._type >= 0:
                if not len(self._value) and pos + self._need <= end:
                    # The whole value is here: no copy through the bytearray.
                    value = (<const char*>buf)[pos:pos + self._need] if self._need else b""
                    pos += self._need
                else:
                    take = self._need - len(self._value)
                    if take > end - pos:
                        take = end - pos
                    if take:
                        self._value += (<const char*>buf)[pos:pos + take]
                    pos += take
                    if len(self._value) < self._need:
                        return out
                    value = bytes(self._value)
                    self._value = bytearray()
                capsule_type = <uint64_t>self._type
                self._type = -1
                try:
                    out.append((capsule_type, _decode_value(capsule_type, value)))
                except CapsuleError as exc:
                    raise self._fail(exc) from None
                continue
            if pos >= end:
                return out
            held = self._head_len
            if held:
                take = end - pos
                if take > 16:
                    take = 16
                memcpy(joined, self._head, held)
                memcpy(joined + held, buf + pos, take)
                after = read_varint(joined, held + take, 0, &capsule_type)
                if after >= 0:
                    after = read_varint(joined, held + take, after, &length)
                if after < 0:
                    memcpy(self._head + held, buf + pos, take)
                    self._head_len = held + take
                    return out
                pos += after - held
                self._head_len = 0
            else:
                after = read_varint(buf, end, pos, &capsule_type)
                if after >= 0:
                    after = read_varint(buf, end, after, &length)
                if after < 0:
                    take = end - pos
                    memcpy(self._head, buf + pos, take)
                    self._head_len = take
                    return out
                pos = after
            if _is_known(capsule_type):
                if length > <uint64_t>self._max:
                    raise self._fail(CapsuleError(f"capsule {capsule_type:#x} of {length} bytes exceeds the "
                                                  f"limit of {self._max}", error_code=H3_EXCESSIVE_LOAD))
                # Lengths no valid capsule of the type has are refused before any byte is held.
                if length > 8 and _is_varint_capsule(capsule_type):
                    raise self._fail(CapsuleError(f"capsule {capsule_type:#x} declares {length} bytes; it must "
                                                  "hold exactly one varint"))
                if capsule_type == CLOSE and length > <uint64_t>(4 + REASON_MAX):
                    raise self._fail(CapsuleError(f"WT_CLOSE_SESSION declares {length} bytes; its reason may "
                                                  f"hold at most {REASON_MAX}"))
                self._type = <long long>capsule_type
                self._need = <Py_ssize_t>length
            elif length == 0:
                if self._report:
                    out.append((capsule_type, None))
            else:
                self._skip = length
                self._skip_type = capsule_type
