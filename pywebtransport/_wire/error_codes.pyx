# cython: language_level=3
"""Mapping of WebTransport application error codes into the HTTP/3 error space, compiled.

Twin of ``_error_codes_py.py``; ``error_codes.pyi`` is the contract. The draft
(draft-ietf-webtrans-http3 §4.4) maps a 32-bit application code n to
h = WT_APP_ERROR_FIRST + n + n // 0x1e, which steps over every reserved 0x1f * N + 0x21
codepoint (RFC 9114 §8.1) that falls inside [WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST].
"""

from cpython.number cimport PyNumber_Index
from libc.stdint cimport uint64_t

from pywebtransport._wire._varint cimport PWT_VARINT_MAX

from pywebtransport import constants as c

__all__ = ["app_code_to_http", "http_code_to_app", "is_reserved_http_code"]

# Read once from constants.py, the single source of the numbers.
cdef uint64_t _FIRST = c.WT_APP_ERROR_FIRST
cdef uint64_t _LAST = c.WT_APP_ERROR_LAST


def app_code_to_http(code):
    """ValueError unless 0 <= code <= 0xffffffff."""
    cdef uint64_t n
    if type(code) is not int:
        code = PyNumber_Index(code)
    try:
        n = code
    except OverflowError:
        n = 0x100000000
    if n > 0xFFFFFFFF:
        raise ValueError(f"application error code out of range [0, 0xffffffff]: {code}")
    return _FIRST + n + n // 0x1E


def http_code_to_app(code):
    """The application code for an HTTP/3 code, or None when it is outside
    [WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST] or is a reserved (GREASE) codepoint."""
    cdef uint64_t h, shifted
    if type(code) is not int:
        code = PyNumber_Index(code)
    try:
        h = code
    except OverflowError:
        return None
    if h < _FIRST or h > _LAST:
        return None
    # WT_APP_ERROR_FIRST sits just after a reserved codepoint, so every block of 0x1f
    # codes from it holds 0x1e application codes followed by one reserved codepoint.
    shifted = h - _FIRST
    if shifted % 0x1F == 0x1E:
        return None
    return shifted - shifted // 0x1F


def is_reserved_http_code(code):
    """True for the 0x1f * N + 0x21 GREASE codepoints (RFC 9114 §8.1).

    Only values a varint can carry count: nothing above 2**62-1 is a codepoint at all.
    """
    cdef uint64_t h
    if type(code) is not int:
        code = PyNumber_Index(code)
    try:
        h = code
    except OverflowError:
        return False
    return 0x21 <= h <= PWT_VARINT_MAX and (h - 0x21) % 0x1F == 0
