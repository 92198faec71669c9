# cython: language_level=3
"""Inline QUIC varint helpers shared by every compiled _wire module (RFC 9000 §16).

Twin of ``_varint_py.py``, the one varint codec of the pure modules: ``as_varint`` raises
the same errors with the same message. Being ``cdef inline`` in a .pxd, these are compiled
into each module that cimports them: no Python call and no runtime dependency between
extension modules.
"""

from libc.stdint cimport uint8_t, uint64_t

from pywebtransport._wire._args cimport as_index

cdef extern from *:
    """
    #define PWT_VARINT_MAX 0x3FFFFFFFFFFFFFFFULL
    """
    const uint64_t PWT_VARINT_MAX


cdef inline uint64_t as_varint(object value, str name) except? 0xFFFFFFFFFFFFFFFF:
    """``value`` as a varint value: TypeError naming ``name`` unless it is an integer,
    ValueError naming it outside [0, 2**62-1] (the twin's ``as_varint``)."""
    cdef uint64_t v
    value = as_index(value, name)
    try:
        v = value
    except OverflowError:
        v = PWT_VARINT_MAX + 1
    if v > PWT_VARINT_MAX:
        raise ValueError(f"{name} must be in [0, 2**62-1], got {value}")
    return v


cdef inline Py_ssize_t varint_len_from_first(uint8_t first) noexcept nogil:
    """Length of a varint from its first byte: 1, 2, 4 or 8."""
    return 1 << (first >> 6)


cdef inline Py_ssize_t read_varint(const uint8_t* buf, Py_ssize_t length, Py_ssize_t pos,
                                   uint64_t* out) noexcept nogil:
    """Decode the varint at buf[pos]; store it in *out and return the position after it,
    or -1 when the buffer ends first."""
    cdef Py_ssize_t n, i
    cdef uint64_t value
    if pos >= length:
        return -1
    n = 1 << (buf[pos] >> 6)
    if pos + n > length:
        return -1
    value = buf[pos] & 0x3F
    for i in range(1, n):
        value = (value << 8) | buf[pos + i]
    out[0] = value
    return pos + n


cdef inline Py_ssize_t varint_size_c(uint64_t value) noexcept nogil:
    """Bytes the shortest encoding takes; 0 when the value is above 2**62-1."""
    if value <= 63:
        return 1
    if value <= 16383:
        return 2
    if value <= 1073741823:
        return 4
    if value <= PWT_VARINT_MAX:
        return 8
    return 0


cdef inline Py_ssize_t write_varint(uint8_t* buf, uint64_t value) noexcept nogil:
    """Write the shortest encoding at buf (room for 8 bytes assumed); return its size,
    or 0 when the value is above 2**62-1."""
    if value <= 63:
        buf[0] = <uint8_t>value
        return 1
    if value <= 16383:
        buf[0] = <uint8_t>((value >> 8) | 0x40)
        buf[1] = <uint8_t>value
        return 2
    if value <= 1073741823:
        buf[0] = <uint8_t>((value >> 24) | 0x80)
        buf[1] = <uint8_t>(value >> 16)
        buf[2] = <uint8_t>(value >> 8)
        buf[3] = <uint8_t>value
        return 4
    if value <= PWT_VARINT_MAX:
        buf[0] = <uint8_t>((value >> 56) | 0xC0)
        buf[1] = <uint8_t>(value >> 48)
        buf[2] = <uint8_t>(value >> 40)
        buf[3] = <uint8_t>(value >> 32)
        buf[4] = <uint8_t>(value >> 24)
        buf[5] = <uint8_t>(value >> 16)
        buf[6] = <uint8_t>(value >> 8)
        buf[7] = <uint8_t>value
        return 8
    return 0
