"""Mapping of WebTransport application error codes into the HTTP/3 error space (draft §4.4).

h = WT_APP_ERROR_FIRST + n + n // 0x1e, which skips the reserved 0x1f * N + 0x21 codepoints.
"""

def app_code_to_http(code: int) -> int:
    """ValueError unless 0 <= code <= 0xffffffff."""

def http_code_to_app(code: int) -> int | None:
    """The application code for an HTTP/3 code, or None when it is outside
    [WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST] or is a reserved (GREASE) codepoint."""

def is_reserved_http_code(code: int) -> bool:
    """True for the 0x1f * N + 0x21 GREASE codepoints (RFC 9114 §8.1)."""
