"""One WebTransport session: its state machine and the single place each way it ends.

Every end of a session goes through :meth:`Session.end`, which sends our FIN (once), has
the host abandon the session's streams, and emits exactly one event. The ways there are
methods named for what happened (:meth:`close_locally`, :meth:`closed_by_peer`,
:meth:`abort`, :meth:`reject`), so no caller re-implements the sequence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.flow_control import SessionFlow
from pywebtransport._protocol.snapshot import SessionSnapshot
from pywebtransport._wire import capsules, frames
from pywebtransport.exceptions import LocalProtocolError
from pywebtransport.types import CloseCause, SessionState

__all__ = ["TRANSITIONS", "PreAccept", "Session", "SessionHost"]

logger = logging.getLogger(__name__)

S = SessionState
#: Every legal transition, in one place: (from, to).
TRANSITIONS: frozenset[tuple[SessionState, SessionState]] = frozenset({
    (S.CONNECTING, S.CONNECTED),
    (S.CONNECTING, S.CLOSED),  # rejected, or the CONNECT stream died first
    (S.CONNECTED, S.DRAINING),
    (S.CONNECTED, S.CLOSED),
    (S.DRAINING, S.CLOSED),
})
#: The states in which streams and datagrams flow.
_OPEN_STATES = frozenset({S.CONNECTED, S.DRAINING})


class SessionHost(Protocol):
    """What a session asks of the engine that holds it."""

    @property
    def now(self) -> float: ...
    @property
    def connection_open(self) -> bool: ...
    def send_stream(self, stream_id: int, data: bytes, end_stream: bool) -> None: ...
    def abort_stream(self, stream_id: int, code: int) -> None: ...
    def abandon_session_streams(self, session_id: int, code: int) -> None: ...
    def emit(self, event: ev.EngineEvent) -> None: ...
    def session_ended(self, session: Session) -> None: ...


#: The ``finished_sends`` of a session that has none (shared, immutable).
_NO_STREAMS: frozenset[int] = frozenset()


@dataclass(slots=True)
class PreAccept:
    """What the peer did to a session's credit before the session was established, counted by
    its flow control once that starts (draft-15 §4 lets a client send before the response):

    - ``credit``: its WT_MAX_DATA / WT_MAX_STREAMS_* capsules, the largest of each type (they
      are cumulative and never repeated, draft-15 §5.6);
    - ``streams`` (indexed by ``is_unidirectional``) and ``data``: its streams that ended
      before the session saw them (refused or reset while waiting) and their payload bytes,
      which it counted against our limits (draft-15 §5.6.2: closed streams count; §5.4, RFC
      9000 §4.5: a reset stream's final size counts).
    """

    credit: dict[int, int] = field(default_factory=dict)
    streams: list[int] = field(default_factory=lambda: [0, 0])
    data: int = 0


@dataclass(slots=True, eq=False)
class Session:
    """Everything the engine knows about one session (id = its CONNECT stream id)."""

    host: SessionHost = field(repr=False)
    session_id: int
    path: str
    authority: str
    headers: dict[str, str]
    created_at: float
    draft02: bool = False
    state: SessionState = SessionState.CONNECTING
    #: Connected or draining: streams and datagrams still flow. Set from ``state`` when the
    #: session is made and by ``transition`` (the only way ``state`` changes); a field
    #: because every stream write and datagram reads it.
    is_open: bool = field(default=False, init=False)
    flow: SessionFlow | None = None
    ready_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    close_cause: CloseCause | None = None
    local_fin_sent: bool = False
    #: The peer ended its side of the CONNECT stream (FIN or reset): it has seen our close.
    peer_fin_received: bool = False
    #: When something last arrived for the session (streams, data, datagrams, capsules).
    last_activity: float = 0.0
    #: The negotiated subprotocol, and what the client offered (draft-15 §3.3).
    protocol: str | None = None
    available_protocols: tuple[str, ...] = ()
    #: Streams we ended with FIN whose delivery a graceful close waits for (pruned as it
    #: grows); the shared empty frozenset until the first such stream.
    finished_sends: set[int] | frozenset[int] = _NO_STREAMS
    data_sent: int = 0  # session stream payload bytes, with and without flow control
    data_received: int = 0
    datagrams_sent: int = 0
    datagram_bytes_sent: int = 0
    datagrams_received: int = 0
    datagram_bytes_received: int = 0
    datagrams_dropped: int = 0  # sends refused because the QUIC datagram queue was full
    local_streams_bidi_opened: int = 0
    local_streams_uni_opened: int = 0
    peer_streams_bidi_opened: int = 0
    peer_streams_uni_opened: int = 0
    #: What came for the session before it was established and its flow control must count
    #: once it starts (made on first use; see ``PreAccept``).
    pre_accept: PreAccept | None = None

    def __post_init__(self) -> None:
        self.is_open = self.state in _OPEN_STATES

    def pre_accept_account(self) -> PreAccept:
        """The session's ``PreAccept`` record, made on first use."""
        account = self.pre_accept
        if account is None:
            account = self.pre_accept = PreAccept()
        return account

    # -- queries
    @property
    def is_closed(self) -> bool:
        return self.state is SessionState.CLOSED


    @property
    def flow_control(self) -> bool:
        return self.flow is not None

    def transition(self, new_state: SessionState) -> None:
        """Move to ``new_state``; an illegal move is a LocalProtocolError naming both states."""
        if (self.state, new_state) not in TRANSITIONS:
            raise LocalProtocolError(f"session {self.session_id}: illegal transition "
                                     f"{self.state.value} -> {new_state.value}")
        self.state = new_state
        self.is_open = new_state in _OPEN_STATES

    def note_finished_send(self, stream_id: int, acknowledged: Callable[[int], bool]) -> None:
        """Remember a stream we finished; drop acknowledged ones whenever the set doubles."""
        finished = self.finished_sends
        if not isinstance(finished, set):
            finished = self.finished_sends = set(finished)
        finished.add(stream_id)
        size = len(finished)
        if size >= 64 and (size & (size - 1)) == 0:
            self.finished_sends = {sid for sid in finished if not acknowledged(sid)}

    # -- the CONNECT stream
    def send_capsules(self, encoded: list[bytes], *, end_stream: bool = False) -> None:
        """Put capsules on the CONNECT stream (in DATA frames); FIN after them if asked."""
        if not encoded and not end_stream:  # the common case: flow control had nothing to say
            return
        if self.local_fin_sent or not self.host.connection_open:
            return
        payload = b"".join(frames.encode_frame(c.FRAME_DATA, capsule) for capsule in encoded)
        if end_stream:
            self.local_fin_sent = True
        if payload or end_stream:
            self.host.send_stream(self.session_id, payload, end_stream)

    def _send_fin(self) -> None:
        if not self.local_fin_sent and self.host.connection_open:
            self.local_fin_sent = True
            self.host.send_stream(self.session_id, b"", True)

    # -- transitions
    def establish(self, response_headers: dict[str, str], flow: SessionFlow | None) -> None:
        self.transition(SessionState.CONNECTED)
        self.ready_at = self.last_activity = self.host.now
        self.flow = flow
        self.host.emit(ev.SessionEstablished(self.session_id, response_headers, self.protocol))

    def drained_by_peer(self) -> None:
        if self.state is SessionState.CONNECTED:
            self.transition(SessionState.DRAINING)
            self.host.emit(ev.SessionDraining(self.session_id))

    def close_locally(self, code: int, reason: str) -> None:
        """WT_CLOSE_SESSION with code and reason, then FIN (draft-15 §6)."""
        if self.is_closed:
            return
        self.send_capsules([capsules.encode_close_session(code, reason)], end_stream=True)
        self.end(code, reason, CloseCause.LOCAL_CLOSE)

    def closed_by_peer(self, code: int, reason: str) -> None:
        """The peer's WT_CLOSE_SESSION or FIN: answer with our FIN (draft-15 §6)."""
        self._send_fin()
        self.end(code, reason, CloseCause.PEER_CLOSE)

    def abort(self, code: int, reason: str) -> None:
        """A session-level error: reset the CONNECT stream both ways with ``code``."""
        if self.is_closed:
            return
        logger.info("session %d: aborted with %s: %s", self.session_id, c.describe_code(code), reason)
        if not self.local_fin_sent:
            self.local_fin_sent = True
            self.host.abort_stream(self.session_id, code)
        self.end(code, reason, CloseCause.SESSION_ERROR)

    def reject(self, status_code: int, headers: dict[str, str], reason: str, *, notify: bool = True) -> None:
        """The CONNECT request failed (a non-2xx answer, a dead stream, a local refusal);
        ``notify`` emits SessionRejected (a client's view; a server refusing says nothing)."""
        if self.is_closed:
            return
        self._send_fin()
        self.end(0, reason, CloseCause.REJECTED, emit=False)
        if notify:
            self.host.emit(ev.SessionRejected(self.session_id, status_code, headers, reason))

    def connection_ended(self, reason: str, cause: CloseCause) -> None:
        """The QUIC connection is gone: nothing can be sent any more."""
        self.local_fin_sent = True
        self.end(0, reason, cause)

    def end(self, code: int, reason: str, cause: CloseCause, *, emit: bool = True) -> None:
        """The one place a session ends: state, streams, books and exactly one event."""
        if self.is_closed:
            return
        self.transition(SessionState.CLOSED)
        self.closed_at = self.host.now
        self.close_code = code
        self.close_reason = reason
        self.close_cause = cause
        self.host.abandon_session_streams(self.session_id, c.WT_SESSION_GONE)
        self.flow = None
        self.finished_sends = _NO_STREAMS
        if emit:
            by_peer = cause in (CloseCause.PEER_CLOSE, CloseCause.PEER_RESET, CloseCause.PEER_CONNECTION_CLOSE)
            self.host.emit(ev.SessionClosed(self.session_id, code, reason, by_peer, cause))
        self.host.session_ended(self)

    def snapshot(self, *, open_streams: int) -> SessionSnapshot:
        flow = self.flow
        return SessionSnapshot(
            session_id=self.session_id, state=self.state, path=self.path, authority=self.authority,
            draft02=self.draft02, flow_control=flow is not None, created_at=self.created_at,
            ready_at=self.ready_at, closed_at=self.closed_at, close_code=self.close_code,
            close_reason=self.close_reason, close_cause=self.close_cause, open_streams=open_streams,
            data_sent=self.data_sent, data_received=self.data_received, datagrams_sent=self.datagrams_sent,
            datagram_bytes_sent=self.datagram_bytes_sent, datagrams_received=self.datagrams_received,
            datagram_bytes_received=self.datagram_bytes_received, datagrams_dropped=self.datagrams_dropped,
            local_streams_bidi_opened=self.local_streams_bidi_opened,
            local_streams_uni_opened=self.local_streams_uni_opened,
            peer_streams_bidi_opened=self.peer_streams_bidi_opened,
            peer_streams_uni_opened=self.peer_streams_uni_opened,
            headers=self.headers,  # never changed in place (only replaced): shared, not copied
            protocol=self.protocol,
            available_protocols=self.available_protocols,
            local_max_data=flow.recv_data.limit if flow else 0,
            peer_max_data=flow.send_data.limit if flow else 0,
            local_max_streams_bidi=flow.recv_streams[False].limit if flow else 0,
            peer_max_streams_bidi=flow.send_streams[False].limit if flow else 0,
            local_max_streams_uni=flow.recv_streams[True].limit if flow else 0,
            peer_max_streams_uni=flow.send_streams[True].limit if flow else 0,
            local_data_received=flow.recv_data.received if flow else 0,
            send_data_available=flow.send_data.available if flow else 0,
            send_streams_bidi_available=flow.send_streams[False].available if flow else 0,
            send_streams_uni_available=flow.send_streams[True].available if flow else 0,
            blocked_bytes=flow.blocked_bytes if flow else 0,
        )
