"""QUIC variable-length integers (RFC 9000 §16) and a byte reader, in pure Python.

Twin of the compiled ``buffer.pyx``: same names, results and exceptions; ``buffer.pyi`` is
the contract. The varint codec itself is ``_varint_py``, shared by every pure module. Input
may be any bytes-like object; its bytes are read as ``memoryview(data).tobytes()`` gives
them (a non-contiguous view is read through a copy, as in the compiled twin).
"""

from __future__ import annotations

from pywebtransport._wire._args_py import as_bytes, as_index
from pywebtransport._wire._varint_py import VARINT_MAX, encode, read
from pywebtransport.exceptions import BufferReadError

__all__ = ["VARINT_MAX", "BufferReadError", "Reader", "decode_varint", "encode_varint"]

_Bytes = bytes | bytearray | memoryview


def _readable(data: object) -> bytes | bytearray | memoryview:
    """``data`` itself when indexing it yields byte values, else its bytes (a copy)."""
    if type(data) is bytes or type(data) is bytearray:
        return data
    if type(data) is memoryview and data.format == "B" and data.ndim == 1 and data.c_contiguous:
        return data
    return as_bytes(data, "data")


def encode_varint(value: int) -> bytes:
    """The shortest encoding of ``value``. TypeError unless an integer; ValueError if value < 0
    or > VARINT_MAX."""
    return encode(value, "value")


def decode_varint(data: _Bytes, offset: int = 0) -> tuple[int, int]:
    """Decode one varint at ``offset``: returns ``(value, offset_after)``.

    BufferReadError when the data ends before the varint does (or offset is past the end);
    ValueError for a negative offset.
    """
    if type(offset) is not int:
        offset = as_index(offset, "offset")
    if offset < 0:
        raise ValueError(f"offset must not be negative: {offset}")
    view = _readable(data)
    value, end = read(view, offset)
    if end < 0:
        if offset >= len(view):
            raise BufferReadError("varint: offset is past the end of the data")
        raise BufferReadError("varint: data ends inside a varint")
    return value, end


class Reader:
    """Reads a fixed byte string front to back; every read past the end raises BufferReadError.

    The input is copied once (unless it is ``bytes``), so a bytearray the caller keeps
    mutating neither changes what is read nor gets locked against resizing.
    """

    __slots__ = ("_data", "_length", "_pos")

    def __init__(self, data: _Bytes) -> None:
        self._data: bytes = as_bytes(data, "data")
        self._length = len(self._data)
        self._pos = 0

    def pull_varint(self) -> int:
        value, end = read(self._data, self._pos)
        if end < 0:
            if self._pos >= self._length:
                raise BufferReadError("varint: read past the end of the data")
            raise BufferReadError("varint: data ends inside a varint")
        self._pos = end
        return value

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
            length = as_index(length, "length")
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
