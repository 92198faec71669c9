"""Capsules (RFC 9297 §3) and WebTransport capsules, pure Python twin of ``capsules.pyx``."""

from __future__ import annotations

from pywebtransport import constants as c
from pywebtransport._wire._args_py import as_bytes, as_index, as_size
from pywebtransport._wire._varint_py import encode, read
from pywebtransport.exceptions import CapsuleError

__all__ = [
    "KNOWN_CAPSULE_TYPES",
    "CapsuleParser",
    "encode_capsule",
    "encode_close_session",
    "encode_drain_session",
    "encode_varint_capsule",
]

CapsuleValue = tuple[int, str] | int | bytes | None

# Plain ints: a lookup of an int among IntEnum members compares through the subclass.
_VARINT_CAPSULES = frozenset(int(capsule_type) for capsule_type in (
    c.WT_CAPSULE_MAX_DATA, c.WT_CAPSULE_MAX_STREAMS_BIDI, c.WT_CAPSULE_MAX_STREAMS_UNI,
    c.WT_CAPSULE_DATA_BLOCKED, c.WT_CAPSULE_STREAMS_BLOCKED_BIDI, c.WT_CAPSULE_STREAMS_BLOCKED_UNI,
))
KNOWN_CAPSULE_TYPES = _VARINT_CAPSULES | {int(c.CAPSULE_DATAGRAM), int(c.WT_CAPSULE_CLOSE_SESSION),
                                          int(c.WT_CAPSULE_DRAIN_SESSION)}
_U32_MAX = 0xFFFFFFFF
_CLOSE = encode(c.WT_CAPSULE_CLOSE_SESSION, "capsule_type")
_DRAIN = encode(c.WT_CAPSULE_DRAIN_SESSION, "capsule_type")


def _read_header(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(type, length, position after) of a capsule header, or None when incomplete."""
    capsule_type, after = read(data, pos)
    if after < 0:
        return None
    length, after = read(data, after)
    if after < 0:
        return None
    return capsule_type, length, after


def _capsule(head: bytes, value: bytes) -> bytes:
    """The encoded type ``head`` + length varint + value."""
    return b"".join((head, encode(len(value), "value"), value))


def encode_capsule(capsule_type: int, value: bytes | bytearray | memoryview) -> bytes:
    """type varint + length varint + value."""
    head = encode(capsule_type, "capsule_type")  # checked first, as in the compiled twin
    return _capsule(head, value if type(value) is bytes else as_bytes(value, "value"))


def encode_close_session(error_code: int, reason: str = "") -> bytes:
    """A whole WT_CLOSE_SESSION capsule (draft-15 §6)."""
    code = error_code if type(error_code) is int else as_index(error_code, "error_code")
    if not 0 <= code <= _U32_MAX:
        raise ValueError(f"error_code must be in [0, 0xffffffff], got {code}")
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a str, not {type(reason).__name__}")
    raw = reason.encode("utf-8")
    if len(raw) > c.CLOSE_REASON_MAX_BYTES:
        raise ValueError(f"close reason is {len(raw)} bytes of UTF-8; at most {c.CLOSE_REASON_MAX_BYTES} allowed")
    return _capsule(_CLOSE, code.to_bytes(4, "big") + raw)


def encode_drain_session() -> bytes:
    """A whole WT_DRAIN_SESSION capsule (empty value)."""
    return _capsule(_DRAIN, b"")


def encode_varint_capsule(capsule_type: int, value: int) -> bytes:
    """A capsule whose value is one varint (WT_MAX_DATA, WT_MAX_STREAMS_*, WT_*_BLOCKED)."""
    head = encode(capsule_type, "capsule_type")  # checked first, as in the compiled twin
    return _capsule(head, encode(value, "value"))


def _decode_value(capsule_type: int, value: bytes) -> CapsuleValue:
    if capsule_type == c.WT_CAPSULE_CLOSE_SESSION:
        if len(value) < 4:
            raise CapsuleError(f"WT_CLOSE_SESSION of {len(value)} bytes is shorter than its 4-byte code")
        if len(value) - 4 > c.CLOSE_REASON_MAX_BYTES:
            raise CapsuleError(f"WT_CLOSE_SESSION reason of {len(value) - 4} bytes exceeds "
                               f"{c.CLOSE_REASON_MAX_BYTES}")
        try:
            reason = value[4:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CapsuleError("WT_CLOSE_SESSION reason is not valid UTF-8") from exc
        return int.from_bytes(value[:4], "big"), reason
    if capsule_type == c.WT_CAPSULE_DRAIN_SESSION:
        return None
    if capsule_type == c.CAPSULE_DATAGRAM:
        return value
    number, after = read(value, 0)
    if after != len(value):
        raise CapsuleError(f"capsule {capsule_type:#x} must hold exactly one varint")
    return number


class CapsuleParser:
    """Incremental capsule parser for one CONNECT stream (see capsules.pyi)."""

    __slots__ = ("_failed", "_head", "_max", "_need", "_report", "_skip", "_skip_type", "_type", "_value")

    def __init__(self, *, max_capsule_size: int = c.DEFAULT_MAX_CAPSULE_SIZE, report_unknown: bool = False) -> None:
        # No capsule can be longer than the largest varint, so the clamp changes nothing.
        self._max = as_size(max_capsule_size, "max_capsule_size", c.VARINT_MAX)
        self._report = bool(report_unknown)
        self._skip_type = 0
        self._head = bytearray()  # a capsule header split across feeds (at most 16 bytes)
        self._type = -1  # known capsule being collected, -1 when none
        self._need = 0
        self._value = bytearray()
        self._skip = 0  # bytes of an unknown capsule still to skip
        self._failed = False

    @property
    def buffered(self) -> int:
        return len(self._head) + len(self._value)

    @property
    def in_capsule(self) -> bool:
        return bool(self._head) or self._type >= 0 or self._skip > 0

    def _fail(self, error: CapsuleError) -> CapsuleError:
        self._failed = True
        return error

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, CapsuleValue]]:
        if self._failed:
            raise CapsuleError("the capsule parser failed earlier; the stream is unusable")
        out: list[tuple[int, CapsuleValue]] = []
        view = data if type(data) is bytes else as_bytes(data, "data")
        pos, end = 0, len(view)
        while True:
            if self._skip:
                take = min(self._skip, end - pos)
                pos += take
                self._skip -= take
                if self._skip:
                    return out
                if self._report:
                    out.append((self._skip_type, None))
            if self._type >= 0:
                take = min(self._need - len(self._value), end - pos)
                self._value += view[pos:pos + take]
                pos += take
                if len(self._value) < self._need:
                    return out
                capsule_type, self._type = self._type, -1
                value, self._value = bytes(self._value), bytearray()
                try:
                    out.append((capsule_type, _decode_value(capsule_type, value)))
                except CapsuleError as exc:
                    raise self._fail(exc) from None
                continue
            if pos >= end:
                return out
            # A header: type varint + length varint, possibly split across feeds.
            held = len(self._head)
            chunk = bytes(self._head) + bytes(view[pos:pos + 16]) if held else view
            start = 0 if held else pos
            header = _read_header(chunk, start)
            if header is None:
                self._head += view[pos:end]  # less than a whole header: at most 15 bytes
                return out
            capsule_type, length, after = header
            pos = pos + (after - held) if held else after
            self._head.clear()
            if capsule_type in KNOWN_CAPSULE_TYPES:
                if length > self._max:
                    raise self._fail(CapsuleError(f"capsule {capsule_type:#x} of {length} bytes exceeds the "
                                                  f"limit of {self._max}", error_code=c.H3_EXCESSIVE_LOAD))
                # Lengths no valid capsule of the type has are refused before any byte is held.
                if length > 8 and capsule_type in _VARINT_CAPSULES:
                    raise self._fail(CapsuleError(f"capsule {capsule_type:#x} declares {length} bytes; it must "
                                                  "hold exactly one varint"))
                if capsule_type == c.WT_CAPSULE_CLOSE_SESSION and length > 4 + c.CLOSE_REASON_MAX_BYTES:
                    raise self._fail(CapsuleError(f"WT_CLOSE_SESSION declares {length} bytes; its reason may "
                                                  f"hold at most {c.CLOSE_REASON_MAX_BYTES}"))
                self._type = capsule_type
                self._need = length
            elif length == 0:
                if self._report:
                    out.append((capsule_type, None))
            else:
                self._skip = length
                self._skip_type = capsule_type
