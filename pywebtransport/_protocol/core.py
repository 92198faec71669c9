"""The state one engine's parts share, and the session host they all use.

``EngineCore`` holds the stream table, the sessions and the HTTP/3 layer. Every part of the
engine builds on it, each in its own module: the inbound paths (``requests.RequestStreams``,
``routing.StreamRouting``), the application-facing calls (``session_api``, ``stream_api``,
``queries``, ``watches``), QUIC event dispatch (``dispatch``), timers (``deadlines``), and the
facade that combines them (``engine.WebTransportEngine``).
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.budget import DEFAULT_CONNECTION_SEND_BUFFER, BudgetAccount, SharedBudgets
from pywebtransport._protocol.early_datagrams import EarlyDatagrams
from pywebtransport._protocol.flow_control import SessionFlow
from pywebtransport._protocol.h3 import Http3
from pywebtransport._protocol.quic import QuicCore
from pywebtransport._protocol.send_buffer import SendBufferBound
from pywebtransport._protocol.session import PreAccept, Session
from pywebtransport._protocol.settings import Dialect, PeerSettings, build_local_settings, flow_control_enabled
from pywebtransport._protocol.streams import StreamKind, StreamRecord, StreamTable
from pywebtransport._wire import capsules
from pywebtransport.exceptions import SessionError, StreamClosedError

__all__ = ["EngineConfig", "EngineCore"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Limits, windows and deadlines of one engine; the API layer fills it from its config."""

    max_sessions: int = c.DEFAULT_MAX_SESSIONS
    max_frame_size: int = c.DEFAULT_MAX_FRAME_SIZE
    max_header_block_size: int = c.DEFAULT_MAX_HEADER_BLOCK_SIZE
    max_field_section_size: int = c.DEFAULT_MAX_FIELD_SECTION_SIZE
    max_capsule_size: int = c.DEFAULT_MAX_CAPSULE_SIZE
    max_buffered_streams: int = c.DEFAULT_BUFFERED_STREAMS
    max_buffered_stream_bytes: int = 1 << 20
    #: All early streams of the connection together (draft-15 §4.6 buffering is bounded).
    max_buffered_bytes: int = 4 << 20
    max_buffered_datagrams: int = 64
    #: Bytes our application may have written on this connection's session streams and QUIC
    #: not yet finished with before its writers wait in drain() (all streams together).
    max_send_buffer: int = DEFAULT_CONNECTION_SEND_BUFFER
    max_pending_datagrams: int = 1024
    initial_max_data: int = c.DEFAULT_SESSION_MAX_DATA
    initial_max_streams_bidi: int = c.DEFAULT_SESSION_MAX_STREAMS_BIDI
    initial_max_streams_uni: int = c.DEFAULT_SESSION_MAX_STREAMS_UNI
    flow_control_auto_extend: bool = True
    #: Seconds the peer has to send SETTINGS after the handshake, to complete the opening of a
    #: stream it starts (a unidirectional stream's type, a bidirectional stream's WebTransport
    #: signal or its request headers), and an early stream to see its session established
    #: (slowloris bounds).
    settings_timeout: float = 10.0
    request_timeout: float = 10.0
    early_stream_timeout: float = 10.0
    #: Close (WT_CLOSE_SESSION, code 0) an established session from which nothing arrived
    #: for this long; None never does. Keep-alive PINGs keep QUIC's idle timer from firing,
    #: and Firefox keeps a session whose page navigated away (docs/browsers.md).
    session_idle_timeout: float | None = None


class EngineCore:
    """Shared state of one engine, and the :class:`SessionHost` its sessions call."""

    def __init__(self, quic: QuicCore, *, config: EngineConfig | None = None,
                 budgets: SharedBudgets | None = None) -> None:
        self.quic = quic
        self.is_client = bool(quic.configuration.is_client)
        self.config = cfg = config or EngineConfig()
        #: Budgets shared with the other connections of a server (none: this engine alone).
        self.budgets = budgets if budgets is not None else SharedBudgets()
        self._events: deque[ev.EngineEvent] = deque()
        #: The events not yet taken, oldest first: ``next_event()`` pops one, and a driver
        #: that runs after every call into the engine may test and pop this deque itself.
        self.pending_events: deque[ev.EngineEvent] = self._events
        self._streams = StreamTable(quic, receive=BudgetAccount(self.budgets.receive))
        self._send_bound = SendBufferBound(cfg.max_send_buffer, BudgetAccount(self.budgets.send), self._stream_held)
        self._sessions: dict[int, Session] = {}
        self._active_sessions = 0
        #: A server's ``PreAccept`` records of sessions whose CONNECT has not arrived (their
        #: streams may come first, draft-15 §4.6), adopted when it does; at most
        #: ``max_buffered_streams`` of them, made on first use.
        self._unseen_sessions: dict[int, PreAccept] | None = None
        #: Closed sessions kept for diagnostics, oldest first; made when the first one closes
        #: (most connections never close a session before they end).
        self._closed_order: deque[int] | None = None
        self._now = 0.0
        self._closed = False
        #: The peer SETTINGS last found to allow HTTP datagrams (``send_datagram`` checks once).
        self._datagram_peer: PeerSettings | None = None
        local_settings = build_local_settings(
            is_client=self.is_client, max_sessions=cfg.max_sessions, initial_max_data=cfg.initial_max_data,
            initial_max_streams_bidi=cfg.initial_max_streams_bidi, initial_max_streams_uni=cfg.initial_max_streams_uni,
            max_field_section_size=cfg.max_field_section_size)
        self._h3 = Http3(quic, is_client=self.is_client, local_settings=local_settings,
                         max_frame_size=cfg.max_frame_size, emit=self._events.append, on_settings=self._on_settings,
                         on_goaway=self._on_goaway)
        self._awaiting_settings: list[int] = []  # sessions/requests held until the peer's SETTINGS
        self._settings_deadline: float | None = None
        #: Peer streams whose opening (stream type, WebTransport signal, request headers) is not
        #: complete yet, by the time their first bytes arrived; bounded by ``request_timeout``.
        self._incomplete_openings: dict[int, float] = {}
        self._early_datagrams = EarlyDatagrams(max_count=cfg.max_buffered_datagrams,
                                               max_bytes=cfg.max_buffered_stream_bytes, account=self._streams.receive)
        self._highest_peer_bidi = -1
        #: Session stream bytes handed to the application and not yet read (consumed), per
        #: stream: [session id, bytes]; kept past the stream record (a stream that got its FIN
        #: is forgotten while its bytes wait to be read) until read or the session ends.
        self._unread: dict[int, list[int]] = {}
        self._unread_total = 0
        quic.set_held_probe(self._held_bytes)

    @property
    def local_settings(self) -> dict[int, int]:
        """The SETTINGS we send (replaceable until HTTP/3 starts, e.g. to imitate a browser)."""
        return self._h3.local_settings

    @local_settings.setter
    def local_settings(self, settings: dict[int, int]) -> None:
        self._h3.local_settings = settings

    # -- implemented by the inbound modules (declared here so each part type-checks alone)
    def _on_settings(self, peer: PeerSettings) -> None:
        raise NotImplementedError

    def _on_goaway(self, last_id: int) -> None:
        raise NotImplementedError

    def _refuse_stream(self, record: StreamRecord, code: int) -> None:
        raise NotImplementedError

    def _refuse_unseen(self, record: StreamRecord, code: int) -> None:
        raise NotImplementedError

    def _release_early(self, session: Session) -> None:
        raise NotImplementedError

    def _settle_pre_accept(self, session: Session) -> None:
        raise NotImplementedError

    def _maybe_forget_stream(self, record: StreamRecord) -> None:
        raise NotImplementedError

    def _deliver_datagram(self, session: Session, payload: bytes) -> None:
        raise NotImplementedError

    def _on_request_stream_data(self, record: StreamRecord, data: bytes, fin: bool) -> None:
        raise NotImplementedError

    # -- SessionHost
    @property
    def now(self) -> float:
        return self._now

    @property
    def connection_open(self) -> bool:
        return not self._closed

    def send_stream(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        self.quic.send_stream_data(stream_id, data, end_stream)

    def abort_stream(self, stream_id: int, code: int) -> None:
        """Reset and stop a stream with an HTTP/3 code, and forget it."""
        self._quic_stop(stream_id, code)
        self._quic_reset(stream_id, code)
        self._incomplete_openings.pop(stream_id, None)
        record = self._streams.get(stream_id)
        if record is not None:
            record.send_closed = record.recv_closed = True
            self._streams.finish(record)

    def abandon_session_streams(self, session_id: int, code: int) -> None:
        """Draft-15 §6: a closed session's streams are reset with WT_SESSION_GONE."""
        self._release_session(session_id)
        for stream_id in self._streams.session_stream_ids(session_id) + self._streams.early_ids(session_id):
            record = self._streams.get(stream_id)
            if record is not None:
                self._refuse_stream(record, code)
        self._streams.forget_session(session_id)
        self._early_datagrams.discard(session_id)

    # -- what the connection holds unread (QUIC's MAX_DATA grows only by what is released)
    def _held_bytes(self) -> int:
        return self._unread_total + self._streams.early_bytes

    def _hold(self, stream_id: int, session_id: int, amount: int) -> None:
        entry = self._unread.get(stream_id)
        if entry is None:
            self._unread[stream_id] = [session_id, amount]
        else:
            entry[1] += amount
        self._unread_total += amount

    def _release(self, stream_id: int, amount: int) -> None:
        entry = self._unread.get(stream_id)
        if entry is not None:
            taken = min(amount, entry[1])
            entry[1] -= taken
            self._unread_total -= taken
            if not entry[1]:
                del self._unread[stream_id]

    def _flush_session_credit(self, session: Session) -> None:
        """Session credit came back (WT_MAX_DATA, or a reset's unsent bytes): hand QUIC what
        blocked streams may send now, and say WT_DATA_BLOCKED where they still cannot."""
        flow = session.flow
        if flow is None:
            return
        sendable, blocked = flow.flush()
        for ready, chunk, fin in sendable:
            self.quic.send_stream_data(ready.stream_id, chunk, fin)
            if fin:
                self._maybe_forget_stream(ready)
        session.send_capsules(blocked)

    def _release_session(self, session_id: int) -> None:
        """A session ended: what its streams still hold no longer counts (nothing more can
        arrive for them, and the application is done with the session)."""
        if self._unread:
            for stream_id in [sid for sid, entry in self._unread.items() if entry[0] == session_id]:
                self._unread_total -= self._unread.pop(stream_id)[1]

    def emit(self, event: ev.EngineEvent) -> None:
        self._events.append(event)

    def session_ended(self, session: Session) -> None:
        self._active_sessions -= 1
        record = self._streams.get(session.session_id)
        if record is not None and record.capsules is not None:
            # Nothing more is parsed on an ended session's CONNECT stream: what its capsule
            # parser held of an incomplete capsule is dropped and no longer charged.
            record.capsules = None
            self._streams.hold_request_bytes(record, record.parser.buffered if record.parser is not None else 0)
        order = self._closed_order
        if order is None:
            order = self._closed_order = deque()
        order.append(session.session_id)
        while len(order) > self.config.max_sessions:  # bounded diagnostics
            self._sessions.pop(order.popleft(), None)

    # -- helpers shared by the parts
    def _add_session(self, session: Session) -> None:
        self._sessions[session.session_id] = session
        self._active_sessions += 1
        if self._unseen_sessions:  # its streams came first and ended unseen
            session.pre_accept = self._unseen_sessions.pop(session.session_id, None)

    def _establish(self, session: Session, response: dict[str, str]) -> None:
        record = self._streams.get(session.session_id)
        if record is not None and record.capsules is None:
            record.capsules = capsules.CapsuleParser(max_capsule_size=self.config.max_capsule_size, report_unknown=True)
        session.establish(response, self._new_flow())
        if session.pre_accept is not None:
            self._settle_pre_accept(session)
        self._release_early(session)

    def _new_flow(self) -> SessionFlow | None:
        """Flow control only when both endpoints asked for it (draft-15 §5.1, draft-13 §5.1)."""
        peer, cfg = self._h3.peer, self.config
        if peer is None or not flow_control_enabled(self.local_settings, peer):
            return None
        return SessionFlow(peer_max_data=peer.initial_max_data, peer_max_streams_bidi=peer.initial_max_streams_bidi,
                           peer_max_streams_uni=peer.initial_max_streams_uni, local_max_data=cfg.initial_max_data,
                           local_max_streams_bidi=cfg.initial_max_streams_bidi,
                           local_max_streams_uni=cfg.initial_max_streams_uni, auto_extend=cfg.flow_control_auto_extend,
                           strict=peer.dialect is Dialect.DRAFT15)

    def _stream_held(self, stream_id: int) -> int:
        """Bytes written to the stream and not yet acknowledged (incl. waiting for credit)."""
        record = self._streams.get(stream_id)
        pending = record.pending.size if record is not None else 0
        return pending + self.quic.send_buffered(stream_id)

    def _check_usable(self) -> None:
        if self._closed:
            raise SessionError("the connection is closed")

    def _require_session(self, session_id: int) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionError(f"no session {session_id} on this connection")
        return session

    def _require_open(self, session_id: int) -> Session:
        session = self._require_session(session_id)
        if not session.is_open or self._closed:
            raise SessionError(f"session {session_id} is {session.state.value}")
        return session

    def _require_session_stream(self, stream_id: int) -> StreamRecord:
        record = self._streams.get(stream_id)
        if record is None or record.kind is not StreamKind.WEBTRANSPORT:
            raise StreamClosedError(f"stream {stream_id} is not a session stream")
        return record

    def _quic_stop(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(ValueError):  # aioquic already discarded the stream: nothing to stop
            self.quic.stop_stream(stream_id, code)

    def _quic_reset(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(ValueError):  # already finished and discarded
            self.quic.reset_stream(stream_id, code)
