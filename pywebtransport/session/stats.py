"""Records describing a session: running statistics, transport statistics and a diagnostics
snapshot."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pywebtransport.types import Headers, SessionId, SessionState, StreamId

__all__ = ["SessionDiagnostics", "SessionStatistics", "SessionStats"]


@dataclass(slots=True)
class SessionStats:
    """Counters of one session, built from the engine's snapshot (timestamps are wall-clock
    ``time.time()`` values, for display; ``uptime`` is measured on the monotonic clock)."""

    session_id: SessionId
    created_at: float
    ready_at: float | None = None
    closed_at: float | None = None
    streams_created: int = 0
    streams_closed: int = 0
    stream_errors: int = 0
    bidirectional_streams: int = 0
    unidirectional_streams: int = 0
    datagrams_sent: int = 0
    datagrams_received: int = 0
    protocol_errors: int = 0
    #: The same moments on the engine's monotonic clock, which durations are measured on.
    monotonic_ready_at: float | None = field(default=None, repr=False, compare=False)
    monotonic_closed_at: float | None = field(default=None, repr=False, compare=False)

    @property
    def active_streams(self) -> int:
        """Streams created and not closed yet."""
        return max(0, self.streams_created - self.streams_closed)

    @property
    def uptime(self) -> float:
        """Seconds since the session became ready (0 before), until it closed or now."""
        if self.monotonic_ready_at is not None:
            end = self.monotonic_closed_at if self.monotonic_closed_at is not None else time.monotonic()
            return max(0.0, end - self.monotonic_ready_at)
        if self.ready_at is None:
            return 0.0
        end = self.closed_at if self.closed_at is not None else time.time()
        return max(0.0, end - self.ready_at)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["monotonic_ready_at"], data["monotonic_closed_at"]
        data["active_streams"] = self.active_streams
        data["uptime"] = self.uptime
        return data


@dataclass(frozen=True, slots=True)
class SessionDiagnostics:
    """A snapshot of a session's protocol state, taken from the engine."""

    session_id: SessionId
    control_stream_id: StreamId
    state: SessionState
    path: str
    headers: Headers
    created_at: float
    local_max_data: int
    local_data_sent: int
    peer_max_data: int
    peer_data_sent: int
    local_max_streams_bidi: int
    local_streams_bidi_opened: int
    peer_max_streams_bidi: int
    peer_streams_bidi_opened: int
    local_max_streams_uni: int
    local_streams_uni_opened: int
    peer_max_streams_uni: int
    peer_streams_uni_opened: int
    pending_bidi_stream_futures: list[Any] = field(default_factory=list)
    pending_uni_stream_futures: list[Any] = field(default_factory=list)
    datagrams_sent: int = 0
    datagram_bytes_sent: int = 0
    datagrams_received: int = 0
    datagram_bytes_received: int = 0
    close_code: int | None = None
    close_reason: str | None = None
    closed_at: float | None = None
    ready_at: float | None = None


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    """What a realtime application reads of its session at one moment.

    RTTs are in seconds, as the QUIC connection's loss recovery measures them (RFC 9002 §5;
    0.0 before the first sample) and, like ``congestion_window`` and ``bytes_in_flight``
    (bytes), belong to the QUIC connection the session shares with any others. Byte and
    datagram counts are this session's own payload: stream bytes written and read, datagrams
    sent and received, ``datagrams_dropped`` (sent ones in packets declared lost, or refused
    because the QUIC send queue was full) and ``datagrams_receive_dropped`` (received ones the
    full receive buffer evicted). ``backend`` names the QUIC implementation ("aioquic", "qh3").
    """

    session_id: SessionId
    backend: str
    smoothed_rtt: float
    min_rtt: float
    latest_rtt: float
    congestion_window: int
    bytes_in_flight: int
    stream_bytes_sent: int
    stream_bytes_received: int
    datagrams_sent: int
    datagrams_received: int
    datagrams_dropped: int
    datagrams_receive_dropped: int
    datagram_bytes_sent: int
    datagram_bytes_received: int

    @property
    def bytes_sent(self) -> int:
        """Payload bytes this session sent, on streams and in datagrams."""
        return self.stream_bytes_sent + self.datagram_bytes_sent

    @property
    def bytes_received(self) -> int:
        """Payload bytes this session received, on streams and in datagrams."""
        return self.stream_bytes_received + self.datagram_bytes_received

    def to_dict(self) -> dict[str, Any]:
        """The fields and the two byte totals, for logs and JSON."""
        data = asdict(self)
        data["bytes_sent"] = self.bytes_sent
        data["bytes_received"] = self.bytes_received
        return data
