"""HTTP datagrams (RFC 9297 §2.1) and a bounded receive ring.

A datagram on the wire is the quarter stream id (session id // 4) as a varint, then payload.
Bad arguments raise TypeError (not an integer, not bytes-like) or ValueError (out of range),
naming the argument, the same in both variants.
"""

def encode_datagram(session_id: int, payload: bytes | bytearray | memoryview) -> bytes:
    """ValueError unless session_id is a client bidi stream id: a multiple of 4 in [0, 2**62-1]."""

def decode_datagram(data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    """Returns ``(session_id, payload)``; DatagramError (H3_DATAGRAM_ERROR) if the quarter
    stream id varint is truncated."""

def max_payload_size(session_id: int, max_datagram_frame_size: int, path_limit: int) -> int:
    """Largest application payload that fits both the peer's max_datagram_frame_size
    transport parameter and ``path_limit`` (bytes available for the DATAGRAM frame in a
    packet); 0 when datagrams cannot be sent (peer's parameter is 0)."""

def check_payload_size(size: int, limit: int) -> None:
    """DatagramTooLargeError(size=size, limit=limit) if size > limit."""

class DatagramRing:
    """FIFO of received datagram payloads bounded by count and by total bytes.

    Pushing beyond either bound drops the oldest entries until the new one fits; a single
    payload larger than ``max_bytes`` is dropped itself. ``dropped`` counts every loss.
    """

    def __init__(self, *, max_count: int, max_bytes: int) -> None:
        """ValueError if either is < 1, TypeError if not an integer."""
    def push(self, payload: bytes) -> int:
        """Append; returns how many datagrams were dropped to make room (or 1 if the payload
        itself was too large and dropped). TypeError unless ``payload`` is bytes."""
    def pop(self) -> bytes | None:
        """Oldest payload, or None when empty."""
    def __len__(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def nbytes(self) -> int:
        """Bytes of the payloads held."""
