"""The sans-I/O HTTP/3 + WebTransport engine over one aioquic QuicConnection.

Bytes and time go in (``receive_datagram``, ``handle_timer``), events come out
(``next_event``), and packets are collected with ``datagrams_to_send``. The engine never
awaits, never reads a clock and never touches a socket, so a whole conversation can be
played in memory between two engines.

It owns HTTP/3 itself (RFC 9114: control and QPACK streams, SETTINGS, frames) instead of
aioquic's H3Connection, because WebTransport needs capsules, session flow control and a
settings dialect per peer that H3Connection does not have.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import pylsqpack
from aioquic.quic import events as quic_events

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.headers import (
    HeaderValidationError,
    build_connect_request,
    build_response,
    decode_header_list,
    parse_connect_request,
    parse_status,
)
from pywebtransport._protocol.quic import BackpressuredQuicConnection
from pywebtransport._protocol.session import SessionRecord
from pywebtransport._protocol.settings import PeerSettings, build_local_settings
from pywebtransport._protocol.snapshot import SessionSnapshot
from pywebtransport._wire import buffer, capsules, datagrams, error_codes, flow, frames
from pywebtransport.exceptions import (
    CapsuleError,
    DatagramError,
    FlowControlError,
    FrameError,
    ProtocolError,
    SessionError,
    StreamClosedError,
)
from pywebtransport.types import CloseCause, SessionState

__all__ = ["EngineConfig", "WebTransportEngine"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Limits and windows of one engine; the API layer fills it from its config."""

    max_sessions: int = c.DEFAULT_MAX_SESSIONS
    max_frame_size: int = c.DEFAULT_MAX_FRAME_SIZE
    max_header_block_size: int = c.DEFAULT_MAX_HEADER_BLOCK_SIZE
    max_capsule_size: int = c.DEFAULT_MAX_CAPSULE_SIZE
    max_buffered_streams: int = c.DEFAULT_BUFFERED_STREAMS
    max_buffered_stream_bytes: int = 1 << 20
    max_buffered_datagrams: int = 64
    max_pending_datagrams: int = 1024
    initial_max_data: int = c.DEFAULT_SESSION_MAX_DATA
    initial_max_streams_bidi: int = c.DEFAULT_SESSION_MAX_STREAMS_BIDI
    initial_max_streams_uni: int = c.DEFAULT_SESSION_MAX_STREAMS_UNI
    flow_control_auto_extend: bool = True


class _Kind(enum.Enum):
    PENDING_UNI = "pending-uni"  # peer uni stream, type not read yet
    PENDING_BIDI = "pending-bidi"  # peer bidi stream, signal not read yet
    CONTROL = "control"
    QPACK_ENCODER = "qpack-encoder"
    QPACK_DECODER = "qpack-decoder"
    REQUEST = "request"  # server: a request stream before it became a session
    CONNECT = "connect"  # a session's CONNECT stream
    WEBTRANSPORT = "webtransport"
    IGNORED = "ignored"


@dataclass(slots=True, eq=False)
class _Stream:
    stream_id: int
    kind: _Kind
    is_unidirectional: bool
    local: bool
    session_id: int = -1
    preamble: bytearray = field(default_factory=bytearray)
    parser: frames.FrameParser | None = None
    capsules: capsules.CapsuleParser | None = None
    headers_done: bool = False
    draft02: bool = False
    send_closed: bool = False
    recv_closed: bool = False
    # Bytes waiting for session data credit, and whether FIN follows them.
    pending: bytearray = field(default_factory=bytearray)
    pending_fin: bool = False
    # Early stream (its session is not established yet): what arrived so far.
    early: list[bytes] | None = None
    early_bytes: int = 0
    early_fin: bool = False
    announced: bool = False


_CRITICAL = (_Kind.CONTROL, _Kind.QPACK_ENCODER, _Kind.QPACK_DECODER)
_REQUEST_FRAMES = frozenset({c.FRAME_DATA, c.FRAME_HEADERS, c.FRAME_PUSH_PROMISE})
_SWEEP_EVERY = 128  # finished streams between two sweeps of their records


class WebTransportEngine:
    """HTTP/3 + WebTransport for one QUIC connection, client or server role."""

    def __init__(self, quic: BackpressuredQuicConnection, *, config: EngineConfig | None = None) -> None:
        self.quic = quic
        self.is_client = quic.configuration.is_client
        self.config = config or EngineConfig()
        self._events: deque[ev.EngineEvent] = deque()
        self._streams: dict[int, _Stream] = {}
        self._sessions: dict[int, SessionRecord] = {}
        self._now = 0.0
        self._h3_started = False
        self._closed = False
        self._peer: PeerSettings | None = None
        self._peer_critical: dict[_Kind, int] = {}
        self._local_control_id = -1
        self._local_encoder_id = -1
        self._local_decoder_id = -1
        self._encoder = pylsqpack.Encoder()
        self._decoder = pylsqpack.Decoder(0, 0)
        self._awaiting_settings: list[int] = []  # sessions/requests held until peer SETTINGS
        self._early_count = 0
        self._early_datagrams: dict[int, datagrams.DatagramRing] = {}
        self._highest_peer_bidi = -1
        self._forgotten = 0  # tombstones made since the last sweep
        self._write_watch: dict[int, int] = {}  # stream id -> low-water mark of unacked bytes
        self._credit_watch: set[tuple[int, bool]] = set()  # (session id, is_unidirectional)
        self.goaway_received: int | None = None
        self.goaway_sent: int | None = None
        self.local_settings = build_local_settings(
            is_client=self.is_client,
            max_sessions=self.config.max_sessions,
            initial_max_data=self.config.initial_max_data,
            initial_max_streams_bidi=self.config.initial_max_streams_bidi,
            initial_max_streams_uni=self.config.initial_max_streams_uni,
        )

    # ------------------------------------------------------------------ I/O surface

    def connect(self, addr: tuple[str, int], now: float) -> None:
        """Client: start the QUIC handshake towards ``addr``."""
        self._now = now
        self.quic.connect(addr, now=now)
        self._pump()

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        """Feed one UDP datagram from the network."""
        self._now = now
        self.quic.receive_datagram(data, addr, now=now)
        self._pump()

    def handle_timer(self, now: float) -> None:
        """Call when ``get_timer()``'s deadline has passed."""
        self._now = now
        self.quic.handle_timer(now=now)
        self._pump()

    def get_timer(self) -> float | None:
        return self.quic.get_timer()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        """UDP datagrams to put on the wire now."""
        self._now = now
        return self.quic.datagrams_to_send(now=now)

    def next_event(self) -> ev.EngineEvent | None:
        """The next event, or None when there is none."""
        return self._events.popleft() if self._events else None

    def close(self, error_code: int = c.H3_NO_ERROR, reason: str = "") -> None:
        """Close the whole connection (every session ends)."""
        if self._closed:
            return
        self._closed = True
        self.quic.close(error_code=error_code, reason_phrase=reason)
        cause = CloseCause.CONNECTION_CLOSED if error_code == c.H3_NO_ERROR else CloseCause.CONNECTION_ERROR
        self._end_all_sessions(0, reason or "connection closed", by_peer=False, cause=cause)

    # ------------------------------------------------------------------ queries

    @property
    def peer_settings(self) -> PeerSettings | None:
        return self._peer

    @property
    def dialect(self) -> str | None:
        """The WebTransport dialect the peer spoke in its SETTINGS (None before them)."""
        return self._peer.dialect if self._peer else None

    @property
    def is_closed(self) -> bool:
        return self._closed

    def session(self, session_id: int) -> SessionRecord | None:
        return self._sessions.get(session_id)

    @property
    def sessions(self) -> dict[int, SessionRecord]:
        return self._sessions

    def stream_session(self, stream_id: int) -> int | None:
        stream = self._streams.get(stream_id)
        return stream.session_id if stream and stream.kind is _Kind.WEBTRANSPORT else None

    def stream_send_buffered(self, stream_id: int) -> int:
        """Bytes written to the stream and not yet acknowledged (incl. waiting for credit)."""
        stream = self._streams.get(stream_id)
        pending = len(stream.pending) if stream else 0
        return pending + self.quic.send_buffered(stream_id)

    def stream_send_acknowledged(self, stream_id: int) -> bool:
        """Whether every byte written to the stream (FIN included) reached the peer and was
        acknowledged; bytes still waiting for session credit count as unsent."""
        stream = self._streams.get(stream_id)
        if stream is not None and stream.pending:
            return False
        return self.quic.send_acknowledged(stream_id)

    def finished_unacknowledged_streams(self, session_id: int) -> list[int]:
        """Streams of the session the application ended with FIN whose data is not yet
        acknowledged: what a graceful session close lingers for."""
        rec = self._sessions.get(session_id)
        if rec is None:
            return []
        waiting = [sid for sid in rec.finished_sends if not self.stream_send_acknowledged(sid)]
        rec.finished_sends = set(waiting)
        return waiting

    def stream_is_writable(self, stream_id: int) -> bool:
        stream = self._streams.get(stream_id)
        return bool(stream and stream.kind is _Kind.WEBTRANSPORT and not stream.send_closed)

    def max_datagram_size(self, session_id: int) -> int:
        """Largest datagram payload that can be sent in this session now."""
        return datagrams.max_payload_size(session_id, self.quic.remote_max_datagram_frame_size,
                                          self.quic.datagram_path_limit)

    def can_open_stream(self, session_id: int, is_unidirectional: bool) -> bool:
        """Whether both QUIC and the session's flow control allow one more stream now."""
        rec = self._sessions.get(session_id)
        if rec is None or not rec.is_open or self._closed:
            return False
        if not self.quic.can_open_stream(is_unidirectional):
            return False
        if rec.flow_control:
            credit = rec.send_streams_uni if is_unidirectional else rec.send_streams_bidi
            return credit.available > 0
        return True

    # ------------------------------------------------------------------ sessions

    def open_session(self, *, authority: str, path: str, origin: str | None = None,
                     headers: dict[str, str] | None = None, protocol: str = "webtransport") -> int:
        """Client: send an extended CONNECT; returns the session id (its stream id).

        The request waits inside the engine until the server's SETTINGS arrived, as RFC 9220
        §3 requires; the outcome is a SessionEstablished or SessionRejected event.
        """
        self._check_usable()
        if not self.is_client:
            raise SessionError("only a client opens sessions")
        if self.goaway_received is not None:
            raise SessionError("the server sent GOAWAY: it accepts no new sessions on this connection")
        session_id = self.quic.get_next_available_stream_id(is_unidirectional=False)
        request = build_connect_request(authority=authority, path=path, origin=origin,
                                        protocol=protocol, extra=headers)
        rec = SessionRecord(session_id=session_id, path=path, authority=authority,
                            headers=decode_header_list(request), created_at=self._now)
        self._sessions[session_id] = rec
        stream = _Stream(session_id, _Kind.CONNECT, is_unidirectional=False, local=True, session_id=session_id,
                         parser=frames.FrameParser(max_frame_size=self.config.max_header_block_size))
        self._streams[session_id] = stream
        # Reserve the stream id now so that the next session gets the next id.
        self.quic.send_stream_data(session_id, b"")
        if self._peer is None:
            self._awaiting_settings.append(session_id)
        else:
            self._send_connect(rec)
        return session_id

    def accept_session(self, session_id: int, *, headers: dict[str, str] | None = None) -> None:
        """Server: answer a SessionRequested with 200 and make the session usable."""
        rec = self._require_session(session_id)
        if self.is_client or rec.state is not SessionState.CONNECTING:
            raise SessionError(f"session {session_id} is {rec.state.value}; only a requested session "
                               "can be accepted")
        self._send_headers(session_id, build_response(200, draft02=rec.draft02, extra=headers))
        self._establish(rec, {":status": "200"})

    def reject_session(self, session_id: int, status_code: int = 404,
                       headers: dict[str, str] | None = None) -> None:
        """Server: answer a SessionRequested with a non-2xx status and forget it."""
        if not 300 <= status_code <= 599:
            raise ValueError(f"a rejection needs a 3xx-5xx status, got {status_code}")
        rec = self._require_session(session_id)
        if self.is_client or rec.state is not SessionState.CONNECTING:
            raise SessionError(f"session {session_id} is {rec.state.value}; it cannot be rejected")
        self._send_headers(session_id, build_response(status_code, draft02=False, extra=headers), end_stream=True)
        rec.local_fin_sent = True
        self._finish_session(rec, 0, f"rejected with {status_code}", by_peer=False, emit=False)

    def close_session(self, session_id: int, error_code: int = 0, reason: str = "") -> None:
        """Send WT_CLOSE_SESSION with code and reason, then FIN (draft §5); resets streams."""
        rec = self._sessions.get(session_id)
        if rec is None or rec.state is SessionState.CLOSED:
            return
        capsule = capsules.encode_close_session(error_code, reason)  # validates code and reason
        if rec.state is SessionState.CONNECTING and not self.is_client:
            self.reject_session(session_id, 403)
            return
        if not rec.local_fin_sent and not self._closed:
            self._send_on_connect(rec, capsule, end_stream=True)
        self._finish_session(rec, error_code, reason, by_peer=False)

    def send_goaway(self) -> None:
        """Announce a graceful shutdown (RFC 9114 §5.2): no new request or session will be
        processed; established sessions carry on. A server names the first request stream id
        it will not process; a client sends 0 (it accepts no pushes)."""
        if self._closed or self.goaway_sent is not None or not self._h3_started:
            return
        last_id = 0 if self.is_client else self._highest_peer_bidi + 4
        self.goaway_sent = last_id
        self.quic.send_stream_data(self._local_control_id,
                                   frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(last_id)))

    def drain_session(self, session_id: int) -> None:
        """Send WT_DRAIN_SESSION: ask the peer to wind the session down."""
        rec = self._require_open(session_id)
        self._send_on_connect(rec, capsules.encode_drain_session())

    def grant_data_credit(self, session_id: int, max_data: int) -> None:
        """Raise the session's WT_MAX_DATA by hand (ignored unless it grows)."""
        rec = self._require_open(session_id)
        new = rec.recv_data.grant(max_data)
        if new is not None and rec.flow_control:
            self._send_on_connect(rec, capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_DATA, new))

    def grant_streams_credit(self, session_id: int, max_streams: int, is_unidirectional: bool) -> None:
        """Raise the session's WT_MAX_STREAMS of one kind by hand (ignored unless it grows)."""
        rec = self._require_open(session_id)
        window = rec.recv_streams_uni if is_unidirectional else rec.recv_streams_bidi
        new = window.grant(max_streams)
        if new is not None and rec.flow_control:
            kind = c.WT_CAPSULE_MAX_STREAMS_UNI if is_unidirectional else c.WT_CAPSULE_MAX_STREAMS_BIDI
            self._send_on_connect(rec, capsules.encode_varint_capsule(kind, new))

    # ------------------------------------------------------------------ streams

    def open_stream(self, session_id: int, *, is_unidirectional: bool) -> int:
        """Open a stream in the session and send its preamble; returns the stream id.

        Raises FlowControlError(error_code=WT_FLOW_CONTROL_ERROR) when no stream credit is left
        (check ``can_open_stream`` first and wait for SessionCreditUpdated).
        """
        rec = self._require_open(session_id)
        if rec.flow_control:
            credit = rec.send_streams_uni if is_unidirectional else rec.send_streams_bidi
            if not credit.try_consume(1):
                blocked = credit.blocked_at()
                if blocked is not None:
                    kind = c.WT_CAPSULE_STREAMS_BLOCKED_UNI if is_unidirectional else c.WT_CAPSULE_STREAMS_BLOCKED_BIDI
                    self._send_on_connect(rec, capsules.encode_varint_capsule(kind, blocked))
                raise FlowControlError(f"session {session_id} has no stream credit left")
        stream_id = self.quic.get_next_available_stream_id(is_unidirectional=is_unidirectional)
        if is_unidirectional:
            preamble = frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, session_id)
            rec.local_streams_uni_opened += 1
        else:
            preamble = frames.encode_bidi_stream_header(session_id)
            rec.local_streams_bidi_opened += 1
        stream = _Stream(stream_id, _Kind.WEBTRANSPORT, is_unidirectional, local=True, session_id=session_id,
                         recv_closed=is_unidirectional, announced=True)
        self._streams[stream_id] = stream
        rec.streams[stream_id] = is_unidirectional
        self.quic.send_stream_data(stream_id, preamble)
        return stream_id

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue payload on a session stream; bytes beyond session credit wait in the engine."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.kind is not _Kind.WEBTRANSPORT or stream.send_closed:
            raise StreamClosedError(f"stream {stream_id} is not open for sending")
        if stream.is_unidirectional and not stream.local:
            raise StreamClosedError(f"stream {stream_id} is the peer's unidirectional stream")
        rec = self._sessions.get(stream.session_id)
        if rec is None or not rec.is_open:
            raise StreamClosedError(f"stream {stream_id}: its session is closed")
        if end_stream:
            stream.send_closed = True
            rec.note_finished_send(stream_id, self.quic.send_acknowledged)
        rec.data_sent += len(data)
        if not rec.flow_control:
            self.quic.send_stream_data(stream_id, data, end_stream)
        else:
            if stream.pending:
                stream.pending += data
                stream.pending_fin = stream.pending_fin or end_stream
            else:
                granted = rec.send_data.try_consume(len(data))
                if granted == len(data):
                    self.quic.send_stream_data(stream_id, data, end_stream)
                else:
                    if granted:
                        self.quic.send_stream_data(stream_id, data[:granted])
                    stream.pending += data[granted:]
                    stream.pending_fin = end_stream
                    rec.blocked_streams.append(stream_id)
                    blocked = rec.send_data.blocked_at()
                    if blocked is not None:
                        self._send_on_connect(rec, capsules.encode_varint_capsule(c.WT_CAPSULE_DATA_BLOCKED, blocked))
        self._maybe_forget_stream(stream)

    def reset_stream(self, stream_id: int, error_code: int = 0) -> None:
        """RESET_STREAM with an application code mapped into the HTTP/3 space."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.kind is not _Kind.WEBTRANSPORT:
            raise StreamClosedError(f"stream {stream_id} is not a session stream")
        code = error_codes.app_code_to_http(error_code)
        if not stream.send_closed or stream.pending:
            stream.pending.clear()
            stream.send_closed = True
            self._quic_reset(stream_id, code)
        self._maybe_forget_stream(stream)

    def stop_stream(self, stream_id: int, error_code: int = 0) -> None:
        """STOP_SENDING with an application code mapped into the HTTP/3 space."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.kind is not _Kind.WEBTRANSPORT:
            raise StreamClosedError(f"stream {stream_id} is not a session stream")
        code = error_codes.app_code_to_http(error_code)
        if not stream.recv_closed:
            stream.recv_closed = True
            self._quic_stop(stream_id, code)
        self._maybe_forget_stream(stream)

    def consume_stream_data(self, stream_id: int, amount: int) -> None:
        """The application read ``amount`` bytes: return QUIC and session credit."""
        self.quic.consume_stream_data(stream_id, amount)
        stream = self._streams.get(stream_id)
        if stream is None or stream.kind is not _Kind.WEBTRANSPORT:
            return
        rec = self._sessions.get(stream.session_id)
        if rec is None or not rec.flow_control or not rec.is_open:
            return
        new = rec.recv_data.on_consume(amount)
        if new is not None:
            self._send_on_connect(rec, capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_DATA, new))

    # ------------------------------------------------------------------ datagrams

    def send_datagram(self, session_id: int, data: bytes) -> bool:
        """Send one datagram; False when aioquic's queue is full and it was dropped.

        DatagramTooLargeError when it cannot fit a packet: aioquic would otherwise block its
        datagram queue forever on it.
        """
        rec = self._require_open(session_id)
        datagrams.check_payload_size(len(data), self.max_datagram_size(session_id))
        if self.quic.pending_datagrams >= self.config.max_pending_datagrams:
            rec.datagrams_dropped += 1
            return False
        self.quic.send_datagram_frame(datagrams.encode_datagram(session_id, data))
        rec.datagrams_sent += 1
        rec.datagram_bytes_sent += len(data)
        return True

    # ------------------------------------------------------------------ QUIC events

    def watch_writable(self, stream_id: int, low_water: int) -> None:
        """Emit StreamWritable once the stream has at most ``low_water`` bytes unacknowledged
        (at once if it already has), or once it can no longer be written."""
        self._write_watch[stream_id] = low_water
        self._check_watches()

    def watch_stream_credit(self, session_id: int, is_unidirectional: bool) -> None:
        """Emit StreamCreditAvailable once the session may open a stream of this kind (at once
        if it may now), or once it closed. Tells the peer WT_STREAMS_BLOCKED when session
        credit is what blocks (draft-15 §5.6.3)."""
        rec = self._sessions.get(session_id)
        if rec is not None and rec.is_open and rec.flow_control and not self.can_open_stream(session_id,
                                                                                                 is_unidirectional):
            credit = rec.send_streams_uni if is_unidirectional else rec.send_streams_bidi
            if credit.available == 0:
                blocked = credit.blocked_at()
                if blocked is not None:
                    kind = (c.WT_CAPSULE_STREAMS_BLOCKED_UNI if is_unidirectional
                            else c.WT_CAPSULE_STREAMS_BLOCKED_BIDI)
                    self._send_on_connect(rec, capsules.encode_varint_capsule(kind, blocked))
        self._credit_watch.add((session_id, is_unidirectional))
        self._check_watches()

    def _check_watches(self) -> None:
        """Announce writability: O(watched streams and sessions), never a scan of all."""
        if self._write_watch:
            for stream_id, low_water in list(self._write_watch.items()):
                stream = self._streams.get(stream_id)
                if (stream is None or stream.kind is not _Kind.WEBTRANSPORT or self._closed
                        or self.stream_send_buffered(stream_id) <= low_water):
                    del self._write_watch[stream_id]
                    session_id = stream.session_id if stream is not None else -1
                    self._events.append(ev.StreamWritable(session_id, stream_id))
        if self._credit_watch:
            for key in list(self._credit_watch):
                session_id, uni = key
                rec = self._sessions.get(session_id)
                if rec is None or not rec.is_open or self._closed or self.can_open_stream(session_id, uni):
                    self._credit_watch.discard(key)
                    self._events.append(ev.StreamCreditAvailable(session_id, uni))

    def session_snapshot(self, session_id: int) -> SessionSnapshot | None:
        """A frozen copy of the session's state and counters (None for an unknown session)."""
        rec = self._sessions.get(session_id)
        if rec is None:
            return None
        fc = rec.flow_control
        return SessionSnapshot(
            session_id=rec.session_id, state=rec.state, path=rec.path, authority=rec.authority,
            draft02=rec.draft02, flow_control=fc, created_at=rec.created_at, ready_at=rec.ready_at,
            closed_at=rec.closed_at, close_code=rec.close_code, close_reason=rec.close_reason,
            close_cause=rec.close_cause, open_streams=len(rec.streams), data_sent=rec.data_sent,
            data_received=rec.data_received, datagrams_sent=rec.datagrams_sent,
            datagram_bytes_sent=rec.datagram_bytes_sent, datagrams_received=rec.datagrams_received,
            datagram_bytes_received=rec.datagram_bytes_received, datagrams_dropped=rec.datagrams_dropped,
            local_streams_bidi_opened=rec.local_streams_bidi_opened,
            local_streams_uni_opened=rec.local_streams_uni_opened,
            peer_streams_bidi_opened=rec.peer_streams_bidi_opened,
            peer_streams_uni_opened=rec.peer_streams_uni_opened,
            send_data_available=rec.send_data.available if fc else 0,
            send_streams_bidi_available=rec.send_streams_bidi.available if fc else 0,
            send_streams_uni_available=rec.send_streams_uni.available if fc else 0,
            blocked_bytes=sum(len(self._streams[sid].pending) for sid in rec.blocked_streams if sid in self._streams),
        )

    def _pump(self) -> None:
        while True:
            event = self.quic.next_event()
            if event is None:
                if self._write_watch or self._credit_watch:
                    self._check_watches()
                return
            try:
                self._handle_quic_event(event)
            except ProtocolError as exc:
                self._connection_error(exc.error_code or c.H3_GENERAL_PROTOCOL_ERROR, exc.message)
            except Exception as exc:  # a bug of ours must not take the event loop down
                logger.exception("internal error while handling %r", event)
                self._connection_error(c.H3_INTERNAL_ERROR, f"internal error: {exc!r}")

    def _handle_quic_event(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.StreamDataReceived):
            if not self._closed:
                self._on_stream_data(event.stream_id, event.data, event.end_stream)
        elif isinstance(event, quic_events.DatagramFrameReceived):
            if not self._closed:
                self._on_datagram(event.data)
        elif isinstance(event, quic_events.StreamReset):
            self._on_stream_reset(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.StopSendingReceived):
            self._on_stop_sending(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.HandshakeCompleted):
            self._start_h3()
        elif isinstance(event, quic_events.ConnectionIdIssued):
            self._events.append(ev.ConnectionIdIssued(event.connection_id))
        elif isinstance(event, quic_events.ConnectionIdRetired):
            self._events.append(ev.ConnectionIdRetired(event.connection_id))
        elif isinstance(event, quic_events.ConnectionTerminated):
            by_peer = not self._closed
            self._closed = True
            if event.reason_phrase == "Idle timeout":  # aioquic's own phrase for its idle timer
                by_peer, cause = False, CloseCause.IDLE_TIMEOUT
            elif by_peer:
                cause = CloseCause.PEER_CONNECTION_CLOSE
            else:
                cause = CloseCause.CONNECTION_CLOSED
            self._end_all_sessions(0, event.reason_phrase or "connection terminated", by_peer=by_peer, cause=cause)
            self._events.append(ev.ConnectionTerminated(event.error_code, event.reason_phrase, by_peer))

    def _connection_error(self, error_code: int, reason: str) -> None:
        if self._closed:
            return
        logger.warning("closing connection: %s (error code %#x)", reason, error_code)
        self._events.append(ev.ProtocolViolation(error_code, reason))
        self.close(error_code, reason)

    # ------------------------------------------------------------------ HTTP/3 setup

    def _start_h3(self) -> None:
        if self._h3_started:
            return
        self._h3_started = True
        quic = self.quic
        self._local_control_id = quic.get_next_available_stream_id(is_unidirectional=True)
        quic.send_stream_data(
            self._local_control_id,
            frames.encode_uni_stream_header(c.STREAM_TYPE_CONTROL)
            + frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings(self.local_settings)),
        )
        self._local_encoder_id = quic.get_next_available_stream_id(is_unidirectional=True)
        quic.send_stream_data(self._local_encoder_id, frames.encode_uni_stream_header(c.STREAM_TYPE_QPACK_ENCODER))
        self._local_decoder_id = quic.get_next_available_stream_id(is_unidirectional=True)
        quic.send_stream_data(self._local_decoder_id, frames.encode_uni_stream_header(c.STREAM_TYPE_QPACK_DECODER))
        self._encoder.apply_settings(0, 0)

    def _on_control_frame(self, frame_type: int, payload: bytes) -> None:
        if self._peer is None:
            if frame_type != c.FRAME_SETTINGS:
                raise ProtocolError(f"first control frame is {frame_type:#x}, not SETTINGS",
                                    error_code=c.H3_MISSING_SETTINGS)
            settings = frames.decode_settings(payload)
            for key in (c.SETTINGS_H3_DATAGRAM, c.SETTINGS_ENABLE_CONNECT_PROTOCOL):
                if settings.get(key, 0) > 1:
                    raise ProtocolError(f"setting {key:#x} has invalid value {settings[key]}",
                                        error_code=c.H3_SETTINGS_ERROR)
            self._peer = PeerSettings(settings)
            self._events.append(ev.H3Ready(settings, self._peer.dialect))
            waiting, self._awaiting_settings = self._awaiting_settings, []
            for session_id in waiting:
                self._after_settings(session_id)
        elif frame_type == c.FRAME_SETTINGS:
            raise ProtocolError("second SETTINGS frame", error_code=c.H3_FRAME_UNEXPECTED)
        elif frame_type in _REQUEST_FRAMES or frame_type in c.H3_HTTP2_ONLY_FRAMES:
            raise ProtocolError(f"frame {frame_type:#x} is not allowed on the control stream",
                                error_code=c.H3_FRAME_UNEXPECTED)
        elif frame_type == c.FRAME_GOAWAY:
            reader = buffer.Reader(payload)
            try:
                last_id = reader.pull_varint()
            except buffer.BufferReadError as exc:
                raise ProtocolError("malformed GOAWAY", error_code=c.H3_FRAME_ERROR) from exc
            self.goaway_received = last_id
            self._events.append(ev.GoawayReceived(last_id))
        # CANCEL_PUSH and MAX_PUSH_ID: we never push, nothing to do.

    def _after_settings(self, session_id: int) -> None:
        rec = self._sessions.get(session_id)
        if rec is None:
            return
        if self.is_client:
            self._send_connect(rec)
        else:
            self._announce_request(rec)

    def _send_connect(self, rec: SessionRecord) -> None:
        assert self._peer is not None
        if not self._peer.supports_webtransport:
            self._reject_locally(rec, "the server does not announce WebTransport in its SETTINGS")
            return
        request = build_connect_request(
            authority=rec.authority, path=rec.path, origin=rec.headers.get("origin"),
            protocol="webtransport-h3" if self._peer.dialect == "draft-15" else "webtransport",
            extra={k: v for k, v in rec.headers.items() if not k.startswith(":")},
        )
        rec.headers = decode_header_list(request)
        self._send_headers(rec.session_id, request)

    def _reject_locally(self, rec: SessionRecord, reason: str) -> None:
        if not rec.local_fin_sent:
            rec.local_fin_sent = True
            self.quic.send_stream_data(rec.session_id, b"", end_stream=True)
        self._finish_session(rec, 0, reason, by_peer=False, emit=False)
        self._events.append(ev.SessionRejected(rec.session_id, 0, {}, reason))

    def _send_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        encoder_data, block = self._encoder.encode(stream_id, headers)
        if encoder_data:
            self.quic.send_stream_data(self._local_encoder_id, encoder_data)
        self.quic.send_stream_data(stream_id, frames.encode_frame(c.FRAME_HEADERS, block), end_stream)

    def _decode_headers(self, stream_id: int, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            decoder_data, header_list = self._decoder.feed_header(stream_id, block)
        except (pylsqpack.DecompressionFailed, pylsqpack.StreamBlocked) as exc:
            raise ProtocolError(f"QPACK header block on stream {stream_id} cannot be decoded",
                                error_code=c.QPACK_DECOMPRESSION_FAILED) from exc
        if decoder_data:
            self.quic.send_stream_data(self._local_decoder_id, decoder_data)
        return header_list

    # ------------------------------------------------------------------ stream data

    def _on_stream_data(self, stream_id: int, data: bytes, fin: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            local = (stream_id & 1) == (0 if self.is_client else 1)
            if local:
                return  # a stream we already forgot
            is_uni = bool(stream_id & 2)
            stream = _Stream(stream_id, _Kind.PENDING_UNI if is_uni else _Kind.PENDING_BIDI, is_uni, local=False,
                             send_closed=is_uni)
            self._streams[stream_id] = stream
            if not is_uni:
                self._highest_peer_bidi = max(self._highest_peer_bidi, stream_id)
        self._dispatch(stream, data, fin)

    def _dispatch(self, stream: _Stream, data: bytes, fin: bool) -> None:
        kind = stream.kind
        if kind is _Kind.WEBTRANSPORT:
            self._on_webtransport_data(stream, data, fin)
            return
        if kind is _Kind.PENDING_UNI or kind is _Kind.PENDING_BIDI:
            self._on_preamble(stream, data, fin)
            return
        # Everything but session payload is consumed by the engine itself, at once.
        self.quic.consume_stream_data(stream.stream_id, len(data))
        if kind is _Kind.CONTROL:
            assert stream.parser is not None
            for frame_type, payload in self._feed_frames(stream.parser, data):
                self._on_control_frame(frame_type, payload)
        elif kind is _Kind.QPACK_ENCODER:
            try:
                self._decoder.feed_encoder(data)
            except pylsqpack.EncoderStreamError as exc:
                raise ProtocolError("bad QPACK encoder stream", error_code=c.QPACK_ENCODER_STREAM_ERROR) from exc
        elif kind is _Kind.QPACK_DECODER:
            try:
                self._encoder.feed_decoder(data)
            except pylsqpack.DecoderStreamError as exc:
                raise ProtocolError("bad QPACK decoder stream", error_code=c.QPACK_DECODER_STREAM_ERROR) from exc
        elif kind is _Kind.REQUEST or kind is _Kind.CONNECT:
            self._on_request_stream_data(stream, data, fin)
        # IGNORED: dropped
        if fin and kind in _CRITICAL:  # RFC 9114 §6.2.1, RFC 9204 §4.2
            raise ProtocolError(f"the peer closed its {kind.value} stream", error_code=c.H3_CLOSED_CRITICAL_STREAM)

    @staticmethod
    def _feed_frames(parser: frames.FrameParser, data: bytes) -> list[tuple[int, bytes]]:
        try:
            return parser.feed(data)
        except FrameError as exc:
            raise ProtocolError(exc.message, error_code=exc.error_code) from exc

    def _on_preamble(self, stream: _Stream, data: bytes, fin: bool) -> None:
        stream.preamble += data
        if stream.kind is _Kind.PENDING_UNI:
            header = frames.read_uni_stream_header(stream.preamble)
            if header is None:
                if fin:
                    stream.kind = _Kind.IGNORED
                return
            stream_type, session_id, used = header
            rest = bytes(stream.preamble[used:])
            stream.preamble = bytearray()
            self._classify_uni(stream, stream_type, session_id)
        else:
            bidi = frames.read_bidi_stream_header(stream.preamble)
            if bidi is None:
                if fin:
                    stream.kind = _Kind.IGNORED
                return
            session_id, used = bidi
            rest = bytes(stream.preamble[used:])
            stream.preamble = bytearray()
            if session_id < 0:
                if self.is_client:
                    raise ProtocolError(f"server opened bidirectional stream {stream.stream_id} that is not "
                                        "WebTransport", error_code=c.H3_STREAM_CREATION_ERROR)
                stream.kind = _Kind.REQUEST
                stream.parser = frames.FrameParser(max_frame_size=self.config.max_header_block_size)
            else:
                self._attach_webtransport(stream, session_id)
        self.quic.consume_stream_data(stream.stream_id, used)
        if rest or fin:
            self._dispatch(stream, rest, fin)

    def _classify_uni(self, stream: _Stream, stream_type: int, session_id: int) -> None:
        kind = {c.STREAM_TYPE_CONTROL: _Kind.CONTROL, c.STREAM_TYPE_QPACK_ENCODER: _Kind.QPACK_ENCODER,
                c.STREAM_TYPE_QPACK_DECODER: _Kind.QPACK_DECODER}.get(stream_type)
        if kind is not None:
            if kind in self._peer_critical:
                raise ProtocolError(f"second {kind.value} stream from the peer", error_code=c.H3_STREAM_CREATION_ERROR)
            self._peer_critical[kind] = stream.stream_id
            stream.kind = kind
            if kind is _Kind.CONTROL:
                stream.parser = frames.FrameParser(max_frame_size=self.config.max_frame_size)
        elif stream_type == c.STREAM_TYPE_WEBTRANSPORT:
            self._attach_webtransport(stream, session_id)
        elif stream_type == c.STREAM_TYPE_PUSH and self.is_client:
            raise ProtocolError("push stream without MAX_PUSH_ID", error_code=c.H3_ID_ERROR)
        else:
            # Unknown (or server-received push) stream types: refuse that stream only (RFC 9114 §6.2).
            stream.kind = _Kind.IGNORED
            self._quic_stop(stream.stream_id, c.H3_STREAM_CREATION_ERROR)

    # ------------------------------------------------------------------ request streams

    def _on_request_stream_data(self, stream: _Stream, data: bytes, fin: bool) -> None:
        assert stream.parser is not None
        try:
            parsed = stream.parser.feed(data)
        except FrameError as exc:
            if exc.error_code == c.H3_EXCESSIVE_LOAD:
                self._abort_request_stream(stream, c.H3_EXCESSIVE_LOAD, exc.message)
                return
            raise ProtocolError(exc.message, error_code=exc.error_code) from exc
        for frame_type, payload in parsed:
            if stream.kind is _Kind.IGNORED:
                return
            if frame_type == c.FRAME_HEADERS:
                if stream.headers_done:
                    continue  # trailers: nothing in WebTransport uses them
                stream.headers_done = True
                if self.is_client:
                    self._on_response(stream, payload)
                else:
                    self._on_request(stream, payload)
            elif frame_type == c.FRAME_DATA:
                if not stream.headers_done:
                    raise ProtocolError("DATA before HEADERS", error_code=c.H3_FRAME_UNEXPECTED)
                self._on_capsule_bytes(stream, payload)
            elif frame_type in c.H3_HTTP2_ONLY_FRAMES or frame_type in (c.FRAME_SETTINGS, c.FRAME_GOAWAY,
                                                                        c.FRAME_MAX_PUSH_ID, c.FRAME_CANCEL_PUSH):
                raise ProtocolError(f"frame {frame_type:#x} on a request stream", error_code=c.H3_FRAME_UNEXPECTED)
        if fin and stream.kind is not _Kind.IGNORED:
            self._on_connect_stream_fin(stream)

    def _abort_request_stream(self, stream: _Stream, code: int, reason: str) -> None:
        logger.info("stream %d: %s", stream.stream_id, reason)
        rec = self._sessions.get(stream.session_id)
        stream.kind = _Kind.IGNORED
        self._quic_stop(stream.stream_id, code)
        self._quic_reset(stream.stream_id, code)
        if rec is not None:
            rec.local_fin_sent = True
            self._finish_session(rec, code, reason, by_peer=False, cause=CloseCause.SESSION_ERROR)

    def _on_request(self, stream: _Stream, block: bytes) -> None:
        header_list = self._decode_headers(stream.stream_id, block)
        if self.goaway_sent is not None and stream.stream_id >= self.goaway_sent:
            # After GOAWAY the request is refused unprocessed: the client may retry elsewhere.
            stream.kind = _Kind.IGNORED
            self._quic_stop(stream.stream_id, c.H3_REQUEST_REJECTED)
            self._quic_reset(stream.stream_id, c.H3_REQUEST_REJECTED)
            return
        try:
            request = parse_connect_request(decode_header_list(header_list))
        except HeaderValidationError as exc:
            logger.info("stream %d: refused request: %s", stream.stream_id, exc)
            self._send_headers(stream.stream_id, build_response(exc.status, draft02=False), end_stream=True)
            stream.kind = _Kind.IGNORED
            return
        active = sum(1 for s in self._sessions.values() if s.state is not SessionState.CLOSED)
        if active >= self.config.max_sessions:
            self._send_headers(stream.stream_id, build_response(429, draft02=False), end_stream=True)
            stream.kind = _Kind.IGNORED
            return
        rec = SessionRecord(session_id=stream.stream_id, path=request.path, authority=request.authority,
                            headers=request.headers, created_at=self._now, draft02=request.draft02)
        self._sessions[rec.session_id] = rec
        stream.kind = _Kind.CONNECT
        stream.session_id = rec.session_id
        stream.draft02 = request.draft02
        if self._peer is None:
            self._awaiting_settings.append(rec.session_id)
        else:
            self._announce_request(rec)

    def _announce_request(self, rec: SessionRecord) -> None:
        h = rec.headers
        self._events.append(ev.SessionRequested(rec.session_id, rec.path, rec.authority, h.get("origin"),
                                                h.get(":protocol", "webtransport"), dict(h)))

    def _on_response(self, stream: _Stream, block: bytes) -> None:
        rec = self._sessions.get(stream.session_id)
        header_list = self._decode_headers(stream.stream_id, block)
        if rec is None or rec.state is not SessionState.CONNECTING:
            return
        try:
            headers = decode_header_list(header_list)
            status = parse_status(headers)
        except HeaderValidationError as exc:
            raise ProtocolError(str(exc), error_code=c.H3_MESSAGE_ERROR) from exc
        if 200 <= status < 300:
            self._establish(rec, headers)
            return
        stream.kind = _Kind.IGNORED
        if not rec.local_fin_sent:
            rec.local_fin_sent = True
            self.quic.send_stream_data(rec.session_id, b"", end_stream=True)
        self._finish_session(rec, 0, f"rejected with status {status}", by_peer=True, emit=False)
        self._events.append(ev.SessionRejected(rec.session_id, status, headers))

    def _establish(self, rec: SessionRecord, response: dict[str, str]) -> None:
        rec.transition(SessionState.CONNECTED)
        rec.ready_at = self._now
        peer = self._peer
        stream = self._streams[rec.session_id]
        if stream.capsules is None:
            stream.capsules = capsules.CapsuleParser(max_capsule_size=self.config.max_capsule_size)
        # Session flow control needs both ends to speak the draft that defines it.
        if peer is not None and peer.flow_control and c.SETTINGS_WT_INITIAL_MAX_DATA in self.local_settings:
            cfg = self.config
            rec.flow_control = True
            rec.send_data = flow.SendCredit(peer.initial_max_data)
            rec.send_streams_bidi = flow.SendCredit(peer.initial_max_streams_bidi)
            rec.send_streams_uni = flow.SendCredit(peer.initial_max_streams_uni)
            rec.recv_data = flow.ReceiveWindow(cfg.initial_max_data, auto_extend=cfg.flow_control_auto_extend)
            rec.recv_streams_bidi = flow.ReceiveWindow(cfg.initial_max_streams_bidi,
                                                       auto_extend=cfg.flow_control_auto_extend)
            rec.recv_streams_uni = flow.ReceiveWindow(cfg.initial_max_streams_uni,
                                                      auto_extend=cfg.flow_control_auto_extend)
        self._events.append(ev.SessionEstablished(rec.session_id, response))
        self._release_early(rec)

    # ------------------------------------------------------------------ capsules

    def _on_capsule_bytes(self, stream: _Stream, data: bytes) -> None:
        rec = self._sessions.get(stream.session_id)
        if rec is None or rec.state is SessionState.CLOSED:
            return
        if stream.capsules is None:  # server, before accepting: buffer nothing but GREASE-tolerant parse
            stream.capsules = capsules.CapsuleParser(max_capsule_size=self.config.max_capsule_size)
        try:
            parsed = stream.capsules.feed(data)
        except CapsuleError as exc:
            self._abort_request_stream(stream, exc.error_code or c.H3_MESSAGE_ERROR, exc.message)
            return
        for capsule_type, value in parsed:
            if rec.is_closed:  # a capsule before this one ended the session
                return
            self._on_capsule(rec, capsule_type, value)

    def _on_capsule(self, rec: SessionRecord, capsule_type: int, value: object) -> None:
        if capsule_type == c.WT_CAPSULE_CLOSE_SESSION:
            assert isinstance(value, tuple)
            code, reason = value
            if not rec.local_fin_sent:
                rec.local_fin_sent = True
                self.quic.send_stream_data(rec.session_id, b"", end_stream=True)
            self._finish_session(rec, code, reason, by_peer=True)
        elif capsule_type == c.WT_CAPSULE_DRAIN_SESSION:
            if rec.state is SessionState.CONNECTED:
                rec.transition(SessionState.DRAINING)
                self._events.append(ev.SessionDraining(rec.session_id))
        elif capsule_type == c.CAPSULE_DATAGRAM:
            assert isinstance(value, bytes)
            self._deliver_datagram(rec, value)
        elif rec.flow_control and isinstance(value, int):
            self._on_flow_capsule(rec, capsule_type, value)

    def _on_flow_capsule(self, rec: SessionRecord, capsule_type: int, value: int) -> None:
        if capsule_type == c.WT_CAPSULE_MAX_DATA:
            if rec.send_data.update_limit(value):
                self._flush_blocked(rec)
                self._events.append(ev.SessionCreditUpdated(rec.session_id, ev.CreditKind.DATA, value))
        elif capsule_type in (c.WT_CAPSULE_MAX_STREAMS_BIDI, c.WT_CAPSULE_MAX_STREAMS_UNI):
            uni = capsule_type == c.WT_CAPSULE_MAX_STREAMS_UNI
            credit = rec.send_streams_uni if uni else rec.send_streams_bidi
            if credit.update_limit(value):
                self._events.append(ev.SessionCreditUpdated(rec.session_id, ev.CreditKind.STREAMS_UNI if uni else ev.CreditKind.STREAMS_BIDI,
                                                            value))
        elif capsule_type == c.WT_CAPSULE_DATA_BLOCKED:
            self._events.append(ev.SessionBlocked(rec.session_id, ev.CreditKind.DATA, value))
        elif capsule_type == c.WT_CAPSULE_STREAMS_BLOCKED_BIDI:
            self._events.append(ev.SessionBlocked(rec.session_id, ev.CreditKind.STREAMS_BIDI, value))
        elif capsule_type == c.WT_CAPSULE_STREAMS_BLOCKED_UNI:
            self._events.append(ev.SessionBlocked(rec.session_id, ev.CreditKind.STREAMS_UNI, value))

    def _flush_blocked(self, rec: SessionRecord) -> None:
        while rec.blocked_streams:
            stream = self._streams.get(rec.blocked_streams[0])
            if stream is None or not stream.pending:
                rec.blocked_streams.popleft()
                continue
            granted = rec.send_data.try_consume(len(stream.pending))
            if not granted:
                blocked = rec.send_data.blocked_at()
                if blocked is not None:
                    self._send_on_connect(rec, capsules.encode_varint_capsule(c.WT_CAPSULE_DATA_BLOCKED, blocked))
                return
            chunk = bytes(stream.pending[:granted])
            del stream.pending[:granted]
            done = not stream.pending
            self.quic.send_stream_data(stream.stream_id, chunk, end_stream=done and stream.pending_fin)
            if done:
                rec.blocked_streams.popleft()
                self._maybe_forget_stream(stream)

    def _send_on_connect(self, rec: SessionRecord, capsule: bytes, end_stream: bool = False) -> None:
        if rec.local_fin_sent or self._closed:
            return
        if end_stream:
            rec.local_fin_sent = True
        self.quic.send_stream_data(rec.session_id, frames.encode_frame(c.FRAME_DATA, capsule), end_stream)

    def _on_connect_stream_fin(self, stream: _Stream) -> None:
        rec = self._sessions.get(stream.session_id)
        if stream.kind is _Kind.REQUEST or rec is None or rec.state is SessionState.CLOSED:
            return
        # A FIN without WT_CLOSE_SESSION means closed with code 0 (draft §5).
        if not rec.local_fin_sent:
            rec.local_fin_sent = True
            self.quic.send_stream_data(rec.session_id, b"", end_stream=True)
        if rec.state is SessionState.CONNECTING and self.is_client:
            stream.kind = _Kind.IGNORED
            self._finish_session(rec, 0, "the server ended the CONNECT stream", by_peer=True, emit=False)
            self._events.append(ev.SessionRejected(rec.session_id, 0, {}, "CONNECT stream ended without response"))
            return
        self._finish_session(rec, 0, "", by_peer=True)

    # ------------------------------------------------------------------ session streams

    def _attach_webtransport(self, stream: _Stream, session_id: int) -> None:
        if session_id % 4 != 0:
            raise ProtocolError(f"stream {stream.stream_id} names session {session_id}, not a client "
                                "bidirectional stream id", error_code=c.H3_ID_ERROR)
        stream.kind = _Kind.WEBTRANSPORT
        stream.session_id = session_id
        rec = self._sessions.get(session_id)
        if rec is not None and rec.is_open:
            self._announce_stream(rec, stream)
        elif rec.state is SessionState.CONNECTING if rec is not None else not self._session_gone(session_id):
            if self._early_count >= self.config.max_buffered_streams:
                self._refuse_stream(stream, c.WT_BUFFERED_STREAM_REJECTED)
                return
            self._early_count += 1
            stream.early = []
        else:
            self._refuse_stream(stream, c.WT_SESSION_GONE)

    def _session_gone(self, session_id: int) -> bool:
        if session_id in self._sessions:
            return self._sessions[session_id].state is SessionState.CLOSED
        if self.is_client:
            return session_id < self.quic._local_next_stream_id_bidi
        return session_id <= self._highest_peer_bidi

    def _refuse_stream(self, stream: _Stream, code: int) -> None:
        stream.kind = _Kind.IGNORED
        stream.early = None
        if not stream.recv_closed:
            stream.recv_closed = True
            self._quic_stop(stream.stream_id, code)
        if not stream.send_closed:
            stream.send_closed = True
            self._quic_reset(stream.stream_id, code)
        self.quic.forget_stream(stream.stream_id)
        self._note_tombstone()

    def _note_tombstone(self) -> None:
        self._forgotten += 1
        if self._forgotten >= _SWEEP_EVERY:
            self._forgotten = 0
            self._sweep_tombstones()

    def _sweep_tombstones(self) -> None:
        """Drop records of finished streams that aioquic has discarded too: it drops every
        late frame for those itself, so the record has nothing left to guard."""
        live = self.quic._streams
        for stream_id in [sid for sid, s in self._streams.items()
                          if sid not in live and (s.kind is _Kind.IGNORED or
                                                  (s.kind is _Kind.CONNECT and self._session_gone(s.session_id)))]:
            del self._streams[stream_id]

    def _quic_stop(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(ValueError):  # aioquic already discarded the stream: nothing to stop
            self.quic.stop_stream(stream_id, code)

    def _quic_reset(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(ValueError):  # already finished and discarded
            self.quic.reset_stream(stream_id, code)

    def _announce_stream(self, rec: SessionRecord, stream: _Stream) -> bool:
        stream.announced = True
        if rec.flow_control:
            window = rec.recv_streams_uni if stream.is_unidirectional else rec.recv_streams_bidi
            try:
                window.on_receive(1)
            except FlowControlError as exc:
                self._refuse_stream(stream, c.WT_FLOW_CONTROL_ERROR)
                self._abort_session(rec, c.WT_FLOW_CONTROL_ERROR, exc.message)
                return False
        if stream.is_unidirectional:
            rec.peer_streams_uni_opened += 1
        else:
            rec.peer_streams_bidi_opened += 1
        rec.streams[stream.stream_id] = stream.is_unidirectional
        self._events.append(ev.StreamOpened(rec.session_id, stream.stream_id, stream.is_unidirectional))
        return True

    def _on_webtransport_data(self, stream: _Stream, data: bytes, fin: bool) -> None:
        if stream.early is not None:
            stream.early.append(data)
            stream.early_bytes += len(data)
            stream.early_fin = stream.early_fin or fin
            if stream.early_bytes > self.config.max_buffered_stream_bytes:
                self._early_count -= 1
                self._refuse_stream(stream, c.WT_BUFFERED_STREAM_REJECTED)
            return
        rec = self._sessions.get(stream.session_id)
        if rec is None or not rec.is_open or stream.recv_closed:
            return
        if rec.flow_control and data:
            try:
                rec.recv_data.on_receive(len(data))
            except FlowControlError as exc:
                self._abort_session(rec, c.WT_FLOW_CONTROL_ERROR, exc.message)
                return
        rec.data_received += len(data)
        if fin:
            stream.recv_closed = True
        self._events.append(ev.StreamDataReceived(rec.session_id, stream.stream_id, data, fin))
        if fin:
            self._maybe_forget_stream(stream)

    def _release_early(self, rec: SessionRecord) -> None:
        for stream in list(self._streams.values()):
            if stream.early is None or stream.session_id != rec.session_id:
                continue
            chunks, fin = stream.early, stream.early_fin
            stream.early = None
            self._early_count -= 1
            if not self._announce_stream(rec, stream):
                return
            payload = b"".join(chunks)
            if payload or fin:
                self._on_webtransport_data(stream, payload, fin)
        ring = self._early_datagrams.pop(rec.session_id, None)
        while ring is not None and (datagram := ring.pop()) is not None:
            self._deliver_datagram(rec, datagram)

    def _maybe_forget_stream(self, stream: _Stream) -> None:
        if not (stream.send_closed and stream.recv_closed) or stream.pending:
            return
        rec = self._sessions.get(stream.session_id)
        if rec is not None and rec.streams.pop(stream.stream_id, None) is not None and not stream.local \
                and rec.flow_control and rec.is_open:
            window = rec.recv_streams_uni if stream.is_unidirectional else rec.recv_streams_bidi
            new = window.on_consume(1)
            if new is not None:
                kind = c.WT_CAPSULE_MAX_STREAMS_UNI if stream.is_unidirectional else c.WT_CAPSULE_MAX_STREAMS_BIDI
                self._send_on_connect(rec, capsules.encode_varint_capsule(kind, new))
        # Keep a tombstone so late frames for this stream are recognised and dropped.
        stream.kind = _Kind.IGNORED
        self.quic.forget_stream(stream.stream_id)
        self._note_tombstone()

    def _on_stream_reset(self, stream_id: int, http_code: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if stream.kind is _Kind.WEBTRANSPORT:
            stream.recv_closed = True
            if stream.early is not None:
                stream.early = None
                self._early_count -= 1
                stream.kind = _Kind.IGNORED
                return
            app = error_codes.http_code_to_app(http_code)
            self._events.append(ev.StreamReset(stream.session_id, stream_id,
                                               http_code if app is None else app, http_code))
            self._maybe_forget_stream(stream)
        elif stream.kind is _Kind.CONNECT:
            rec = self._sessions.get(stream.session_id)
            if rec is not None and rec.state is not SessionState.CLOSED:
                rec.local_fin_sent = True
                if rec.state is SessionState.CONNECTING and self.is_client:
                    self._finish_session(rec, 0, "CONNECT stream reset", by_peer=True, emit=False)
                    self._events.append(ev.SessionRejected(rec.session_id, 0, {}, "CONNECT stream reset"))
                else:
                    self._finish_session(rec, 0, "", by_peer=True)
        elif stream.kind in _CRITICAL and not self._closed:
            raise ProtocolError(f"the peer reset its {stream.kind.value} stream",
                                error_code=c.H3_CLOSED_CRITICAL_STREAM)

    def _on_stop_sending(self, stream_id: int, http_code: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if stream.kind is _Kind.WEBTRANSPORT:
            # aioquic already answered with RESET_STREAM carrying the same code.
            stream.send_closed = True
            stream.pending.clear()
            app = error_codes.http_code_to_app(http_code)
            self._events.append(ev.StreamStopSending(stream.session_id, stream_id,
                                                     http_code if app is None else app, http_code))
            self._maybe_forget_stream(stream)
        elif stream.kind is _Kind.CONNECT:
            rec = self._sessions.get(stream.session_id)
            if rec is not None and rec.state is not SessionState.CLOSED:
                rec.local_fin_sent = True
                self._finish_session(rec, 0, "", by_peer=True)
        elif stream.kind in _CRITICAL and stream.local and not self._closed:
            raise ProtocolError("the peer stopped one of our critical streams",
                                error_code=c.H3_CLOSED_CRITICAL_STREAM)

    # ------------------------------------------------------------------ datagrams in

    def _on_datagram(self, data: bytes) -> None:
        try:
            session_id, payload = datagrams.decode_datagram(data)
        except DatagramError as exc:
            raise ProtocolError(exc.message, error_code=c.H3_DATAGRAM_ERROR) from exc
        rec = self._sessions.get(session_id)
        if rec is None:
            return  # unknown quarter stream id: drop silently (RFC 9297 §5)
        if rec.is_open:
            self._deliver_datagram(rec, payload)
        elif rec.state is SessionState.CONNECTING:
            ring = self._early_datagrams.get(session_id)
            if ring is None:
                ring = self._early_datagrams[session_id] = datagrams.DatagramRing(
                    max_count=self.config.max_buffered_datagrams, max_bytes=self.config.max_buffered_stream_bytes)
            ring.push(payload)

    def _deliver_datagram(self, rec: SessionRecord, payload: bytes) -> None:
        rec.datagrams_received += 1
        rec.datagram_bytes_received += len(payload)
        self._events.append(ev.DatagramReceived(rec.session_id, payload))

    # ------------------------------------------------------------------ session end

    def _abort_session(self, rec: SessionRecord, code: int, reason: str) -> None:
        """A session-level error: reset the CONNECT stream with ``code`` and end the session."""
        stream = self._streams.get(rec.session_id)
        if stream is not None:
            self._abort_request_stream(stream, code, reason)
        else:
            self._finish_session(rec, code, reason, by_peer=False, cause=CloseCause.SESSION_ERROR)

    def _finish_session(self, rec: SessionRecord, code: int, reason: str, *, by_peer: bool,
                        emit: bool = True, cause: CloseCause | None = None) -> None:
        if rec.state is SessionState.CLOSED:
            return
        if cause is None:
            cause = CloseCause.PEER_CLOSE if by_peer else CloseCause.LOCAL_CLOSE
        rec.close_cause = cause if emit else CloseCause.REJECTED
        rec.transition(SessionState.CLOSED)
        rec.closed_at = self._now
        rec.close_code = code
        rec.close_reason = reason
        if not self._closed:
            for stream_id in list(rec.streams):
                stream = self._streams.get(stream_id)
                if stream is not None:
                    self._refuse_stream(stream, c.WT_SESSION_GONE)
        for stream in self._streams.values():
            if stream.early is not None and stream.session_id == rec.session_id:
                self._early_count -= 1
                stream.early = None
                if not self._closed:
                    self._refuse_stream(stream, c.WT_SESSION_GONE)
        rec.streams.clear()
        rec.blocked_streams.clear()
        self._early_datagrams.pop(rec.session_id, None)
        if emit:
            self._events.append(ev.SessionClosed(rec.session_id, code, reason, by_peer, cause))
        self._prune_sessions()

    def _prune_sessions(self) -> None:
        """Keep closed sessions for diagnostics, but boundedly."""
        closed = [sid for sid, rec in self._sessions.items() if rec.state is SessionState.CLOSED]
        for sid in closed[: max(0, len(closed) - self.config.max_sessions)]:
            del self._sessions[sid]

    def _end_all_sessions(self, code: int, reason: str, *, by_peer: bool, cause: CloseCause) -> None:
        for rec in list(self._sessions.values()):
            if rec.state is not SessionState.CLOSED:
                self._finish_session(rec, code, reason, by_peer=by_peer, cause=cause)

    # ------------------------------------------------------------------ helpers

    def _check_usable(self) -> None:
        if self._closed:
            raise SessionError("the connection is closed")

    def _require_session(self, session_id: int) -> SessionRecord:
        rec = self._sessions.get(session_id)
        if rec is None:
            raise SessionError(f"no session {session_id} on this connection")
        return rec

    def _require_open(self, session_id: int) -> SessionRecord:
        rec = self._require_session(session_id)
        if not rec.is_open or self._closed:
            raise SessionError(f"session {session_id} is {rec.state.value}")
        return rec

    def stream_ids(self, session_id: int) -> Iterable[int]:
        rec = self._sessions.get(session_id)
        return list(rec.streams) if rec else []
