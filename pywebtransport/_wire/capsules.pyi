"""Capsules (RFC 9297 §3) and the WebTransport capsules (draft §5-6).

``CapsuleParser`` is incremental like ``FrameParser``: any chunking of the same bytes gives
the same capsules. It returns ``(capsule_type, value)`` pairs, the value decoded by type:

=============================================  =============================================
WT_CLOSE_SESSION 0x2843                        ``(error_code: int, reason: str)``
WT_DRAIN_SESSION 0x78ae                        ``None``
WT_MAX_DATA, WT_MAX_STREAMS_BIDI/UNI,          ``int`` (one varint; trailing bytes are an
WT_DATA_BLOCKED, WT_STREAMS_BLOCKED_BIDI/UNI   error)
DATAGRAM 0x00                                  ``bytes`` (the HTTP datagram payload)
anything else (GREASE included)                skipped: never returned, never buffered
=============================================  =============================================

Errors raise :class:`pywebtransport.exceptions.CapsuleError` with ``error_code``
H3_MESSAGE_ERROR for malformed values (CLOSE shorter than 4 bytes, reason over 1024 bytes
or not UTF-8, varint capsule not exactly one varint) and H3_EXCESSIVE_LOAD for a known
capsule longer than ``max_capsule_size``. After an error the parser stays failed.

Bad arguments raise TypeError (not an integer, not bytes-like, a reason that is not a str)
or ValueError (out of range), naming the argument, the same in both variants.
"""

from typing import Final

KNOWN_CAPSULE_TYPES: Final[frozenset[int]]

CapsuleValue = tuple[int, str] | int | bytes | None

def encode_capsule(capsule_type: int, value: bytes | bytearray | memoryview) -> bytes:
    """type varint + length varint + value (any bytes-like object)."""

def encode_close_session(error_code: int, reason: str = "") -> bytes:
    """A whole WT_CLOSE_SESSION capsule. ValueError if error_code is not a u32 or the
    reason's UTF-8 exceeds 1024 bytes; TypeError if reason is not a str."""

def encode_drain_session() -> bytes: ...

def encode_varint_capsule(capsule_type: int, value: int) -> bytes:
    """A capsule whose value is one varint (MAX_DATA, MAX_STREAMS, *_BLOCKED)."""

class CapsuleParser:
    def __init__(self, *, max_capsule_size: int = ..., report_unknown: bool = False) -> None:
        """Default ``constants.DEFAULT_MAX_CAPSULE_SIZE``; ValueError if < 1, TypeError if not an
        integer, values above 2**62-1 (the longest capsule there can be) act as 2**62-1. Unknown (and
        GREASE) capsules are skipped; with ``report_unknown`` each is also returned, once
        skipped, as ``(type, None)``, so a caller can tell that bytes followed a capsule."""
    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, CapsuleValue]]: ...
    @property
    def buffered(self) -> int: ...
    @property
    def in_capsule(self) -> bool:
        """True when stopped mid-capsule."""
