"""Per-session protocol state: the state machine and the session's flow-control books."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pywebtransport._wire import flow
from pywebtransport.exceptions import ProtocolError
from pywebtransport.types import CloseCause, SessionState

__all__ = ["TRANSITIONS", "SessionRecord"]

S = SessionState
#: Every legal transition, in one place: (from, to).
TRANSITIONS: frozenset[tuple[SessionState, SessionState]] = frozenset({
    (S.CONNECTING, S.CONNECTED),
    (S.CONNECTING, S.CLOSED),  # rejected, or the CONNECT stream died first
    (S.CONNECTED, S.DRAINING),
    (S.CONNECTED, S.CLOSED),
    (S.DRAINING, S.CLOSED),
})


@dataclass(slots=True)
class SessionRecord:
    """Everything the engine knows about one session (id = its CONNECT stream id)."""

    session_id: int
    path: str
    authority: str
    headers: dict[str, str]
    created_at: float
    state: SessionState = SessionState.CONNECTING
    draft02: bool = False
    flow_control: bool = False
    ready_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    close_cause: CloseCause | None = None
    #: Streams of this session that are still open, by id -> is_unidirectional.
    streams: dict[int, bool] = field(default_factory=dict)
    local_fin_sent: bool = False
    # Session flow control (drafts 07+). Send side: the peer's limits on us.
    send_data: flow.SendCredit = field(default_factory=lambda: flow.SendCredit(0))
    send_streams_bidi: flow.SendCredit = field(default_factory=lambda: flow.SendCredit(0))
    send_streams_uni: flow.SendCredit = field(default_factory=lambda: flow.SendCredit(0))
    # Receive side: our limits on the peer.
    recv_data: flow.ReceiveWindow = field(default_factory=lambda: flow.ReceiveWindow(0))
    recv_streams_bidi: flow.ReceiveWindow = field(default_factory=lambda: flow.ReceiveWindow(0))
    recv_streams_uni: flow.ReceiveWindow = field(default_factory=lambda: flow.ReceiveWindow(0))
    #: Streams with bytes waiting for session data credit, in FIFO order.
    blocked_streams: deque[int] = field(default_factory=deque)
    data_sent: int = 0  # session stream payload bytes, both with and without flow control
    data_received: int = 0
    datagrams_sent: int = 0
    datagram_bytes_sent: int = 0
    datagrams_received: int = 0
    datagram_bytes_received: int = 0
    datagrams_dropped: int = 0  # sends refused because aioquic's datagram queue was full
    local_streams_bidi_opened: int = 0
    local_streams_uni_opened: int = 0
    peer_streams_bidi_opened: int = 0
    peer_streams_uni_opened: int = 0
    #: Streams we ended with FIN whose delivery a graceful close waits for (pruned as it grows).
    finished_sends: set[int] = field(default_factory=set)

    def note_finished_send(self, stream_id: int, acknowledged: Callable[[int], bool]) -> None:
        """Remember a stream we finished; drop acknowledged ones whenever the set doubles."""
        finished = self.finished_sends
        finished.add(stream_id)
        if len(finished) >= 64 and (len(finished) & (len(finished) - 1)) == 0:
            self.finished_sends = {sid for sid in finished if not acknowledged(sid)}

    def transition(self, new_state: SessionState) -> None:
        """Move to ``new_state``; an illegal move is a ProtocolError naming both states."""
        if (self.state, new_state) not in TRANSITIONS:
            raise ProtocolError(f"session {self.session_id}: illegal transition "
                                f"{self.state.value} -> {new_state.value}")
        self.state = new_state

    @property
    def is_closed(self) -> bool:
        return self.state is SessionState.CLOSED

    @property
    def is_open(self) -> bool:
        """Connected or draining: streams and datagrams still flow."""
        return self.state in (SessionState.CONNECTED, SessionState.DRAINING)
