"""The wire format of structured messages, sans I/O.

On a stream every message is one frame::

    length (uint32, big-endian) | type id (QUIC varint, RFC 9000 §16) | payload

where ``length`` counts the type id and the payload (the frame *body*). A datagram carries
one body and no length, since the datagram itself delimits it. ``max_message_size`` bounds
the body on both sides.

:class:`FrameDecoder` is fed bytes as they arrive and hands back whole frames, returning
``None`` while it needs more data. Because the length comes first, a frame that cannot be
used (unknown type, bad payload, too large) is consumed whole and the next one decodes
normally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pywebtransport._wire import buffer as wire_buffer
from pywebtransport.exceptions import BufferReadError
from pywebtransport.messaging.exceptions import MessageTooLargeError, SerializationError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FRAME_HEADER_SIZE",
    "MAX_FRAME_BODY_SIZE",
    "Frame",
    "FrameDecoder",
    "decode_body",
    "encode_body",
    "encode_frame",
]

#: Default bound on a message body (type id + payload): 1 MiB.
DEFAULT_MAX_MESSAGE_SIZE: Final = 1 << 20
#: Bytes of the length prefix on a stream.
FRAME_HEADER_SIZE: Final = 4
#: The largest body a uint32 length can describe.
MAX_FRAME_BODY_SIZE: Final = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded message: the registry's type id and the serializer's bytes."""

    type_id: int
    payload: bytes


def check_max_message_size(value: int) -> int:
    """Validate a ``max_message_size`` setting (1 .. 2**32-1) and return it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_FRAME_BODY_SIZE:
        raise ValueError(f"max_message_size must be an int in 1..{MAX_FRAME_BODY_SIZE}, got {value!r}")
    return value


def encode_body(type_id: int, payload: bytes) -> bytes:
    """The type id as a varint followed by the payload (ValueError for an invalid id)."""
    return wire_buffer.encode_varint(type_id) + payload


def decode_body(body: bytes | bytearray | memoryview) -> Frame:
    """Split a body into type id and payload; SerializationError if there is no whole id."""
    if not body:
        raise SerializationError("empty message: no type id")
    try:
        type_id, offset = wire_buffer.decode_varint(body, 0)
    except BufferReadError:
        raise SerializationError("malformed message: truncated type id") from None
    return Frame(type_id, bytes(body[offset:]))


def encode_frame(type_id: int, payload: bytes, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """A whole stream frame; MessageTooLargeError if the body exceeds ``max_message_size``."""
    body = encode_body(type_id, payload)
    if len(body) > max_message_size:
        raise MessageTooLargeError(size=len(body), limit=max_message_size)
    return len(body).to_bytes(FRAME_HEADER_SIZE, "big") + body


class FrameDecoder:
    """Reassembles stream frames from arbitrary chunks.

    ``next_frame()`` returns a :class:`Frame`, or ``None`` when more bytes are needed.
    It raises :class:`MessageTooLargeError` as soon as an oversized header is seen (the
    body is then skipped as it arrives) and :class:`SerializationError` for a body without
    a valid type id; in both cases the frame is consumed and decoding can go on.
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._max = check_max_message_size(max_message_size)
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversized body still to discard

    @property
    def max_message_size(self) -> int:
        return self._max

    @property
    def buffered(self) -> int:
        """Bytes held that do not form a whole frame yet."""
        return len(self._buffer)

    @property
    def in_frame(self) -> bool:
        """True when part of a frame has been received (an end of stream now truncates it)."""
        return bool(self._buffer) or self._skip > 0

    def bytes_needed(self) -> int:
        """How many more bytes complete the current header, frame or skipped body (>= 1).

        Reading no more than this keeps at most one frame buffered, so the peer's flow
        control window is only opened as fast as messages are consumed.
        """
        if self._skip:
            return self._skip
        have = len(self._buffer)
        if have < FRAME_HEADER_SIZE:
            return FRAME_HEADER_SIZE - have
        length = int.from_bytes(self._buffer[:FRAME_HEADER_SIZE], "big")
        if length > self._max:
            return 1  # next_frame() reports it without waiting for anything
        return max(1, FRAME_HEADER_SIZE + length - have)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes (what belongs to a skipped body is dropped at once)."""
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = memoryview(data)[dropped:]
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """The next whole frame, or None if more bytes are needed."""
        if self._skip:
            return None
        buffer = self._buffer
        if len(buffer) < FRAME_HEADER_SIZE:
            return None
        length = int.from_bytes(buffer[:FRAME_HEADER_SIZE], "big")
        if length > self._max:
            available = len(buffer) - FRAME_HEADER_SIZE
            dropped = min(length, available)
            del buffer[:FRAME_HEADER_SIZE + dropped]
            self._skip = length - dropped
            raise MessageTooLargeError(f"received a message of {length} bytes, over the limit of {self._max} bytes",
                                       size=length, limit=self._max)
        end = FRAME_HEADER_SIZE + length
        if len(buffer) < end:
            return None
        body = bytes(buffer[FRAME_HEADER_SIZE:end])
        del buffer[:end]
        return decode_body(body)
