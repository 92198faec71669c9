# cython: language_level=3, boundscheck=False, wraparound=False
"""QUIC variable-length integers (RFC 9000 §16) and a byte reader, compiled.

Twin of ``_buffer_py.py``: same names, results and exceptions; ``buffer.pyi`` is the
contract. Input may be any bytes-like object (a non-contiguous view is read through a
copy, as in the twin). Every index is checked against the length by hand (hence the
directives above): varints through ``read_varint``, fixed-width reads and slices through
``_need``.
"""

from cpython.buffer cimport PyBuffer_Release
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint64_t

from pywebtransport._wire._args cimport as_index, get_bytes
from pywebtransport._wire._varint cimport as_varint, read_varint, write_varint

from pywebtransport.constants import VARINT_MAX
from pywebtransport.exceptions import BufferReadError

__all__ = ["VARINT_MAX", "BufferReadError", "Reader", "decode_varint", "encode_varint"]

cdef extern from *:
    """
    #define PWT_SSIZE_MAX PY_SSIZE_T_MAX
    """
    const Py_ssize_t PWT_SSIZE_MAX


cdef inline Py_ssize_t _as_position(object offset) except -1:
    """A non-negative offset; ValueError below 0, and an unreachable huge offset becomes
    PWT_SSIZE_MAX so that the caller reports it as reading past the end, like the twin."""
    offset = as_index(offset, "offset")
    cdef Py_ssize_t pos
    try:
        pos = offset
    except OverflowError:
        if offset < 0:
            raise ValueError(f"offset must not be negative: {offset}") from None
        return PWT_SSIZE_MAX
    if pos < 0:
        raise ValueError(f"offset must not be negative: {offset}")
    return pos


def encode_varint(value):
    """The shortest encoding of ``value``. TypeError unless an integer; ValueError if value < 0
    or > VARINT_MAX."""
    cdef uint8_t out[8]
    cdef Py_ssize_t size = write_varint(out, as_varint(value, "value"))
    return PyBytes_FromStringAndSize(<char*>out, size)


def decode_varint(data, offset=0):
    """Decode one varint at ``offset``: returns ``(value, offset_after)``.

    BufferReadError when the data ends before the varint does (or offset is past the end);
    ValueError for a negative offset.
    """
    cdef Py_ssize_t pos = _as_position(offset)
    cdef Py_ssize_t end, length
    cdef uint64_t value = 0
    cdef Py_buffer view
    if type(data) is bytes:
        length = PyBytes_GET_SIZE(data)
        end = read_varint(<const uint8_t*>PyBytes_AS_STRING(data), length, pos, &value)
    elif type(data) is bytearray:
        length = PyByteArray_GET_SIZE(data)
        end = read_varint(<const uint8_t*>PyByteArray_AS_STRING(data), length, pos, &value)
    else:
        get_bytes(data, &view, "data")
        length = view.len
        end = read_varint(<const uint8_t*>view.buf, length, pos, &value)
        PyBuffer_Release(&view)
    if end < 0:
        if pos >= length:
            raise BufferReadError("varint: offset is past the end of the data")
        raise BufferReadError("varint: data ends inside a varint")
    return value, end


cdef class Reader:
    """Reads a fixed byte string front to back; every read past the end raises BufferReadError.

    The input is copied once (unless it is ``bytes``), so a bytearray the caller keeps
    mutating neither changes what is read nor gets locked against resizing.
    """

    cdef bytes _data
    cdef const uint8_t* _buf
    cdef Py_ssize_t _pos
    cdef Py_ssize_t _len

    def __init__(self, data):
        cdef Py_buffer view
        if type(data) is bytes:
            self._data = data
        elif type(data) is bytearray:
            self._data = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(data), PyByteArray_GET_SIZE(data))
        else:
            get_bytes(data, &view, "data")
            try:
                self._data = PyBytes_FromStringAndSize(<char*>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
        self._buf = <const uint8_t*>PyBytes_AS_STRING(self._data)
        self._len = PyBytes_GET_SIZE(self._data)
        self._pos = 0

    cdef inline int _need(self, Py_ssize_t size, str what) except -1:
        if size > self._len - self._pos:
            raise BufferReadError(f"{what}: need {size} bytes, {self._len - self._pos} left")
        return 0

    def pull_varint(self):
        cdef uint64_t value = 0
        cdef Py_ssize_t end = read_varint(self._buf, self._len, self._pos, &value)
        if end < 0:
            if self._pos >= self._len:
                raise BufferReadError("varint: read past the end of the data")
            raise BufferReadError("varint: data ends inside a varint")
        self._pos = end
        return value

    def pull_uint8(self):
        if self._pos >= self._len:
            raise BufferReadError("uint8: read past the end of the data")
        self._pos += 1
        return self._buf[self._pos - 1]

    def pull_uint16(self):
        """Big-endian (network order), as are uint32."""
        self._need(2, "uint16")
        cdef const uint8_t* p = self._buf + self._pos
        self._pos += 2
        return (<unsigned int>p[0] << 8) | p[1]

    def pull_uint32(self):
        self._need(4, "uint32")
        cdef const uint8_t* p = self._buf + self._pos
        self._pos += 4
        return ((<uint64_t>p[0] << 24) | (<uint64_t>p[1] << 16) | (<uint64_t>p[2] << 8) | p[3])

    def pull_bytes(self, length):
        """Exactly ``length`` bytes; ValueError if length < 0."""
        cdef Py_ssize_t size
        length = as_index(length, "length")
        try:
            size = length
        except OverflowError:
            if length < 0:
                raise ValueError(f"length must not be negative: {length}") from None
            raise BufferReadError(f"bytes: need {length} bytes, {self._len - self._pos} left") from None
        if size < 0:
            raise ValueError(f"length must not be negative: {length}")
        self._need(size, "bytes")
        self._pos += size
        return PyBytes_FromStringAndSize(<const char*>(self._buf + self._pos - size), size)

    def pull_rest(self):
        """Everything not read yet (possibly empty)."""
        cdef Py_ssize_t pos = self._pos
        self._pos = self._len
        if pos == 0:
            return self._data
        return PyBytes_FromStringAndSize(<const char*>(self._buf + pos), self._len - pos)

    def tell(self):
        return self._pos

    def eof(self):
        return self._pos >= self._len

    def remaining(self):
        return self._len - self._pos
