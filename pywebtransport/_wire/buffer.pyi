"""QUIC variable-length integers (RFC 9000 §16) and a byte reader.

Errors: truncated input raises :class:`pywebtransport.exceptions.BufferReadError`;
encoding a value above ``VARINT_MAX`` (2**62-1) or below 0 raises ``ValueError``, a value
that is not an integer ``TypeError`` (both naming the argument). Decoders accept
non-minimal encodings (``4025`` decodes to 37) and any bytes-like input (a non-contiguous
view is read as ``memoryview(data).tobytes()`` gives it).
"""

from typing import Final

from pywebtransport.exceptions import BufferReadError as BufferReadError

VARINT_MAX: Final[int]

def encode_varint(value: int) -> bytes:
    """The shortest encoding of ``value``. ValueError if value < 0 or > VARINT_MAX."""

def decode_varint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode one varint at ``offset``: returns ``(value, offset_after)``.

    BufferReadError when the data ends before the varint does (or offset is past the end);
    ValueError for a negative offset.
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
    def eof(self) -> bool: ...
    def remaining(self) -> int: ...
