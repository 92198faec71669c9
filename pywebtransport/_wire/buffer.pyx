# cython: language_level=3, boundscheck=False, wraparound=False
"""QUIC variable-length integers (RFC 9000 §16) and a byte reader/writer, compiled.

Twin of ``_buffer_py.py``: same names, results and exceptions; ``buffer.pyi`` is the
contract. Input may be any C-contiguous buffer (bytes, bytearray, memoryview). Every index
is checked against the length by hand (hence the directives above): varints through
``read_varint``, fixed-width reads and slices through ``_need``.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.number cimport PyNumber_Index
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

from pywebtransport._wire._varint cimport PWT_VARINT_MAX, read_varint, varint_size_c, write_varint

from pywebtransport.constants import VARINT_MAX
from pywebtransport.exceptions import BufferReadError

__all__ = ["VARINT_MAX", "BufferReadError", "Reader", "Writer", "decode_varint", "encode_varint", "varint_size"]

cdef extern from *:
    """
    #define PWT_SSIZE_MAX PY_SSIZE_T_MAX
    """
    const Py_ssize_t PWT_SSIZE_MAX

# Bytes a Writer holds inline before it allocates: most frame headers fit.
cdef enum:
    _SMALL = 64


cdef inline uint64_t _as_varint(object value) except? 0xFFFFFFFFFFFFFFFF:
    """``value`` as a C integer; ValueError (with the twin's message) outside [0, 2**62-1]."""
    if type(value) is not int:
        # Only true integers (or __index__), like the twin: Cython would truncate a float.
        value = PyNumber_Index(value)
    cdef uint64_t v
    try:
        v = value
    except OverflowError:
        raise ValueError(f"varint value out of range [0, 2**62-1]: {value}") from None
    if v > PWT_VARINT_MAX:
        raise ValueError(f"varint value out of range [0, 2**62-1]: {value}")
    return v


cdef inline uint64_t _as_uint(object value, uint64_t maximum, int bits) except? 0xFFFFFFFFFFFFFFFF:
    """``value`` as a C integer; ValueError (with the twin's message) outside [0, maximum]."""
    if type(value) is not int:
        # Only true integers (or __index__), like the twin: Cython would truncate a float.
        value = PyNumber_Index(value)
    cdef uint64_t v
    try:
        v = value
    except OverflowError:
        raise ValueError(f"value out of range for uint{bits}: {value}") from None
    if v > maximum:
        raise ValueError(f"value out of range for uint{bits}: {value}")
    return v


cdef inline Py_ssize_t _as_position(object offset) except -1:
    """A non-negative offset; ValueError below 0, and an unreachable huge offset becomes
    PWT_SSIZE_MAX so that the caller reports it as reading past the end, like the twin."""
    if type(offset) is not int:
        # Only true integers (or __index__), like the twin: Cython would truncate a float.
        offset = PyNumber_Index(offset)
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
    """The shortest encoding of ``value``. ValueError if value < 0 or > VARINT_MAX."""
    cdef uint8_t out[8]
    cdef Py_ssize_t size = write_varint(out, _as_varint(value))
    return PyBytes_FromStringAndSize(<char*>out, size)


def varint_size(value):
    """Bytes the shortest encoding of ``value`` takes (1, 2, 4 or 8). ValueError as above."""
    return varint_size_c(_as_varint(value))


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
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
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
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
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
        if type(length) is not int:
            # Only true integers (or __index__), like the twin: Cython would truncate a float.
            length = PyNumber_Index(length)
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

    def seek(self, position):
        """Move to an absolute position; ValueError outside [0, len]."""
        cdef Py_ssize_t pos
        if type(position) is not int:
            # Only true integers (or __index__), like the twin: Cython would truncate a float.
            position = PyNumber_Index(position)
        try:
            pos = position
        except OverflowError:
            raise ValueError(f"seek position {position} outside [0, {self._len}]") from None
        if pos < 0 or pos > self._len:
            raise ValueError(f"seek position {position} outside [0, {self._len}]")
        self._pos = pos

    def eof(self):
        return self._pos >= self._len

    def remaining(self):
        return self._len - self._pos


cdef class Writer:
    """Builds a byte string; ``getvalue()`` returns everything pushed so far.

    The first ``_SMALL`` bytes live inside the object; past that a PyMem block doubles as
    needed, so a push is a bounds check and a store.
    """

    cdef uint8_t* _buf
    cdef Py_ssize_t _len
    cdef Py_ssize_t _cap
    cdef uint8_t _small[_SMALL]

    def __cinit__(self):
        self._buf = self._small
        self._len = 0
        self._cap = _SMALL

    def __dealloc__(self):
        if self._buf is not self._small:
            PyMem_Free(self._buf)

    cdef int _grow(self, Py_ssize_t extra) except -1:
        """Make room for ``extra`` more bytes (called only when they do not fit)."""
        cdef Py_ssize_t needed = self._len + extra
        cdef Py_ssize_t cap = self._cap
        cdef uint8_t* buf
        if extra > PWT_SSIZE_MAX - self._len:
            raise MemoryError()
        while cap < needed:
            cap = needed if cap > PWT_SSIZE_MAX // 2 else cap * 2
        if self._buf is self._small:
            buf = <uint8_t*>PyMem_Malloc(cap)
            if buf is NULL:
                raise MemoryError()
            memcpy(buf, self._small, self._len)
        else:
            buf = <uint8_t*>PyMem_Realloc(self._buf, cap)
            if buf is NULL:
                raise MemoryError()
        self._buf = buf
        self._cap = cap
        return 0

    cdef inline int _append(self, const uint8_t* data, Py_ssize_t size) except -1:
        if size > self._cap - self._len:
            self._grow(size)
        memcpy(self._buf + self._len, data, size)
        self._len += size
        return 0

    def push_varint(self, value):
        """ValueError as encode_varint."""
        cdef uint64_t v = _as_varint(value)
        if 8 > self._cap - self._len:
            self._grow(8)
        self._len += write_varint(self._buf + self._len, v)

    def push_uint8(self, value):
        """ValueError if value does not fit (likewise uint16/uint32)."""
        cdef uint8_t v = <uint8_t>_as_uint(value, 0xFF, 8)
        if 1 > self._cap - self._len:
            self._grow(1)
        self._buf[self._len] = v
        self._len += 1

    def push_uint16(self, value):
        cdef uint64_t v = _as_uint(value, 0xFFFF, 16)
        if 2 > self._cap - self._len:
            self._grow(2)
        cdef uint8_t* p = self._buf + self._len
        p[0] = <uint8_t>(v >> 8)
        p[1] = <uint8_t>v
        self._len += 2

    def push_uint32(self, value):
        cdef uint64_t v = _as_uint(value, 0xFFFFFFFF, 32)
        if 4 > self._cap - self._len:
            self._grow(4)
        cdef uint8_t* p = self._buf + self._len
        p[0] = <uint8_t>(v >> 24)
        p[1] = <uint8_t>(v >> 16)
        p[2] = <uint8_t>(v >> 8)
        p[3] = <uint8_t>v
        self._len += 4

    def push_bytes(self, data):
        cdef Py_buffer view
        if type(data) is bytes:
            self._append(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        elif type(data) is bytearray:
            self._append(<const uint8_t*>PyByteArray_AS_STRING(data), PyByteArray_GET_SIZE(data))
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                self._append(<const uint8_t*>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)

    def getvalue(self):
        return PyBytes_FromStringAndSize(<char*>self._buf, self._len)

    def tell(self):
        return self._len

    def __len__(self):
        return self._len
