"""QUIC variable-length integers (RFC 9000 §16) and a byte reader/writer.

Errors: truncated input raises :class:`pywebtransport.exceptions.BufferReadError`;
encoding a value above ``VARINT_MAX`` (2**62-1) or below 0 raises ``ValueError``.
Decoders accept non-minimal encodings (``4025`` decodes to 37).
"""

from typing import Final

from pywebtransport.exceptions import BufferReadError as BufferReadError

VARINT_MAX: Final[int]

def encode_varint(value: int) -> bytes:
    """The shortest encoding of ``value``. ValueError if value < 0 or > VARINT_MAX."""

def varint_size(value: int) -> int:
    """Bytes the shortest encoding of ``value`` takes (1, 2, 4 or 8). ValueError as above."""

def decode_varint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode one varint at ``offset``: returns ``(value, offset_after)``.

    BufferReadError when the data ends before the varint does (or offset is past the end).
    """

class Reader:
    """Reads a fixed byte string front to back; every read past the end raises BufferReadError."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None: ...
    def pull_varint(self) -> int: ...
    def pull_uint8(self) -> int: ...
    def pull_uint16(self) -> int:
        """Big-endian (network order), as are uint32."""
    def pull_uint32(self) -> int: ...
    def pull_bytes(self, length: int) -> bytes:
        """Exactly ``length`` bytes; ValueError if length < 0."""
    def pull_rest(self) -> bytes:
        """Everything not read yet (possibly empty)."""
    def tell(self) -> int: ...
    def seek(self, position: int) -> None:
        """Move to an absolute position; ValueError outside [0, len]."""
    def eof(self) -> bool: ...
    def remaining(self) -> int: ...

class Writer:
    """Builds a byte string; ``getvalue()`` returns everything pushed so far."""

    def __init__(self) -> None: ...
    def push_varint(self, value: int) -> None:
        """ValueError as encode_varint."""
    def push_uint8(self, value: int) -> None:
        """ValueError if value does not fit (likewise uint16/uint32)."""
    def push_uint16(self, value: int) -> None: ...
    def push_uint32(self, value: int) -> None: ...
    def push_bytes(self, data: bytes | bytearray | memoryview) -> None: ...
    def getvalue(self) -> bytes: ...
    def tell(self) -> int: ...
    def __len__(self) -> int: ...
