"""The sans-I/O HTTP/3 + WebTransport engine over one QUIC connection: its public face.

Bytes and time go in (``receive_datagram``, ``handle_timer``), events come out
(``next_event``), and packets are collected with ``datagrams_to_send``. The engine never
awaits, never reads a clock and never touches a socket, so a whole conversation can be
played in memory between two engines.

The engine is split along its seams: HTTP/3 control and QPACK (``h3.py``), request and
CONNECT streams (``requests.py``), stream and datagram routing (``routing.py``), one
``Session`` per session (``session.py``) with its flow control (``flow_control.py``), and
the stream table (``streams.py``). This module holds the state they share and the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as quic_events
from pywebtransport._protocol.budget import SharedBudgets
from pywebtransport._protocol.core import EngineConfig
from pywebtransport._protocol.headers import build_connect_request, build_response, decode_header_list
from pywebtransport._protocol.quic import QuicCore
from pywebtransport._protocol.requests import RequestStreams
from pywebtransport._protocol.routing import StreamRouting
from pywebtransport._protocol.session import Session
from pywebtransport._protocol.settings import Dialect, PeerSettings
from pywebtransport._protocol.snapshot import SessionSnapshot
from pywebtransport._protocol.streams import StreamKind, StreamRecord
from pywebtransport._wire import capsules, datagrams, error_codes, frames
from pywebtransport.exceptions import (
    DatagramError,
    LocalProtocolError,
    RemoteProtocolError,
    SessionError,
    StreamClosedError,
)
from pywebtransport.types import CloseCause, SessionState

__all__ = ["EngineConfig", "WebTransportEngine"]

logger = logging.getLogger(__name__)


class WebTransportEngine(RequestStreams, StreamRouting):
    """HTTP/3 + WebTransport for one QUIC connection, client or server role."""

    def __init__(self, quic: QuicCore, *, config: EngineConfig | None = None,
                 budgets: SharedBudgets | None = None) -> None:
        """``budgets``: the server's shared send/receive budgets (None: this engine is bounded
        by its own ``config`` alone)."""
        super().__init__(quic, config=config, budgets=budgets)
        self._write_watch: dict[int, int] = {}  # stream id -> low-water mark of unacked bytes
        #: Called when a watch is answered from outside a call into this engine (another
        #: engine freed room in a shared budget); set by ``watch_writable``.
        self._wakeup: Callable[[], None] | None = None
        self._credit_watch: set[tuple[int, bool]] = set()  # (session id, is_unidirectional)

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
        quic_timer = self.quic.get_timer()
        if quic_timer is not None and quic_timer <= now:
            self.quic.handle_timer(now=now)
        self._check_deadlines()
        self._pump()

    def get_timer(self) -> float | None:
        """The next moment ``handle_timer`` must run: QUIC's timer or one of our deadlines."""
        timers = [t for t in (self.quic.get_timer(), self._next_deadline()) if t is not None]
        return min(timers) if timers else None

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        """UDP datagrams to put on the wire now.

        Also where send buffers are measured again (acknowledgements arrived, data left),
        once per transmit pass rather than per packet: a writer waiting for connection room
        is then announced (StreamWritable), and the watch's ``wakeup`` is called, since the
        caller collects no events after this call.
        """
        self._now = now
        out = self.quic.datagrams_to_send(now=now)
        self._streams.sweep()  # aioquic discards finished streams while building packets
        self._refresh_send_buffers()
        return out

    def next_event(self) -> ev.EngineEvent | None:
        """The next event, or None when there is none."""
        return self._events.popleft() if self._events else None

    def close(self, error_code: int = c.H3_NO_ERROR, reason: str = "") -> None:
        """Close the whole connection (every session ends)."""
        if self._closed:
            return
        self._closed = True
        self.quic.close(error_code=error_code, reason_phrase=reason)
        self._release_budgets()
        cause = CloseCause.CONNECTION_CLOSED if error_code == c.H3_NO_ERROR else CloseCause.CONNECTION_ERROR
        self._end_all_sessions(reason or "connection closed", cause)

    # ------------------------------------------------------------------ queries

    @property
    def peer_settings(self) -> PeerSettings | None:
        return self._h3.peer

    @property
    def dialect(self) -> Dialect | None:
        """The WebTransport dialect the peer spoke in its SETTINGS (None before them or without)."""
        peer = self._h3.peer
        return peer.dialect if peer is not None else None

    @property
    def goaway_received(self) -> int | None:
        return self._h3.goaway_received

    @property
    def goaway_sent(self) -> int | None:
        return self._h3.goaway_sent

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def stream_record_count(self) -> int:
        """Stream records held (for leak tests and diagnostics)."""
        return len(self._streams)

    @property
    def early_stream_count(self) -> int:
        """Streams held waiting for their session (bounded by ``max_buffered_streams``)."""
        return self._streams.early_count

    def stream_records(self) -> Iterator[StreamRecord]:
        """Every stream record held now (diagnostics and tests; do not mutate)."""
        return iter(self._streams)

    @property
    def session_count(self) -> int:
        """Sessions held, open and recently closed (bounded by ``max_sessions`` closed ones)."""
        return len(self._sessions)

    def session(self, session_id: int) -> Session | None:
        """The live session object (engine-internal; the API layer reads ``session_snapshot``)."""
        return self._sessions.get(session_id)

    def session_state(self, session_id: int) -> SessionState | None:
        """The session's state alone (the hot-path check; ``session_snapshot`` copies all)."""
        session = self._sessions.get(session_id)
        return session.state if session is not None else None

    def session_snapshot(self, session_id: int) -> SessionSnapshot | None:
        """A frozen copy of the session's state and counters (None for an unknown session)."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        return session.snapshot(open_streams=self._streams.session_stream_count(session_id))

    def stream_ids(self, session_id: int) -> Iterable[int]:
        return self._streams.session_stream_ids(session_id)

    def stream_session(self, stream_id: int) -> int | None:
        record = self._streams.get(stream_id)
        return record.session_id if record is not None and record.kind is StreamKind.WEBTRANSPORT else None

    def stream_send_buffered(self, stream_id: int) -> int:
        """Bytes written to the stream and not yet acknowledged (incl. waiting for credit)."""
        return self._stream_held(stream_id)

    @property
    def send_buffered_total(self) -> int:
        """Bytes written on all session streams of this connection and not yet acknowledged
        (with qh3: not yet sent), including those waiting for session credit."""
        return self._send_bound.held

    @property
    def send_buffered_peak(self) -> int:
        """The most ``send_buffered_total`` ever was."""
        return self._send_bound.peak

    def send_buffer_room(self) -> int:
        """Bytes writers may still queue on this connection before they must wait: what is
        left of ``max_send_buffer`` and of the server's send budget. Once 0 it stays 0 until
        an eighth of the smaller bound is free (the announcement ``watch_writable`` waits for)."""
        if self._closed:
            return 0
        return self._send_bound.room()

    @property
    def receive_buffered_total(self) -> int:
        """Bytes held for the peer before anything can consume them: early streams' bytes and
        incomplete request header blocks (what this engine holds of the receive budget)."""
        return self._streams.receive.held

    @property
    def receive_budget_refusals(self) -> int:
        """Early streams and requests refused because the server's receive budget was spent."""
        return self._streams.receive.refusals

    def stream_send_acknowledged(self, stream_id: int) -> bool:
        """Whether every byte written to the stream (FIN included) was acknowledged; bytes
        still waiting for session credit count as unsent."""
        record = self._streams.get(stream_id)
        if record is not None and len(record.pending):
            return False
        return self.quic.send_acknowledged(stream_id)

    def finished_unacknowledged_streams(self, session_id: int) -> list[int]:
        """Streams of the session the application ended with FIN whose data is not yet
        acknowledged: what a graceful session close lingers for."""
        session = self._sessions.get(session_id)
        if session is None:
            return []
        waiting = [sid for sid in session.finished_sends if not self.stream_send_acknowledged(sid)]
        session.finished_sends = set(waiting)
        return waiting

    def session_close_confirmed(self, session_id: int) -> bool:
        """Whether the peer ended its side of the session's CONNECT stream (FIN or reset)
        after our close, i.e. it has read our WT_CLOSE_SESSION; True once nothing is left."""
        session = self._sessions.get(session_id)
        return session is None or session.peer_fin_received or self._closed

    def stream_is_writable(self, stream_id: int) -> bool:
        record = self._streams.get(stream_id)
        return bool(record and record.kind is StreamKind.WEBTRANSPORT and not record.send_closed)

    def max_datagram_size(self, session_id: int) -> int:
        """Largest datagram payload that can be sent in this session now."""
        return datagrams.max_payload_size(session_id, self.quic.remote_max_datagram_frame_size,
                                          self.quic.datagram_path_limit)

    def can_open_stream(self, session_id: int, is_unidirectional: bool) -> bool:
        """Whether both QUIC and the session's flow control allow one more stream now."""
        session = self._sessions.get(session_id)
        if session is None or not session.is_open or self._closed:
            return False
        if not self.quic.can_open_stream(is_unidirectional):
            return False
        return session.flow is None or session.flow.can_open(is_unidirectional)

    # ------------------------------------------------------------------ sessions

    def open_session(self, *, authority: str, path: str, origin: str | None = None,
                     headers: dict[str, str] | None = None, protocol: str = "webtransport",
                     protocols: Sequence[str] = ()) -> int:
        """Client: send an extended CONNECT; returns the session id (its stream id).

        The request waits inside the engine until the server's SETTINGS arrived, as RFC 9220
        §3 requires; the outcome is a SessionEstablished or SessionRejected event.
        ``protocols`` is the subprotocol offer (WT-Available-Protocols, draft-15 §3.3).
        """
        self._check_usable()
        if not self.is_client:
            raise LocalProtocolError("only a client opens sessions")
        if self._h3.goaway_received is not None:
            raise SessionError("the server sent GOAWAY: it accepts no new sessions on this connection")
        session_id = self.quic.get_next_available_stream_id(is_unidirectional=False)
        request = build_connect_request(authority=authority, path=path, origin=origin, protocol=protocol,
                                        extra=headers, available_protocols=list(protocols) if protocols else None)
        session = Session(host=self, session_id=session_id, path=path, authority=authority,
                          headers=decode_header_list(request), created_at=self._now,
                          available_protocols=tuple(protocols))
        self._add_session(session)
        self._streams.add(StreamRecord(session_id, StreamKind.CONNECT, is_unidirectional=False, local=True,
                                       session_id=session_id,
                                       parser=frames.FrameParser(max_frame_size=self.config.max_header_block_size)))
        self.quic.send_stream_data(session_id, b"")  # reserve the id: the next session gets the next one
        if self._h3.peer is None:
            self._awaiting_settings.append(session_id)
        else:
            self._send_connect(session)
        return session_id

    def accept_session(self, session_id: int, *, headers: dict[str, str] | None = None,
                       protocol: str | None = None) -> None:
        """Server: answer a SessionRequested with 200 and make the session usable; ``protocol``
        (one of the client's ``available_protocols``) is answered as WT-Protocol (draft-15 §3.3)."""
        session = self._require_session(session_id)
        if self.is_client or session.state is not SessionState.CONNECTING:
            raise LocalProtocolError(f"session {session_id} is {session.state.value}; only a requested session "
                                     "can be accepted")
        if protocol is not None and protocol not in session.available_protocols:
            raise LocalProtocolError(f"subprotocol {protocol!r} was not offered by the client "
                                     f"(offered: {list(session.available_protocols)})")
        session.protocol = protocol
        self._h3.send_headers(session_id, build_response(200, draft02=session.draft02, extra=headers,
                                                         protocol=protocol))
        self._establish(session, {":status": "200"})

    def reject_session(self, session_id: int, status_code: int = 404,
                       headers: dict[str, str] | None = None) -> None:
        """Server: answer a SessionRequested with a non-2xx status and forget it."""
        if not 300 <= status_code <= 599:
            raise ValueError(f"a rejection needs a 3xx-5xx status, got {status_code}")
        session = self._require_session(session_id)
        if self.is_client or session.state is not SessionState.CONNECTING:
            raise LocalProtocolError(f"session {session_id} is {session.state.value}; it cannot be rejected")
        self._h3.send_headers(session_id, build_response(status_code, draft02=False, extra=headers), end_stream=True)
        session.local_fin_sent = True
        session.reject(status_code, {}, f"rejected with {status_code}", notify=False)

    def close_session(self, session_id: int, error_code: int = 0, reason: str = "") -> None:
        """Send WT_CLOSE_SESSION with code and reason, then FIN (draft §6); resets streams."""
        session = self._sessions.get(session_id)
        if session is None or session.is_closed:
            return
        if session.state is SessionState.CONNECTING and not self.is_client:
            self.reject_session(session_id, 403)
            return
        session.close_locally(error_code, reason)

    def send_goaway(self) -> None:
        """Announce a graceful shutdown (RFC 9114 §5.2): no new request or session will be
        processed; established sessions carry on. A server names the first request stream id
        it will not process; a client sends 0 (it accepts no pushes)."""
        if self._closed:
            return
        # A client accepts no pushes (0); a server names the first request it will not process,
        # stream 0 when it saw none.
        nothing_seen = self.is_client or self._highest_peer_bidi < 0
        self._h3.send_goaway(0 if nothing_seen else self._highest_peer_bidi + 4)

    def drain_session(self, session_id: int) -> None:
        """Send WT_DRAIN_SESSION: ask the peer to wind the session down."""
        self._require_open(session_id).send_capsules([capsules.encode_drain_session()])

    def grant_data_credit(self, session_id: int, max_data: int) -> None:
        """Raise the session's WT_MAX_DATA by hand (ignored unless it grows or without flow control)."""
        session = self._require_open(session_id)
        if session.flow is not None:
            session.send_capsules(session.flow.grant_data(max_data))

    def grant_streams_credit(self, session_id: int, max_streams: int, is_unidirectional: bool) -> None:
        """Raise the session's WT_MAX_STREAMS of one kind by hand (ignored unless it grows)."""
        session = self._require_open(session_id)
        if session.flow is not None:
            session.send_capsules(session.flow.grant_streams(max_streams, is_unidirectional))

    # ------------------------------------------------------------------ streams

    def open_stream(self, session_id: int, *, is_unidirectional: bool) -> int:
        """Open a stream in the session and send its preamble; returns the stream id.

        LocalProtocolError when QUIC or the session has no stream credit now: check
        ``can_open_stream`` first, or ``watch_stream_credit`` and wait for the event.
        """
        session = self._require_open(session_id)
        if not self.can_open_stream(session_id, is_unidirectional):
            kind = "unidirectional" if is_unidirectional else "bidirectional"
            raise LocalProtocolError(f"session {session_id} has no {kind} stream credit now")
        if session.flow is not None:
            session.flow.take_stream(is_unidirectional)
        stream_id = self.quic.get_next_available_stream_id(is_unidirectional=is_unidirectional)
        if is_unidirectional:
            preamble = frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, session_id)
            session.local_streams_uni_opened += 1
        else:
            preamble = frames.encode_bidi_stream_header(session_id)
            session.local_streams_bidi_opened += 1
        record = self._streams.add(StreamRecord(stream_id, StreamKind.WEBTRANSPORT, is_unidirectional, local=True,
                                                recv_closed=is_unidirectional))
        self._streams.attach(record, session_id)
        self.quic.send_stream_data(stream_id, preamble)
        self._send_bound.wrote(stream_id, len(preamble))
        return stream_id

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue payload on a session stream; bytes beyond session credit wait in the engine."""
        record = self._streams.get(stream_id)
        if record is None or record.kind is not StreamKind.WEBTRANSPORT or record.send_closed:
            raise StreamClosedError(f"stream {stream_id} is not open for sending")
        if record.is_unidirectional and not record.local:
            raise StreamClosedError(f"stream {stream_id} is the peer's unidirectional stream")
        session = self._sessions.get(record.session_id)
        if session is None or not session.is_open:
            raise StreamClosedError(f"stream {stream_id}: its session is closed")
        if end_stream:
            record.send_closed = True
            session.note_finished_send(stream_id, self.quic.send_acknowledged)
        session.data_sent += len(data)
        if session.flow is None:
            self.quic.send_stream_data(stream_id, data, end_stream)
        else:
            now, fin, capsules_out = session.flow.send(record, data, end_stream)
            if now or fin:
                self.quic.send_stream_data(stream_id, now, fin)
            session.send_capsules(capsules_out)
        self._send_bound.wrote(stream_id, len(data))  # held by QUIC or waiting for credit
        self._maybe_forget_stream(record)

    def reset_stream(self, stream_id: int, error_code: int = 0) -> None:
        """RESET_STREAM with an application code mapped into the HTTP/3 space."""
        record = self._require_session_stream(stream_id)
        code = error_codes.app_code_to_http(error_code)
        if not record.send_closed or len(record.pending):
            self._drop_pending(record)
            record.send_closed = True
            self._quic_reset(stream_id, code)
            self._send_bound.refresh_stream(stream_id)
        self._maybe_forget_stream(record)

    def stop_stream(self, stream_id: int, error_code: int = 0) -> None:
        """STOP_SENDING with an application code mapped into the HTTP/3 space."""
        record = self._require_session_stream(stream_id)
        code = error_codes.app_code_to_http(error_code)
        if not record.recv_closed:
            record.recv_closed = True
            self._quic_stop(stream_id, code)
        self._maybe_forget_stream(record)

    def consume_stream_data(self, stream_id: int, amount: int) -> None:
        """The application read ``amount`` bytes: return QUIC and session credit."""
        self.quic.consume_stream_data(stream_id, amount)
        record = self._streams.get(stream_id)
        session = self._sessions.get(record.session_id) if record is not None else None
        if session is not None and session.flow is not None and session.is_open:
            session.send_capsules(session.flow.on_consume(amount))

    # ------------------------------------------------------------------ datagrams

    def send_datagram(self, session_id: int, data: bytes) -> bool:
        """Send one datagram; False when the QUIC queue is full and it was dropped (counted).

        DatagramTooLargeError when it cannot fit a packet (aioquic would otherwise block its
        queue forever on it); DatagramError when the peer did not enable HTTP datagrams.
        """
        session = self._require_open(session_id)
        peer = self._h3.peer
        if peer is not None and not peer.supports_datagrams:  # RFC 9297 §2.1.1
            raise DatagramError("the peer did not send SETTINGS_H3_DATAGRAM=1: it accepts no HTTP datagrams")
        datagrams.check_payload_size(len(data), self.max_datagram_size(session_id))
        if self.quic.pending_datagrams >= self.config.max_pending_datagrams:
            session.datagrams_dropped += 1
            return False
        self.quic.send_datagram_frame(datagrams.encode_datagram(session_id, data))
        session.datagrams_sent += 1
        session.datagram_bytes_sent += len(data)
        return True

    # ------------------------------------------------------------------ announced writability

    def watch_writable(self, stream_id: int, low_water: int, *, wakeup: Callable[[], None] | None = None) -> None:
        """Emit StreamWritable once the stream has at most ``low_water`` bytes unacknowledged
        and the connection has send room (``send_buffer_room() > 0``), at once if both hold
        now, or once the stream can no longer be written.

        ``wakeup`` is called when the event is emitted outside any call into this engine:
        when another engine sharing the server's send budget freed room. The caller then
        collects events as it does after its own calls (it must not re-enter the engine
        from inside the callback; schedule that instead).
        """
        if wakeup is not None:
            self._wakeup = wakeup
        self._write_watch[stream_id] = low_water
        self._check_watches()

    def watch_stream_credit(self, session_id: int, is_unidirectional: bool) -> None:
        """Emit StreamCreditAvailable once the session may open a stream of this kind (at once
        if it may now), or once it closed. Tells the peer WT_STREAMS_BLOCKED when session
        credit is what blocks (draft-15 §5.6.3)."""
        session = self._sessions.get(session_id)
        if session is not None and session.is_open and session.flow is not None \
                and not session.flow.can_open(is_unidirectional):
            session.send_capsules(session.flow.streams_blocked(is_unidirectional))
        self._credit_watch.add((session_id, is_unidirectional))
        self._check_watches()

    def _check_watches(self) -> None:
        """O(watched streams and sessions), never a scan of all of them."""
        if self._write_watch:
            has_room = self._closed or self._send_bound.room() > 0
            for stream_id, low_water in list(self._write_watch.items()):
                record = self._streams.get(stream_id)
                if (record is None or record.kind is not StreamKind.WEBTRANSPORT or self._closed
                        or (has_room and self.stream_send_buffered(stream_id) <= low_water)):
                    del self._write_watch[stream_id]
                    self._events.append(ev.StreamWritable(record.session_id if record is not None else -1,
                                                          stream_id))
            budget = self.budgets.send
            if self._write_watch and not has_room and budget is not None and self._send_bound.budget_short:
                # Room comes back when another connection's bytes are acknowledged: be told.
                budget.notify_when(self._send_bound.resume_at, self._on_budget_room)
        for key in list(self._credit_watch):
            session_id, uni = key
            session = self._sessions.get(session_id)
            if session is None or not session.is_open or self._closed or self.can_open_stream(session_id, uni):
                self._credit_watch.discard(key)
                self._events.append(ev.StreamCreditAvailable(session_id, uni))

    def _on_budget_room(self) -> None:
        """The shared send budget has room again (another engine released bytes)."""
        if self._closed:
            return
        before = len(self._events)
        self._check_watches()
        if len(self._events) != before and self._wakeup is not None:
            self._wakeup()

    def _refresh_send_buffers(self) -> None:
        """Measure what the streams hold now (O(streams holding bytes)) and return what was
        freed to the shared budget; announce room to writers waiting for it."""
        if self._closed:
            return
        before = self._send_bound.held
        self._send_bound.refresh()
        if self._write_watch and self._send_bound.held < before:
            queued = len(self._events)
            self._check_watches()
            if len(self._events) != queued and self._wakeup is not None:
                self._wakeup()

    def _release_budgets(self) -> None:
        """The connection is over: what it held of the shared budgets goes back at once."""
        self._send_bound.close()
        self._streams.receive.close()
        if self.budgets.send is not None:
            self.budgets.send.cancel(self._on_budget_room)

    # ------------------------------------------------------------------ QUIC events

    def _pump(self) -> None:
        while (event := self.quic.next_event()) is not None:
            try:
                self._handle_quic_event(event)
            except RemoteProtocolError as exc:
                self._connection_error(exc.error_code or c.H3_GENERAL_PROTOCOL_ERROR, exc.message)
            except Exception as exc:  # a bug of ours must not take the event loop down
                logger.exception("internal error while handling %r", event)
                self._connection_error(c.H3_INTERNAL_ERROR, f"internal error: {exc!r}")
        if self._write_watch or self._credit_watch:
            self._check_watches()

    def _handle_quic_event(self, event: quic_events.QuicEvent) -> None:
        """Dispatch one backend-neutral QUIC event (the seam's classes, whichever the backend)."""
        kind = type(event)
        if kind is quic_events.StreamDataReceived:
            if not self._closed:
                self._on_stream_data(event.stream_id, event.data, event.end_stream)  # type: ignore[union-attr]
        elif kind is quic_events.DatagramFrameReceived:
            if not self._closed:
                self._on_datagram(event.data)  # type: ignore[union-attr]
        elif isinstance(event, quic_events.DatagramFrameLost):
            # Lost in transit and never resent (RFC 9221 §5.2): counted as dropped for its session.
            lost = self._sessions.get(datagrams.decode_datagram(event.data)[0])  # ours: it decodes
            if lost is not None:
                lost.datagrams_dropped += 1
        elif isinstance(event, quic_events.StreamReset):
            self._on_stream_reset(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.StopSendingReceived):
            self._on_stop_sending(event.stream_id, event.error_code)
        elif isinstance(event, quic_events.HandshakeCompleted):
            self._h3.start()
            if self._h3.peer is None:
                self._settings_deadline = self._now + self.config.settings_timeout
        elif isinstance(event, quic_events.ConnectionIdIssued):
            self._events.append(ev.ConnectionIdIssued(event.connection_id))
        elif isinstance(event, quic_events.ConnectionIdRetired):
            self._events.append(ev.ConnectionIdRetired(event.connection_id))
        elif isinstance(event, quic_events.ConnectionTerminated):
            self._on_terminated(event)

    def _on_terminated(self, event: quic_events.ConnectionTerminated) -> None:
        # The QUIC library may close by itself (a frame it could not parse): only a
        # CONNECTION_CLOSE that came from the peer is the peer's.
        by_peer = event.by_peer and not self._closed
        self._closed = True
        self._release_budgets()
        if event.idle_timeout:  # QUIC's own idle timer, whichever backend noticed it
            by_peer, cause = False, CloseCause.IDLE_TIMEOUT
        elif by_peer:
            cause = CloseCause.PEER_CONNECTION_CLOSE
        else:
            cause = CloseCause.CONNECTION_CLOSED
        self._end_all_sessions(event.reason_phrase or "connection terminated", cause)
        self._events.append(ev.ConnectionTerminated(event.error_code, event.reason_phrase, by_peer))

    def _connection_error(self, error_code: int, reason: str) -> None:
        if self._closed:
            return
        logger.warning("closing connection: %s [%s]", reason, c.describe_code(error_code))
        self._events.append(ev.ProtocolViolation(error_code, reason))
        self.close(error_code, reason)

    def _end_all_sessions(self, reason: str, cause: CloseCause) -> None:
        for session in list(self._sessions.values()):
            if not session.is_closed:
                session.connection_ended(reason, cause)

    # ------------------------------------------------------------------ deadlines

    def _next_deadline(self) -> float | None:
        if self._closed:
            return None
        cfg = self.config
        deadlines = [self._settings_deadline] if self._settings_deadline is not None else []
        if self._requests_started:
            deadlines.append(min(self._requests_started.values()) + cfg.request_timeout)
        oldest = self._streams.oldest_early() if self._streams.early_count else None
        if oldest is not None:
            deadlines.append(oldest + cfg.early_stream_timeout)
        if cfg.session_idle_timeout is not None and self._active_sessions:
            quiet = [s.last_activity for s in self._sessions.values() if s.is_open]
            if quiet:
                deadlines.append(min(quiet) + cfg.session_idle_timeout)
        return min(deadlines) if deadlines else None

    def _check_deadlines(self) -> None:
        """Slowloris bounds: nothing the peer started may stay half-done forever."""
        if self._closed:
            return
        now, cfg = self._now, self.config
        if self._settings_deadline is not None and now >= self._settings_deadline:
            self._connection_error(c.H3_MISSING_SETTINGS, f"no SETTINGS within {cfg.settings_timeout}s")
            return
        for stream_id, started in list(self._requests_started.items()):
            if now >= started + cfg.request_timeout:
                del self._requests_started[stream_id]
                record = self._streams.get(stream_id)
                if record is not None and record.kind is StreamKind.REQUEST:
                    logger.info("stream %d: request headers incomplete after %.1fs; resetting it with %s", stream_id,
                                cfg.request_timeout, c.describe_code(c.H3_REQUEST_INCOMPLETE))
                    self.abort_stream(stream_id, c.H3_REQUEST_INCOMPLETE)
        if self._streams.early_count:
            for session_id in self._streams.early_sessions():
                for stream_id in self._streams.early_ids(session_id):
                    record = self._streams.get(stream_id)
                    if record is not None and now >= record.early_since + cfg.early_stream_timeout:
                        self._refuse_stream(record, c.WT_BUFFERED_STREAM_REJECTED)
        if cfg.session_idle_timeout is not None:
            for session in [s for s in self._sessions.values() if s.is_open]:
                if now >= session.last_activity + cfg.session_idle_timeout:
                    logger.info("session %d: nothing arrived for %.1fs; closing it", session.session_id,
                                cfg.session_idle_timeout)
                    session.close_locally(0, "session idle timeout")
