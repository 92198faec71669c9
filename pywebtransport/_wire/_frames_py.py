"""HTTP/3 frames (RFC 9114 §7) and stream preambles: the pure-Python twin of ``frames.pyx``.

Same names, same results and the same exceptions as the compiled module; see ``frames.pyi``
for the contract. The parser works on ``bytes`` slices so that each frame costs a handful of
C-level operations rather than a Python step per byte.
"""

from __future__ import annotations

from typing import Final

from pywebtransport import constants as c
from pywebtransport._wire._args_py import as_bytes, as_size
from pywebtransport._wire._varint_py import as_varint, encode, read
from pywebtransport.exceptions import FrameError, SettingsError

__all__ = [
    "KNOWN_FRAME_TYPES",
    "FrameParser",
    "decode_settings",
    "encode_bidi_stream_header",
    "encode_frame",
    "encode_frame_header",
    "encode_settings",
    "encode_uni_stream_header",
    "read_bidi_stream_header",
    "read_uni_stream_header",
]

#: Frame types the parser reports; every other type is skipped unseen (RFC 9114 §7.2, §9).
KNOWN_FRAME_TYPES: Final[frozenset[int]] = frozenset(int(frame_type) for frame_type in (
    c.FRAME_DATA,
    c.FRAME_HEADERS,
    c.FRAME_CANCEL_PUSH,
    c.FRAME_SETTINGS,
    c.FRAME_PUSH_PROMISE,
    c.FRAME_GOAWAY,
    c.FRAME_MAX_PUSH_ID,
    *c.H3_HTTP2_ONLY_FRAMES,
))  # plain ints: a lookup of an int among IntEnum members compares through the subclass
# Known types other than DATA: these are buffered whole before being reported.
_BUFFERED_TYPES: Final = KNOWN_FRAME_TYPES - {int(c.FRAME_DATA)}
# CANCEL_PUSH, GOAWAY, MAX_PUSH_ID: one varint each (RFC 9114 §7.2), so at most 8 bytes.
_VARINT_TYPES: Final = frozenset({int(c.FRAME_CANCEL_PUSH), int(c.FRAME_GOAWAY), int(c.FRAME_MAX_PUSH_ID)})
_VARINT_MAX_LEN = 8

# HTTP/2 setting identifiers with no HTTP/3 meaning; receiving one is H3_SETTINGS_ERROR
# (RFC 9114 §7.2.4.1, registry in §11.2.2).
_RESERVED_SETTINGS: Final = frozenset({0x00, 0x02, 0x03, 0x04, 0x05})

# A frame header is two varints of at most 8 bytes each.
_MAX_HEADER: Final = 16

_BIDI_SIGNAL: Final = b"\x40\x41"  # 0x41 as a two-byte varint (WebTransport draft §4.2)

# Parser states.
_HEADER: Final = 0
_DATA: Final = 1
_BUFFERING: Final = 2
_SKIPPING: Final = 3
_FAILED: Final = 4


def _prefix(data: bytes | bytearray | memoryview) -> bytes:
    # A stream preamble is two varints: 16 bytes are enough, however much was received.
    if type(data) is bytes or type(data) is bytearray:
        return bytes(data[:_MAX_HEADER])
    return as_bytes(data, "data")[:_MAX_HEADER]


def encode_frame_header(frame_type: int, length: int) -> bytes:
    """Just type varint + length varint: lets DATA be sent without copying the payload."""
    return encode(frame_type, "frame_type") + encode(length, "length")


def encode_frame(frame_type: int, payload: bytes | bytearray | memoryview) -> bytes:
    """type varint + length varint + payload."""
    head = encode(frame_type, "frame_type")  # checked first, as in the compiled twin
    payload = payload if type(payload) is bytes else as_bytes(payload, "payload")
    return b"".join((head, encode(len(payload), "payload"), payload))


def encode_settings(settings: dict[int, int]) -> bytes:
    """The SETTINGS frame payload (id varint, value varint)* in insertion order."""
    return b"".join(encode(key, "setting identifier") + encode(value, "setting value")
                    for key, value in settings.items())


def decode_settings(payload: bytes | bytearray | memoryview) -> dict[int, int]:
    """Parse a SETTINGS payload (RFC 9114 §7.2.4).

    SettingsError (H3_SETTINGS_ERROR) for a duplicate identifier or a reserved HTTP/2 one
    (§7.2.4.1); FrameError (H3_FRAME_ERROR) when the payload is truncated mid-varint.
    """
    data = payload if type(payload) is bytes else as_bytes(payload, "payload")
    settings: dict[int, int] = {}
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = read(data, pos)
        if pos >= 0:
            value, pos = read(data, pos)
        if pos < 0:
            raise FrameError("SETTINGS payload ends inside a varint", error_code=c.H3_FRAME_ERROR)
        if key in _RESERVED_SETTINGS:
            raise SettingsError(f"reserved HTTP/2 setting identifier {key:#x}")
        if key in settings:
            raise SettingsError(f"duplicate setting identifier {key:#x}")
        settings[key] = value
    return settings


class FrameParser:
    """Incremental frame parser for one stream."""

    __slots__ = ("_body", "_error", "_error_code", "_head", "_max_frame_size", "_remaining", "_state", "_type")

    def __init__(self, *, max_frame_size: int = c.DEFAULT_MAX_FRAME_SIZE) -> None:
        # No frame can be longer than the largest varint, so this clamp changes nothing.
        self._max_frame_size = as_size(max_frame_size, "max_frame_size", c.VARINT_MAX)
        self._state = _HEADER
        self._type = 0
        self._remaining = 0  # payload bytes of the current frame not seen yet
        self._head = b""  # a frame header cut by the end of a feed (< 16 bytes)
        self._body = bytearray()  # a buffered frame's payload so far
        self._error = ""
        self._error_code = c.H3_EXCESSIVE_LOAD

    @property
    def buffered(self) -> int:
        """Bytes held waiting for a frame to complete (bounded by max_frame_size + 16)."""
        return len(self._head) + len(self._body)

    @property
    def in_frame(self) -> bool:
        """True when the parser stopped mid-frame (for REQUEST_INCOMPLETE / FRAME_ERROR at FIN)."""
        return self._state != _HEADER or bool(self._head)

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]]:
        """Consume ``data``; return the ``(frame_type, payload)`` pairs completed by it."""
        if self._state == _FAILED:
            raise FrameError(f"frame parser already failed: {self._error}", error_code=self._error_code)
        data = data if type(data) is bytes else as_bytes(data, "data")
        out: list[tuple[int, bytes]] = []
        end = len(data)
        pos = 0
        state = self._state
        remaining = self._remaining
        head = self._head
        limit = self._max_frame_size
        buffered_types = _BUFFERED_TYPES

        while pos < end:
            if state == _HEADER:
                if head:
                    # Finish a header cut by the previous feed: it needs at most 16 bytes.
                    joined = head + data[: _MAX_HEADER - len(head)]
                    frame_type, after = read(joined, 0)
                    if after >= 0:
                        length, after = read(joined, after)
                    if after < 0:
                        head = joined
                        pos = end
                        break
                    pos = after - len(head)
                    head = b""
                else:
                    frame_type, after = read(data, pos)
                    if after >= 0:
                        length, after = read(data, after)
                    if after < 0:
                        head = data[pos:]  # fewer than 16 bytes: a header cut by the end of the feed
                        pos = end
                        break
                    pos = after

                if frame_type == c.FRAME_DATA:
                    if length == 0:
                        continue
                    if pos + length <= end:
                        out.append((frame_type, data[pos : pos + length]))
                        pos += length
                        continue
                    if pos < end:
                        out.append((frame_type, data[pos:]))
                    state = _DATA
                    remaining = length - (end - pos)
                    pos = end
                elif frame_type in buffered_types:
                    if length > limit:
                        self._fail(frame_type, length)
                    if length > _VARINT_MAX_LEN and frame_type in _VARINT_TYPES:
                        self._fail_varint(frame_type, length)
                    if pos + length <= end:
                        out.append((frame_type, data[pos : pos + length]))
                        pos += length
                        continue
                    self._type = frame_type
                    self._body += data[pos:]
                    state = _BUFFERING
                    remaining = length - (end - pos)
                    pos = end
                elif frame_type == c.FRAME_WEBTRANSPORT_STREAM:
                    self._fail_signal()
                else:
                    # Unknown and reserved types are skipped (RFC 9114 §7.2.8, §9).
                    if pos + length <= end:
                        pos += length
                        continue
                    state = _SKIPPING
                    remaining = length - (end - pos)
                    pos = end
            else:
                # Only the first iteration of a feed can land here: the frame continues.
                take = min(remaining, end - pos)
                if state == _DATA:
                    out.append((c.FRAME_DATA, data[pos : pos + take]))
                elif state == _BUFFERING:
                    self._body += data[pos : pos + take]
                    if take == remaining:
                        out.append((self._type, bytes(self._body)))
                        self._body = bytearray()
                pos += take
                remaining -= take
                if remaining == 0:
                    state = _HEADER

        self._state = state
        self._remaining = remaining
        self._head = head
        return out

    def _fail(self, frame_type: int, length: int) -> None:
        self._fail_with(f"frame {frame_type:#x} declares {length} bytes, above the limit of {self._max_frame_size}",
                        c.H3_EXCESSIVE_LOAD)

    def _fail_varint(self, frame_type: int, length: int) -> None:
        # RFC 9114 §7.1: bytes after a frame's fields are H3_FRAME_ERROR; refused at the header
        # so that no peer can make us hold a payload that cannot be valid.
        self._fail_with(f"frame {frame_type:#x} declares {length} bytes; its payload is one varint "
                        f"(at most {_VARINT_MAX_LEN})", c.H3_FRAME_ERROR)

    def _fail_signal(self) -> None:
        # Draft-15 §4.2: 0x41 is a stream signal, valid only as a bidi stream's first bytes.
        self._fail_with("WEBTRANSPORT_STREAM (0x41) appears as a frame; it may only open a bidirectional stream",
                        c.H3_FRAME_ERROR)

    def _fail_with(self, message: str, code: c.H3ErrorCode) -> None:
        """Fail for good with ``message``: every later feed raises the same FrameError."""
        self._error = message
        self._error_code = code
        self._state = _FAILED
        self._head = b""
        self._body = bytearray()
        raise FrameError(message, error_code=code)


def encode_uni_stream_header(stream_type: int, session_id: int | None = None) -> bytes:
    """Stream type varint, plus the session id varint for WebTransport (0x54) streams.

    ValueError when a WebTransport stream has no session id or another type has one.
    """
    kind = as_varint(stream_type, "stream_type")
    if kind == c.STREAM_TYPE_WEBTRANSPORT:
        if session_id is None:
            raise ValueError("a WebTransport unidirectional stream needs a session id")
        return encode(kind, "stream_type") + encode(session_id, "session_id")
    if session_id is not None:
        raise ValueError(f"stream type {kind:#x} carries no session id")
    return encode(kind, "stream_type")


def encode_bidi_stream_header(session_id: int) -> bytes:
    """``0x41`` (encoded as two bytes 0x40 0x41) + session id varint (draft §4.2)."""
    return _BIDI_SIGNAL + encode(session_id, "session_id")


def read_uni_stream_header(data: bytes | bytearray | memoryview) -> tuple[int, int, int] | None:
    """Parse the start of a peer's unidirectional stream (RFC 9114 §6.2, draft §4.1).

    Returns ``(stream_type, session_id, consumed)``; ``session_id`` is -1 unless the type is
    0x54 (WebTransport). ``None`` when more bytes are needed.
    """
    raw = _prefix(data)
    stream_type, pos = read(raw, 0)
    if pos < 0:
        return None
    if stream_type != c.STREAM_TYPE_WEBTRANSPORT:
        return stream_type, -1, pos
    session_id, pos = read(raw, pos)
    if pos < 0:
        return None
    return stream_type, session_id, pos


def read_bidi_stream_header(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """Parse the start of a peer's bidirectional stream (draft §4.2).

    Returns ``(session_id, consumed)`` when it begins with the 0x41 signal (in any varint
    encoding), ``(-1, 0)`` for an ordinary HTTP/3 request stream, ``None`` when more bytes
    are needed to tell.
    """
    raw = _prefix(data)
    signal, pos = read(raw, 0)
    if pos < 0:
        return None
    if signal != c.FRAME_WEBTRANSPORT_STREAM:
        return -1, 0
    session_id, pos = read(raw, pos)
    if pos < 0:
        return None
    return session_id, pos
