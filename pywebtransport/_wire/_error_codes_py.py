"""Mapping of WebTransport application error codes into the HTTP/3 error space, in pure Python.

Twin of the compiled ``error_codes.pyx``; ``error_codes.pyi`` is the contract. The draft
(draft-ietf-webtrans-http3 §4.4) maps a 32-bit application code n to
h = WT_APP_ERROR_FIRST + n + n // 0x1e, which steps over every reserved 0x1f * N + 0x21
codepoint (RFC 9114 §8.1) that falls inside [WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST].
"""

from __future__ import annotations

import operator

from pywebtransport.constants import VARINT_MAX, WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST

__all__ = ["app_code_to_http", "http_code_to_app", "is_reserved_http_code"]

_APP_CODE_MAX = 0xFFFFFFFF


def app_code_to_http(code: int) -> int:
    """ValueError unless 0 <= code <= 0xffffffff."""
    code = operator.index(code)
    if not 0 <= code <= _APP_CODE_MAX:
        raise ValueError(f"application error code out of range [0, 0xffffffff]: {code}")
    return WT_APP_ERROR_FIRST + code + code // 0x1E


def http_code_to_app(code: int) -> int | None:
    """The application code for an HTTP/3 code, or None when it is outside
    [WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST] or is a reserved (GREASE) codepoint."""
    code = operator.index(code)
    if not WT_APP_ERROR_FIRST <= code <= WT_APP_ERROR_LAST:
        return None
    # WT_APP_ERROR_FIRST sits just after a reserved codepoint, so every block of 0x1f
    # codes from it holds 0x1e application codes followed by one reserved codepoint.
    shifted = code - WT_APP_ERROR_FIRST
    if shifted % 0x1F == 0x1E:
        return None
    return shifted - shifted // 0x1F


def is_reserved_http_code(code: int) -> bool:
    """True for the 0x1f * N + 0x21 GREASE codepoints (RFC 9114 §8.1).

    Only values a varint can carry count: nothing above 2**62-1 is a codepoint at all.
    """
    code = operator.index(code)
    return 0x21 <= code <= VARINT_MAX and (code - 0x21) % 0x1F == 0
