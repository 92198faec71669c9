"""Request and CONNECT streams: the extended CONNECT exchange (RFC 9220, draft-15 §3) and
the capsules a session's CONNECT stream carries afterwards (RFC 9297 §3, draft-15 §6).

A malformed request is refused on its stream (400/405/431/501) and a malformed response
fails only its session (RFC 9114 §4.1.2); framing errors the RFC calls connection errors
raise RemoteProtocolError.
"""

from __future__ import annotations

import logging

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.core import EngineCore
from pywebtransport._protocol.headers import (
    WT_PROTOCOL,
    HeaderValidationError,
    build_connect_request,
    build_response,
    decode_header_list,
    decode_request,
    decode_response,
    field_section_size,
    parse_connect_request,
    parse_protocol,
    parse_status,
)
from pywebtransport._protocol.session import Session
from pywebtransport._protocol.settings import PeerSettings
from pywebtransport._protocol.streams import StreamKind, StreamRecord
from pywebtransport._wire import capsules
from pywebtransport.exceptions import CapsuleError, FlowControlError, FrameError, RemoteProtocolError
from pywebtransport.types import CloseCause, SessionState

__all__ = ["RequestStreams"]

logger = logging.getLogger(__name__)

#: Frames never allowed on a request stream (RFC 9114 §7.2.4-7.2.7, §11.2.1).
_NOT_ON_REQUEST = frozenset({c.FRAME_SETTINGS, c.FRAME_GOAWAY, c.FRAME_MAX_PUSH_ID, c.FRAME_CANCEL_PUSH}) \
    | c.H3_HTTP2_ONLY_FRAMES
#: WT_MAX_STREAMS / WT_STREAMS_BLOCKED capsule type -> is_unidirectional (draft-15 §5.6.2-§5.6.3).
_STREAMS_CAPSULES: dict[int, bool] = {c.CapsuleType.WT_MAX_STREAMS_BIDI: False, c.CapsuleType.WT_MAX_STREAMS_UNI: True}
_STREAMS_BLOCKED_CAPSULES: dict[int, bool] = {c.CapsuleType.WT_STREAMS_BLOCKED_BIDI: False,
                                              c.CapsuleType.WT_STREAMS_BLOCKED_UNI: True}
#: Capsules of WebTransport over HTTP/2 that HTTP/3 gets from QUIC itself (draft-15 §5.4).
_PROHIBITED_CAPSULES = frozenset({int(c.WT_CAPSULE_MAX_STREAM_DATA), int(c.WT_CAPSULE_STREAM_DATA_BLOCKED)})
#: The capsules that give credit: kept when they come before the session is established.
_CREDIT_CAPSULES = frozenset({int(c.WT_CAPSULE_MAX_DATA), *(int(t) for t in _STREAMS_CAPSULES)})


class RequestStreams(EngineCore):
    """The request/CONNECT stream side of the engine."""

    # -- the peer's SETTINGS arrived: release what waited for them (RFC 9220 §3)
    def _on_settings(self, peer: PeerSettings) -> None:
        self._settings_deadline = None
        waiting, self._awaiting_settings = self._awaiting_settings, []
        for session_id in waiting:
            session = self._sessions.get(session_id)
            if session is None or session.is_closed:
                continue
            if self.is_client:
                self._send_connect(session)
            else:
                self._admit_request(session)

    # -- the peer's GOAWAY (RFC 9114 §5.2, draft-15 §4.7)
    def _on_goaway(self, last_id: int) -> None:
        """A client's CONNECT requests at or above ``last_id`` will not be processed: they fail
        at once, as safe to retry on a new connection, instead of waiting out the connect
        timeout. Every other session is told to wind down, as by WT_DRAIN_SESSION: a GOAWAY
        "is also a signal to applications to initiate shutdown for all WebTransport sessions"
        (draft-15 §4.7); they may carry on meanwhile."""
        for session in list(self._sessions.values()):
            if session.is_closed:
                continue
            if self.is_client and session.state is SessionState.CONNECTING and session.session_id >= last_id:
                session.local_fin_sent = True  # the stream is cancelled below: no FIN on it
                self.abort_stream(session.session_id, c.H3_REQUEST_CANCELLED)
                session.reject(0, {}, f"the server's GOAWAY (last stream {last_id}) says it will not process this "
                                      "request; it is safe to retry on a new connection (RFC 9114 §5.2)")
            else:
                session.drained_by_peer()

    def _send_connect(self, session: Session) -> None:
        peer = self._h3.peer
        assert peer is not None
        problem = None
        if not peer.supports_webtransport:
            problem = "the server does not announce WebTransport in its SETTINGS"
        elif not peer.supports_extended_connect:
            problem = "the server does not allow extended CONNECT (no SETTINGS_ENABLE_CONNECT_PROTOCOL=1, RFC 9220 §3)"
        elif not peer.supports_datagrams:
            problem = "the server does not enable HTTP datagrams (no SETTINGS_H3_DATAGRAM=1, draft-15 §3.1)"
        elif self.quic.remote_max_datagram_frame_size <= 0:
            problem = "the server's max_datagram_frame_size transport parameter is 0 (draft-15 §3.1)"
        if problem is not None:
            session.reject(0, {}, problem)
            return
        request = build_connect_request(
            authority=session.authority, path=session.path, origin=session.headers.get("origin"),
            protocol=peer.upgrade_token, extra={k: v for k, v in session.headers.items() if not k.startswith(":")})
        limit, size = peer.max_field_section_size, field_section_size(request)
        if limit is not None and size > limit:  # RFC 9114 §4.2.2: SHOULD NOT send it; nothing is sent
            session.reject(0, {}, f"the request's header section is {size} bytes; the server accepts at most "
                                  f"{limit} (its SETTINGS_MAX_FIELD_SECTION_SIZE, RFC 9114 §4.2.2)")
            return
        session.headers = decode_header_list(request)
        self._h3.send_headers(session.session_id, request)

    # -- frames on request and CONNECT streams
    def _on_request_stream_data(self, record: StreamRecord, data: bytes, fin: bool) -> None:
        parser = record.parser
        assert parser is not None
        try:
            parsed = parser.feed(data)
        except FrameError as exc:
            if exc.error_code == c.H3_EXCESSIVE_LOAD:
                self._fail_request_stream(record, c.H3_EXCESSIVE_LOAD, exc.message)
                return
            raise RemoteProtocolError(exc.message, error_code=exc.error_code) from exc
        for frame_type, payload in parsed:
            if record.kind is StreamKind.FINISHED:
                return
            if frame_type == c.FRAME_HEADERS:
                if record.headers_done:
                    # RFC 9114 §4.4: the CONNECT request ends with its header section and the stream
                    # then carries DATA frames only (RFC 9110 §9.3.6: a CONNECT has no content, so
                    # no trailer section either), before the response as after it.
                    raise RemoteProtocolError(f"HEADERS frame on CONNECT stream {record.stream_id} after its "
                                              "header section (RFC 9114 §4.4: DATA frames only)",
                                              error_code=c.H3_FRAME_UNEXPECTED)
                if self.is_client:
                    record.headers_done = self._on_response(record, payload)
                else:
                    record.headers_done = True
                    self._on_request(record, payload)
            elif frame_type == c.FRAME_DATA:
                if not record.headers_done:  # RFC 9114 §4.1: an interim response has no content either
                    raise RemoteProtocolError("DATA before HEADERS", error_code=c.H3_FRAME_UNEXPECTED)
                self._on_capsule_bytes(record, payload)
            elif frame_type == c.FRAME_PUSH_PROMISE:
                if self.is_client:  # RFC 9114 §7.2.5: we never sent MAX_PUSH_ID
                    raise RemoteProtocolError("PUSH_PROMISE without MAX_PUSH_ID", error_code=c.H3_ID_ERROR)
                raise RemoteProtocolError("a client sent PUSH_PROMISE", error_code=c.H3_FRAME_UNEXPECTED)
            elif frame_type in _NOT_ON_REQUEST:
                raise RemoteProtocolError(f"frame {c.describe_code(frame_type, c.FrameType)} on a request stream",
                                          error_code=c.H3_FRAME_UNEXPECTED)
        if not self._hold_request_bytes(record):
            return
        if fin and record.kind is not StreamKind.FINISHED:
            if parser.in_frame:  # RFC 9114 §7.1: a truncated frame is a connection error
                raise RemoteProtocolError(f"stream {record.stream_id} ended inside a frame",
                                          error_code=c.H3_FRAME_ERROR)
            self._on_request_stream_fin(record)

    def _hold_request_bytes(self, record: StreamRecord) -> bool:
        """Charge what a request or CONNECT stream holds of an incomplete frame and an
        incomplete capsule to the receive budget (the server's, shared) and to this
        connection's ``max_buffered_bytes``. What does not fit is refused and False returned:
        a request unprocessed (H3_REQUEST_REJECTED, so the client may retry it, RFC 9114
        §4.1.1), a session with H3_EXCESSIVE_LOAD."""
        parser, parsed_capsules = record.parser, record.capsules
        held = ((parser.buffered if parser is not None else 0)
                + (parsed_capsules.buffered if parsed_capsules is not None else 0))
        before = record.held_request_bytes
        if held == before:
            return True
        receive = self._streams.receive
        if (held < before or receive.held + held - before <= self.config.max_buffered_bytes) \
                and self._streams.hold_request_bytes(record, held):
            return True
        if record.kind is StreamKind.REQUEST:
            logger.info("stream %d: request refused, the receive budget is spent", record.stream_id)
            self._refuse_request_stream(record, c.H3_REQUEST_REJECTED)
        else:
            self._fail_request_stream(record, c.H3_EXCESSIVE_LOAD,
                                      f"an incomplete frame or capsule of {held} bytes does not fit the receive "
                                      "budget")
        return False

    def _fail_request_stream(self, record: StreamRecord, code: int, reason: str) -> None:
        """A stream error on a request/CONNECT stream: reset it, end its session if any."""
        session = self._sessions.get(record.session_id) if record.kind is StreamKind.CONNECT else None
        if session is not None and not session.is_closed:
            session.abort(code, reason)  # logs, and resets the CONNECT stream through the host
        else:
            logger.info("stream %d: reset with %s: %s", record.stream_id, c.describe_code(code), reason)
            self.abort_stream(record.stream_id, code)

    def _on_request_stream_fin(self, record: StreamRecord) -> None:
        record.recv_closed = True
        finished = self._sessions.get(record.session_id) if record.kind is StreamKind.CONNECT else None
        if finished is not None:
            finished.peer_fin_received = True
        if record.kind is StreamKind.REQUEST:  # FIN before complete headers (RFC 9114 §4.1.2)
            self.abort_stream(record.stream_id, c.H3_REQUEST_INCOMPLETE)
            return
        if record.capsules is not None and record.capsules.in_capsule:  # RFC 9297 §3.3: malformed
            self._fail_request_stream(record, c.H3_MESSAGE_ERROR, "CONNECT stream ended inside a capsule")
            return
        session = self._sessions.get(record.session_id)
        if session is None or session.is_closed:
            self._streams.finish(record)
            return
        if session.state is SessionState.CONNECTING:
            if self.is_client:
                session.reject(0, {}, "the server ended the CONNECT stream without a response")
            else:  # the client gave up before we answered: cancel rather than answer a closed request
                session.local_fin_sent = True
                self.abort_stream(record.stream_id, c.H3_REQUEST_CANCELLED)
                session.end(0, "the client ended its request before it was answered", CloseCause.PEER_CLOSE)
                return
        else:  # a FIN without WT_CLOSE_SESSION closes with code 0 (draft-15 §6)
            session.closed_by_peer(0, "")
        self._streams.finish(record)

    # -- server: a request arrives
    def _on_request(self, record: StreamRecord, block: bytes) -> None:
        header_list = self._h3.decode_headers(record.stream_id, block)
        self._incomplete_openings.pop(record.stream_id, None)
        goaway = self._h3.goaway_sent
        if goaway is not None and record.stream_id >= goaway:
            # After GOAWAY the request is refused unprocessed: the client may retry elsewhere.
            self._refuse_request_stream(record, c.H3_REQUEST_REJECTED)
            return
        try:
            fields = decode_request(header_list, max_field_section_size=self.config.max_field_section_size)
            request = parse_connect_request(fields)
        except HeaderValidationError as exc:
            logger.info("stream %d: refused request: %s", record.stream_id, exc.message)
            self._answer_and_refuse(record, exc.status, exc.error_code or c.H3_MESSAGE_ERROR)
            return
        if self._active_sessions >= self.config.max_sessions:
            self._answer_and_refuse(record, 429, c.H3_REQUEST_REJECTED)
            return
        session = Session(host=self, session_id=record.stream_id, path=request.path, authority=request.authority,
                          headers=request.headers, created_at=self._now, draft02=request.draft02,
                          available_protocols=tuple(request.available_protocols))
        self._add_session(session)
        record.kind = StreamKind.CONNECT
        record.session_id = session.session_id
        if self._h3.peer is None:
            self._awaiting_settings.append(session.session_id)
        else:
            self._admit_request(session)

    def _answer_and_refuse(self, record: StreamRecord, status: int, code: int) -> None:
        """Answer with ``status`` and FIN, stop reading (a reset would discard the answer)."""
        self._h3.send_headers(record.stream_id, build_response(status, draft02=False), end_stream=True)
        record.send_closed = True
        self.abandon_session_streams(record.stream_id, c.WT_SESSION_GONE)
        self._incomplete_openings.pop(record.stream_id, None)
        if not record.recv_closed:
            self._quic_stop(record.stream_id, code)
        record.recv_closed = True
        self._streams.finish(record)

    def _refuse_request_stream(self, record: StreamRecord, code: int) -> None:
        """No session will ever exist here: streams that raced ahead of it are gone too."""
        self.abandon_session_streams(record.stream_id, c.WT_SESSION_GONE)
        self.abort_stream(record.stream_id, code)

    def _admit_request(self, session: Session) -> None:
        peer = self._h3.peer
        assert peer is not None
        if not (peer.supports_webtransport and peer.supports_datagrams):  # draft-15 §3.1
            self._refuse_session(session, 400, "the client's SETTINGS do not enable WebTransport and HTTP datagrams")
            return
        if self._active_sessions > 1 and peer.limits_sessions(self.local_settings):  # §5.1: one without flow control
            logger.info("session %d: refused, a second session needs flow control (draft-15 §5.1)",
                        session.session_id)
            session.local_fin_sent = True
            self._refuse_request_stream_of(session, c.H3_REQUEST_REJECTED)
            return
        # The session's own dict, not a copy: the engine only ever replaces a session's headers,
        # never edits them in place, and the API session hands out copies (session.headers).
        h = session.headers
        self._events.append(ev.SessionRequested(session.session_id, session.path, session.authority, h.get("origin"),
                                                h.get(":protocol", "webtransport"), h,
                                                session.available_protocols))

    def _refuse_session(self, session: Session, status: int, reason: str) -> None:
        logger.info("session %d: refused with %d: %s", session.session_id, status, reason)
        session.local_fin_sent = True
        session.end(0, reason, CloseCause.REJECTED, emit=False)
        record = self._streams.get(session.session_id)
        if record is not None:
            self._answer_and_refuse(record, status, c.H3_REQUEST_REJECTED)

    def _refuse_request_stream_of(self, session: Session, code: int, reason: str = "refused") -> None:
        session.end(0, reason, CloseCause.REJECTED, emit=False)
        record = self._streams.get(session.session_id)
        if record is not None:
            self.abort_stream(record.stream_id, code)

    # -- client: the response arrives
    def _on_response(self, record: StreamRecord, block: bytes) -> bool:
        """One response header section; False when it was interim (1xx), so the final response
        is still to come (RFC 9114 §4.1)."""
        session = self._sessions.get(record.session_id)
        header_list = self._h3.decode_headers(record.stream_id, block)
        connecting = session is not None and session.state is SessionState.CONNECTING
        try:
            headers = decode_response(header_list, max_field_section_size=self.config.max_field_section_size)
            status = parse_status(headers)
            if status == 101:  # RFC 9114 §4.5: HTTP/3 has no 101, so a response carrying one is malformed
                raise HeaderValidationError("response has :status 101, which HTTP/3 does not support "
                                            "(RFC 9114 §4.5)", field=":status")
        except HeaderValidationError as exc:  # RFC 9114 §4.1.2: a stream error, not a connection error
            if session is not None and connecting:
                session.local_fin_sent = True
                self.abort_stream(record.stream_id, exc.error_code or c.H3_MESSAGE_ERROR)
                session.reject(0, {}, f"malformed response: {exc.message}")
            return True
        if status < 200:  # an interim response (103 Early Hints, ...): wait for the final one
            logger.debug("stream %d: interim response %d skipped", record.stream_id, status)
            return False
        if session is None or not connecting:
            return True
        if 200 <= status < 300:
            chosen = headers.get(WT_PROTOCOL)
            if chosen is not None:
                try:
                    session.protocol = parse_protocol(chosen)
                except HeaderValidationError as exc:
                    session.protocol = None
                    problem: str | None = f"the server's WT-Protocol is malformed: {exc.message}"
                else:
                    problem = None if session.protocol in session.available_protocols else (
                        f"the server chose subprotocol {session.protocol!r}, which the client did not offer "
                        f"(offered: {list(session.available_protocols)})")
                if problem is not None:  # draft-15 §3.3: the client must not use the session
                    session.local_fin_sent = True
                    self.abort_stream(record.stream_id, c.H3_REQUEST_CANCELLED)
                    session.reject(0, headers, problem)
                    return True
            self._establish(session, headers)
            return True
        session.reject(status, headers, f"rejected with status {status}")
        self._streams.finish(record)
        return True

    # -- capsules on an established session's CONNECT stream
    def _on_capsule_bytes(self, record: StreamRecord, data: bytes) -> None:
        session = self._sessions.get(record.session_id)
        if session is None:
            return
        if session.is_closed:
            if data and session.close_cause is CloseCause.PEER_CLOSE:  # draft-15 §6: nothing after the close
                self.abort_stream(record.stream_id, c.H3_MESSAGE_ERROR)
            return
        parser = record.capsules
        if parser is None:  # a server before accepting: parse, so GREASE and CLOSE still work
            parser = record.capsules = capsules.CapsuleParser(max_capsule_size=self.config.max_capsule_size,
                                                              report_unknown=True)
        try:
            parsed = parser.feed(data)
        except CapsuleError as exc:
            self._fail_request_stream(record, exc.error_code or c.H3_MESSAGE_ERROR, exc.message)
            return
        for index, (capsule_type, value) in enumerate(parsed):
            if session.is_closed:  # a WT_CLOSE_SESSION before this capsule: draft-15 §6
                if index:
                    self.abort_stream(record.stream_id, c.H3_MESSAGE_ERROR)
                return
            self._on_capsule(session, capsule_type, value)
        if session.is_closed and parser.buffered:
            self.abort_stream(record.stream_id, c.H3_MESSAGE_ERROR)

    def _on_capsule(self, session: Session, capsule_type: int, value: capsules.CapsuleValue) -> None:
        session.last_activity = self._now
        if capsule_type == c.WT_CAPSULE_CLOSE_SESSION:
            assert isinstance(value, tuple)
            session.closed_by_peer(value[0], value[1])
        elif capsule_type == c.WT_CAPSULE_DRAIN_SESSION:
            session.drained_by_peer()
        elif capsule_type == c.CAPSULE_DATAGRAM:
            assert isinstance(value, bytes)
            if session.is_open:
                self._deliver_datagram(session, value)
        elif capsule_type in _PROHIBITED_CAPSULES:  # draft-15 §5.4 (draft-13 §5.4); the draft names no code
            session.abort(c.H3_MESSAGE_ERROR, f"the peer sent {c.describe_code(capsule_type, c.CapsuleType)}, "
                                              "which WebTransport over HTTP/3 prohibits (draft-15 §5.4)")
        elif isinstance(value, int) and session.flow is not None:  # draft-15 §5.1: ignored without flow control
            try:
                self._on_flow_capsule(session, capsule_type, value)
            except FlowControlError as exc:  # WT_FLOW_CONTROL_ERROR, or H3_DATAGRAM_ERROR (draft-15 §5.6.2)
                session.abort(exc.error_code or c.WT_FLOW_CONTROL_ERROR, exc.message)
        elif isinstance(value, int) and session.state is SessionState.CONNECTING and capsule_type in _CREDIT_CAPSULES:
            # Credit the client gave before we accepted: flow control is decided by both
            # SETTINGS already, and the grant is never repeated (draft-15 §5.6), so it is kept
            # for when the session's flow control starts (``_settle_pre_accept``).
            credit = session.pre_accept_account().credit
            credit[capsule_type] = max(value, credit.get(capsule_type, 0))

    def _settle_pre_accept(self, session: Session) -> None:
        """Start the session's flow control with what came before it was established
        (``PreAccept``): the peer's credit capsules, then its streams that ended unseen and
        their bytes, counted opened and closed at once (nothing of it without flow control:
        draft-15 §5.1)."""
        account, session.pre_accept = session.pre_accept, None
        flow = session.flow
        if account is None or flow is None:
            return
        try:
            for capsule_type, value in account.credit.items():
                self._on_flow_capsule(session, capsule_type, value)
            grants: list[bytes] = []
            for is_unidirectional in (False, True):
                if account.streams[is_unidirectional]:
                    grants += flow.count_closed_streams(is_unidirectional, account.streams[is_unidirectional])
            if account.data:
                flow.on_receive(account.data)
                grants += flow.on_consume(account.data)
        except FlowControlError as exc:  # beyond our limits already before the accept
            session.abort(exc.error_code or c.WT_FLOW_CONTROL_ERROR, exc.message)
            return
        session.send_capsules(grants)

    def _on_flow_capsule(self, session: Session, capsule_type: int, value: int) -> None:
        flow = session.flow
        assert flow is not None
        sid = session.session_id
        if capsule_type == c.WT_CAPSULE_MAX_DATA:
            if flow.on_max_data(value):
                self._flush_session_credit(session)
                self._events.append(ev.SessionCreditUpdated(sid, ev.CreditKind.DATA, value))
        elif capsule_type in _STREAMS_CAPSULES:
            uni = _STREAMS_CAPSULES[capsule_type]
            if flow.on_max_streams(value, uni):
                kind = ev.CreditKind.STREAMS_UNI if uni else ev.CreditKind.STREAMS_BIDI
                self._events.append(ev.SessionCreditUpdated(sid, kind, value))
        elif capsule_type == c.WT_CAPSULE_DATA_BLOCKED:
            self._events.append(ev.SessionBlocked(sid, ev.CreditKind.DATA, value))
            session.send_capsules(flow.on_data_blocked())
        elif capsule_type in _STREAMS_BLOCKED_CAPSULES:
            uni = _STREAMS_BLOCKED_CAPSULES[capsule_type]
            kind = ev.CreditKind.STREAMS_UNI if uni else ev.CreditKind.STREAMS_BIDI
            self._events.append(ev.SessionBlocked(sid, kind, value))
            session.send_capsules(flow.on_streams_blocked(uni))
