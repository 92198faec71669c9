"""A frozen view of one session's protocol state, for the asyncio layer and diagnostics.

The engine is the single source of protocol state and counters; the layer above reads
them from these snapshots instead of keeping copies that drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from pywebtransport.types import CloseCause, SessionState

__all__ = ["SessionSnapshot"]


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """What the engine knows about a session at one moment (times are the engine's clock)."""

    session_id: int
    state: SessionState
    path: str
    authority: str
    draft02: bool
    flow_control: bool
    created_at: float
    ready_at: float | None
    closed_at: float | None
    close_code: int | None
    close_reason: str | None
    close_cause: CloseCause | None
    open_streams: int
    data_sent: int
    data_received: int
    datagrams_sent: int
    datagram_bytes_sent: int
    datagrams_received: int
    datagram_bytes_received: int
    datagrams_dropped: int
    local_streams_bidi_opened: int
    local_streams_uni_opened: int
    peer_streams_bidi_opened: int
    peer_streams_uni_opened: int
    #: The CONNECT request's header fields as sent or received (pseudo-headers included).
    headers: dict[str, str]
    #: The negotiated subprotocol (None: none) and the client's offer (draft-15 §3.3).
    protocol: str | None
    available_protocols: tuple[str, ...]
    #: Session flow control (draft-15 peers); 0 when off. ``local_*`` are the limits we
    #: advertised, ``peer_*`` the peer's limits on us (draft-15 §5.6).
    local_max_data: int
    peer_max_data: int
    local_max_streams_bidi: int
    peer_max_streams_bidi: int
    local_max_streams_uni: int
    peer_max_streams_uni: int
    local_data_received: int
    send_data_available: int
    send_streams_bidi_available: int
    send_streams_uni_available: int
    blocked_bytes: int
