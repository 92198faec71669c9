"""QUIC variable-length integers (RFC 9000 §16): the one varint codec of the pure modules.

Every pure ``_wire`` module encodes and decodes varints here and nowhere else; the compiled
modules share ``_varint.pxd`` the same way. An argument that is not a varint value raises
what ``_varint.pxd``'s ``as_varint`` raises: TypeError unless it is an integer, ValueError
outside [0, 2**62-1], both naming the argument.
"""

from __future__ import annotations

from typing import Final

from pywebtransport._wire._args_py import as_index
from pywebtransport.constants import VARINT_MAX

__all__ = ["VARINT_MAX", "as_varint", "encode", "length", "read", "size"]

# Indexed by the two top bits of the first byte (RFC 9000 §16, table 4).
_LENGTHS: Final = (1, 2, 4, 8)
_MASKS: Final = (0x3F, 0x3FFF, 0x3FFFFFFF, 0x3FFFFFFFFFFFFFFF)
_ONE_BYTE: Final = tuple(bytes((i,)) for i in range(64))


def as_varint(value: object, name: str) -> int:
    """``value`` as a varint value; TypeError / ValueError naming ``name`` otherwise."""
    number = value if type(value) is int else as_index(value, name)
    if not 0 <= number <= VARINT_MAX:
        raise ValueError(f"{name} must be in [0, 2**62-1], got {number}")
    return number


def encode(value: object, name: str) -> bytes:
    """The shortest encoding of ``value`` (``name`` is the argument it came from, for errors)."""
    number = value if type(value) is int else as_index(value, name)
    if 0 <= number <= 0x3F:
        return _ONE_BYTE[number]
    if 0 <= number <= 0x3FFF:
        return (number | 0x4000).to_bytes(2, "big")
    if 0 <= number <= 0x3FFFFFFF:
        return (number | 0x80000000).to_bytes(4, "big")
    if 0 <= number <= VARINT_MAX:
        return (number | 0xC000000000000000).to_bytes(8, "big")
    raise ValueError(f"{name} must be in [0, 2**62-1], got {number}")


def size(value: object, name: str) -> int:
    """Bytes the shortest encoding of ``value`` takes: 1, 2, 4 or 8."""
    number = as_varint(value, name)
    return 1 if number <= 0x3F else 2 if number <= 0x3FFF else 4 if number <= 0x3FFFFFFF else 8


def length(first: int) -> int:
    """Bytes a varint takes, from its first byte: 1, 2, 4 or 8."""
    return _LENGTHS[first >> 6]


def read(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """``(value, position after)`` of the varint at ``data[pos]`` (``pos >= 0``), or
    ``(-1, -1)`` when the data ends first. ``data`` indexes to ints (bytes, bytearray,
    or a one-dimensional unsigned-byte view)."""
    try:
        first = data[pos]
    except IndexError:
        return -1, -1
    kind = first >> 6
    if kind == 0:
        return first, pos + 1
    end = pos + _LENGTHS[kind]
    if end > len(data):
        return -1, -1
    if kind == 1:
        return (first & 0x3F) << 8 | data[pos + 1], end
    return int.from_bytes(data[pos:end], "big") & _MASKS[kind], end
