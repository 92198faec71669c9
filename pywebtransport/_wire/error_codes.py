"""Mapping of WebTransport application error codes into the HTTP/3 error space (draft-15 §4.4).

The draft maps a 32-bit application code n to h = WT_APP_ERROR_FIRST + n + n // 0x1e,
which steps over every reserved 0x1f * N + 0x21 codepoint (RFC 9114 §8.1) that falls
inside [WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST].

Plain Python, one module for both ``_wire`` variants: it runs once per stream reset or
STOP_SENDING, never per packet.
"""

from __future__ import annotations

from pywebtransport._wire._args_py import as_index
from pywebtransport.constants import WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST

__all__ = ["app_code_to_http", "http_code_to_app"]

_APP_CODE_MAX = 0xFFFFFFFF


def app_code_to_http(code: int) -> int:
    """The HTTP/3 code carrying application code ``code``; ValueError unless 0 <= code <= 0xffffffff."""
    code = as_index(code, "code")
    if not 0 <= code <= _APP_CODE_MAX:
        raise ValueError(f"code must be in [0, 0xffffffff], got {code}")
    return WT_APP_ERROR_FIRST + code + code // 0x1E


def http_code_to_app(code: int) -> int | None:
    """The application code for an HTTP/3 code, or None when it is outside
    [WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST] or is a reserved (GREASE) codepoint."""
    code = as_index(code, "code")
    if not WT_APP_ERROR_FIRST <= code <= WT_APP_ERROR_LAST:
        return None
    # WT_APP_ERROR_FIRST sits just after a reserved codepoint, so every block of 0x1f
    # codes from it holds 0x1e application codes followed by one reserved codepoint.
    shifted = code - WT_APP_ERROR_FIRST
    if shifted % 0x1F == 0x1E:
        return None
    return shifted - shifted // 0x1F
