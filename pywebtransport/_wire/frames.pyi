"""HTTP/3 frames (RFC 9114 §7) and stream preambles (RFC 9114 §6.2, WebTransport draft §4).

``FrameParser`` is incremental: feeding the bytes of a stream in any chunking yields the
same frames as feeding them at once. DATA payload is handed out as it arrives, never
buffered; other known frames are buffered up to ``max_frame_size``; frames of unknown or
reserved types are skipped without buffering. Parse errors raise
:class:`pywebtransport.exceptions.FrameError` (or its subclass ``SettingsError``).

Any bytes-like input is accepted (a non-contiguous view is read as
``memoryview(data).tobytes()`` gives it). Bad arguments raise TypeError (not an integer,
not bytes-like) or ValueError (a varint outside [0, 2**62-1]), naming the argument, the
same in both variants.
"""

from typing import Final

#: Frame types the parser reports; every other type is skipped unseen.
#: 0x00 DATA (streamed), 0x01 HEADERS, 0x03 CANCEL_PUSH, 0x04 SETTINGS, 0x05 PUSH_PROMISE,
#: 0x07 GOAWAY, 0x0d MAX_PUSH_ID, and the HTTP/2-only 0x02, 0x06, 0x08, 0x09 (reported so
#: that the caller can treat them as the connection error RFC 9114 §7.2.8 makes them).
KNOWN_FRAME_TYPES: Final[frozenset[int]]

def encode_frame(frame_type: int, payload: bytes | bytearray | memoryview) -> bytes:
    """type varint + length varint + payload."""

def encode_frame_header(frame_type: int, length: int) -> bytes:
    """Just type varint + length varint: lets DATA be sent without copying the payload."""

def encode_settings(settings: dict[int, int]) -> bytes:
    """The SETTINGS frame payload (id varint, value varint)* in insertion order."""

def decode_settings(payload: bytes | bytearray | memoryview) -> dict[int, int]:
    """Parse a SETTINGS payload.

    SettingsError (code H3_SETTINGS_ERROR) for a duplicate identifier; FrameError
    (H3_FRAME_ERROR) when the payload is truncated mid-varint.
    """

class FrameParser:
    """Incremental frame parser for one stream."""

    def __init__(self, *, max_frame_size: int = ...) -> None:
        """``max_frame_size`` bounds the payload of any buffered (non-DATA) known frame.
        Default ``constants.DEFAULT_MAX_FRAME_SIZE``. ValueError if < 1, TypeError if not an
        integer; values above 2**62-1 (the longest frame there can be) act as 2**62-1."""
    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]]:
        """Consume ``data``; return the ``(frame_type, payload)`` pairs completed by it.

        DATA (type 0): one pair per contiguous piece of payload present in this call
        (several pairs for one frame across calls; a zero-length DATA frame yields nothing).
        Other known types: one pair with the whole payload once it is complete.
        Unknown types: nothing, their payload skipped as it arrives.
        FrameError (H3_EXCESSIVE_LOAD) when a known non-DATA frame declares a length above
        max_frame_size; raised as soon as the length is read. FrameError (H3_FRAME_ERROR)
        for a frame of type 0x41: the WebTransport stream signal may only open a bidi stream
        (draft-15 §4.2). After an error the parser is unusable and raises FrameError, with the
        same code, on every later call.
        """
    @property
    def buffered(self) -> int:
        """Bytes held waiting for a frame to complete (bounded by max_frame_size + 16)."""
    @property
    def in_frame(self) -> bool:
        """True when the parser stopped mid-frame (for REQUEST_INCOMPLETE / FRAME_ERROR at FIN)."""

def encode_uni_stream_header(stream_type: int, session_id: int | None = None) -> bytes:
    """Stream type varint, plus the session id varint for WebTransport (0x54) streams."""

def encode_bidi_stream_header(session_id: int) -> bytes:
    """``0x41`` (encoded as two bytes 0x40 0x41) + session id varint (draft §4.2)."""

def read_uni_stream_header(data: bytes | bytearray | memoryview) -> tuple[int, int, int] | None:
    """Parse the start of a peer's unidirectional stream.

    Returns ``(stream_type, session_id, consumed)``; ``session_id`` is -1 unless the type is
    0x54 (WebTransport). ``None`` when more bytes are needed.
    """

def read_bidi_stream_header(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """Parse the start of a peer's bidirectional stream.

    Returns ``(session_id, consumed)`` when it begins with the 0x41 signal, ``(-1, 0)`` when it
    is an ordinary HTTP/3 request stream (first varint is not 0x41), ``None`` when more
    bytes are needed to tell.
    """
