"""QUIC variable-length integers (RFC 9000 §16) and a byte reader/writer, in pure Python.

Twin of the compiled ``buffer.pyx``: same names, results and exceptions; ``buffer.pyi`` is
the contract. Input may be any C-contiguous buffer (bytes, bytearray, memoryview); its raw
bytes are read. A non-contiguous view raises ``BufferError`` in both variants.
"""

from __future__ import annotations

import operator
from typing import Final

from pywebtransport.constants import VARINT_MAX
from pywebtransport.exceptions import BufferReadError

__all__ = ["VARINT_MAX", "BufferReadError", "Reader", "Writer", "decode_varint", "encode_varint", "varint_size"]

# Indexed by the two top bits of the first byte (RFC 9000 §16, table 4).
_LENGTHS: Final = (1, 2, 4, 8)
_MASKS: Final = (0x3F, 0x3FFF, 0x3FFFFFFF, 0x3FFFFFFFFFFFFFFF)

_Bytes = bytes | bytearray | memoryview


def _byte_view(data: _Bytes) -> bytes | bytearray | memoryview:
    """``data`` itself when indexing it yields bytes, else a flat unsigned-byte view of it."""
    if type(data) is bytes or type(data) is bytearray:
        return data
    view = memoryview(data)
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _varint_range_error(value: int) -> ValueError:
    return ValueError(f"varint value out of range [0, 2**62-1]: {value}")


def _uint_range_error(value: int, bits: int) -> ValueError:
    return ValueError(f"value out of range for uint{bits}: {value}")


def encode_varint(value: int) -> bytes:
    """The shortest encoding of ``value``. ValueError if value < 0 or > VARINT_MAX."""
    if type(value) is not int:
        value = operator.index(value)
    if value < 0:
        raise _varint_range_error(value)
    if value <= 0x3F:
        return bytes((value,))
    if value <= 0x3FFF:
        return int.to_bytes(value | 0x4000, 2, "big")
    if value <= 0x3FFFFFFF:
        return int.to_bytes(value | 0x80000000, 4, "big")
    if value <= VARINT_MAX:
        return int.to_bytes(value | 0xC000000000000000, 8, "big")
    raise _varint_range_error(value)


def varint_size(value: int) -> int:
    """Bytes the shortest encoding of ``value`` takes (1, 2, 4 or 8). ValueError as above."""
    if type(value) is not int:
        value = operator.index(value)
    if value < 0:
        raise _varint_range_error(value)
    if value <= 0x3F:
        return 1
    if value <= 0x3FFF:
        return 2
    if value <= 0x3FFFFFFF:
        return 4
    if value <= VARINT_MAX:
        return 8
    raise _varint_range_error(value)


def decode_varint(data: _Bytes, offset: int = 0) -> tuple[int, int]:
    """Decode one varint at ``offset``: returns ``(value, offset_after)``.

    BufferReadError when the data ends before the varint does (or offset is past the end);
    ValueError for a negative offset.
    """
    if type(offset) is not int:
        offset = operator.index(offset)
    if offset < 0:
        raise ValueError(f"offset must not be negative: {offset}")
    if type(data) is not bytes and type(data) is not bytearray:
        data = _byte_view(data)
    try:
        first = data[offset]
    except IndexError:
        raise BufferReadError("varint: offset is past the end of the data") from None
    kind = first >> 6
    if kind == 0:
        return first, offset + 1
    end = offset + _LENGTHS[kind]
    if end > len(data):
        raise BufferReadError("varint: data ends inside a varint")
    return int.from_bytes(data[offset:end], "big") & _MASKS[kind], end


class Reader:
    """Reads a fixed byte string front to back; every read past the end raises BufferReadError.

    The input is copied once (unless it is ``bytes``), so a bytearray the caller keeps
    mutating neither changes what is read nor gets locked against resizing.
    """

    __slots__ = ("_data", "_length", "_pos")

    def __init__(self, data: _Bytes) -> None:
        view = _byte_view(data)
        self._data: bytes = view if type(view) is bytes else bytes(view)
        self._length = len(self._data)
        self._pos = 0

    def pull_varint(self) -> int:
        data = self._data
        pos = self._pos
        try:
            first = data[pos]
        except IndexError:
            raise BufferReadError("varint: read past the end of the data") from None
        kind = first >> 6
        if kind == 0:
            self._pos = pos + 1
            return first
        end = pos + _LENGTHS[kind]
        if end > self._length:
            raise BufferReadError("varint: data ends inside a varint")
        self._pos = end
        if kind == 1:
            return (first & 0x3F) << 8 | data[pos + 1]
        return int.from_bytes(data[pos:end], "big") & _MASKS[kind]

    def pull_uint8(self) -> int:
        pos = self._pos
        try:
            value = self._data[pos]
        except IndexError:
            raise BufferReadError("uint8: read past the end of the data") from None
        self._pos = pos + 1
        return value

    def pull_uint16(self) -> int:
        """Big-endian (network order), as are uint32."""
        return int.from_bytes(self._take(2, "uint16"), "big")

    def pull_uint32(self) -> int:
        return int.from_bytes(self._take(4, "uint32"), "big")

    def pull_bytes(self, length: int) -> bytes:
        """Exactly ``length`` bytes; ValueError if length < 0."""
        if type(length) is not int:
            length = operator.index(length)
        if length < 0:
            raise ValueError(f"length must not be negative: {length}")
        return self._take(length, "bytes")

    def pull_rest(self) -> bytes:
        """Everything not read yet (possibly empty)."""
        pos = self._pos
        self._pos = self._length
        return self._data[pos:]

    def tell(self) -> int:
        return self._pos

    def seek(self, position: int) -> None:
        """Move to an absolute position; ValueError outside [0, len]."""
        if type(position) is not int:
            position = operator.index(position)
        if not 0 <= position <= self._length:
            raise ValueError(f"seek position {position} outside [0, {self._length}]")
        self._pos = position

    def eof(self) -> bool:
        return self._pos >= self._length

    def remaining(self) -> int:
        return self._length - self._pos

    def _take(self, size: int, what: str) -> bytes:
        pos = self._pos
        end = pos + size
        if end > self._length:
            raise BufferReadError(f"{what}: need {size} bytes, {self._length - pos} left")
        self._pos = end
        return self._data[pos:end]


class Writer:
    """Builds a byte string; ``getvalue()`` returns everything pushed so far."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def push_varint(self, value: int) -> None:
        """ValueError as encode_varint."""
        if type(value) is not int:
            value = operator.index(value)
        if value < 0:
            raise _varint_range_error(value)
        if value <= 0x3F:
            self._buf.append(value)
        elif value <= 0x3FFF:
            self._buf += int.to_bytes(value | 0x4000, 2, "big")
        elif value <= 0x3FFFFFFF:
            self._buf += int.to_bytes(value | 0x80000000, 4, "big")
        elif value <= VARINT_MAX:
            self._buf += int.to_bytes(value | 0xC000000000000000, 8, "big")
        else:
            raise _varint_range_error(value)

    def push_uint8(self, value: int) -> None:
        """ValueError if value does not fit (likewise uint16/uint32)."""
        if type(value) is not int:
            value = operator.index(value)
        if not 0 <= value <= 0xFF:
            raise _uint_range_error(value, 8)
        self._buf.append(value)

    def push_uint16(self, value: int) -> None:
        if type(value) is not int:
            value = operator.index(value)
        if not 0 <= value <= 0xFFFF:
            raise _uint_range_error(value, 16)
        self._buf += int.to_bytes(value, 2, "big")

    def push_uint32(self, value: int) -> None:
        if type(value) is not int:
            value = operator.index(value)
        if not 0 <= value <= 0xFFFFFFFF:
            raise _uint_range_error(value, 32)
        self._buf += int.to_bytes(value, 4, "big")

    def push_bytes(self, data: _Bytes) -> None:
        self._buf += _byte_view(data)

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def tell(self) -> int:
        return len(self._buf)

    def __len__(self) -> int:
        return len(self._buf)
