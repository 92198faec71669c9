"""Stream and datagram routing: what a new stream is (RFC 9114 §6, draft-15 §4), which
session it belongs to, streams that arrive before their session (draft-15 §4.6), and the
end of streams (resets, STOP_SENDING) and datagrams in (RFC 9297 §5)."""

from __future__ import annotations

import logging

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.core import EngineCore
from pywebtransport._protocol.h3 import Http3
from pywebtransport._protocol.session import PreAccept, Session
from pywebtransport._protocol.streams import (
    CRITICAL_KINDS,
    KIND_CONNECT,
    KIND_FINISHED,
    KIND_PENDING_BIDI,
    KIND_PENDING_UNI,
    KIND_REQUEST,
    KIND_WEBTRANSPORT,
    StreamRecord,
)
from pywebtransport._wire import datagrams, error_codes, frames
from pywebtransport.exceptions import DatagramError, FlowControlError, RemoteProtocolError
from pywebtransport.types import CloseCause, SessionState

__all__ = ["MAX_QUARTER_STREAM_ID", "StreamRouting"]

logger = logging.getLogger(__name__)

#: RFC 9297 §2.1: a quarter stream id above 2^60-1 cannot name a stream.
MAX_QUARTER_STREAM_ID = (1 << 60) - 1


class StreamRouting(EngineCore):
    """The stream and datagram side of the engine."""

    def _on_stream_data(self, stream_id: int, data: bytes, fin: bool) -> None:
        record = self._streams.get(stream_id)
        if record is None:
            if (stream_id & 1) == (0 if self.is_client else 1):
                return  # one of ours that we already forgot
            is_uni = bool(stream_id & 2)
            record = self._streams.add(StreamRecord(
                stream_id, KIND_PENDING_UNI if is_uni else KIND_PENDING_BIDI, is_uni, local=False,
                send_closed=is_uni))
            if not is_uni:
                self._highest_peer_bidi = max(self._highest_peer_bidi, stream_id)
            self._incomplete_openings[stream_id] = self._now
        self._dispatch(record, data, fin)

    def _dispatch(self, record: StreamRecord, data: bytes, fin: bool) -> None:
        kind = record.kind
        if kind is KIND_WEBTRANSPORT:
            self._on_webtransport_data(record, data, fin)
            return
        if kind is KIND_PENDING_UNI or kind is KIND_PENDING_BIDI:
            self._on_preamble(record, data, fin)
            return
        # Everything but session payload is consumed by the engine itself, at once.
        self.quic.consume_stream_data(record.stream_id, len(data))
        if kind in CRITICAL_KINDS:
            self._h3.on_critical_data(record, data, fin)
        elif kind is KIND_REQUEST or kind is KIND_CONNECT:
            self._on_request_stream_data(record, data, fin)
        elif kind is KIND_FINISHED and record.carries_payload and data:
            self._account_dropped(record, len(data))

    def _on_preamble(self, record: StreamRecord, data: bytes, fin: bool) -> None:
        record.preamble += data
        rest = self._read_preamble(record, fin)
        kind = record.kind
        # Typed (or ended): its opening deadline is over. Still opening: a preamble being read,
        # or a request whose headers are (requests.py ends that one); request_timeout bounds both.
        if not (kind is KIND_PENDING_UNI or kind is KIND_PENDING_BIDI or kind is KIND_REQUEST):
            self._incomplete_openings.pop(record.stream_id, None)
        if rest is not None and kind is not KIND_FINISHED and (rest or fin):
            self._dispatch(record, rest, fin)
        elif rest and record.carries_payload:  # refused on arrival: its payload still counts (_refuse_unseen)
            self._account_dropped(record, len(rest))

    def _read_preamble(self, record: StreamRecord, fin: bool) -> bytes | None:
        """Type the stream once its preamble is complete; returns the bytes after it (None
        while it is incomplete). A stream that ends before its type is finished, keeping
        nothing (RFC 9114 §6.2)."""
        uni = record.kind is KIND_PENDING_UNI
        header = (frames.read_uni_stream_header(record.preamble) if uni
                  else frames.read_bidi_stream_header(record.preamble))
        if header is None:
            if fin:
                self._streams.finish(record)
            return None
        used = header[-1]
        rest = bytes(record.preamble[used:])
        record.preamble = bytearray()
        self.quic.consume_stream_data(record.stream_id, used)
        session_id = header[-2]
        if uni:
            self._classify_uni(record, header[0], session_id)
        elif session_id >= 0:
            self._attach_webtransport(record, session_id)
        elif self.is_client:
            raise RemoteProtocolError(f"server opened bidirectional stream {record.stream_id} that is not "
                                      "WebTransport", error_code=c.H3_STREAM_CREATION_ERROR)
        else:
            # An HTTP request: its deadline runs on from the first byte until its headers
            # are complete (requests.py ends it), within request_timeout.
            record.kind = KIND_REQUEST
            record.parser = frames.FrameParser(max_frame_size=self.config.max_header_block_size)
        return rest

    def _classify_uni(self, record: StreamRecord, stream_type: int, session_id: int) -> None:
        kind = Http3.critical_kind(stream_type)
        if kind is not None:
            self._h3.adopt_critical(record, kind)
        elif stream_type == c.STREAM_TYPE_WEBTRANSPORT:
            self._attach_webtransport(record, session_id)
        elif stream_type == c.STREAM_TYPE_PUSH:
            if not self.is_client:  # RFC 9114 §6.2.2: only servers push
                raise RemoteProtocolError("a client opened a push stream", error_code=c.H3_STREAM_CREATION_ERROR)
            raise RemoteProtocolError("push stream without MAX_PUSH_ID", error_code=c.H3_ID_ERROR)
        else:  # unknown stream types: refuse that stream only (RFC 9114 §6.2)
            self._refuse_stream(record, c.H3_STREAM_CREATION_ERROR)

    # -- session streams
    def _attach_webtransport(self, record: StreamRecord, session_id: int) -> None:
        if session_id % 4 != 0:
            raise RemoteProtocolError(f"stream {record.stream_id} names session {session_id}, not a client "
                                      "bidirectional stream id", error_code=c.H3_ID_ERROR)
        session = self._sessions.get(session_id)
        if session is not None and session.is_open:
            self._announce_stream(session, record)
        elif self._session_gone(session_id, session) or self._names_a_later_stream(record, session_id):
            record.session_id = session_id
            self._refuse_stream(record, c.WT_SESSION_GONE)
        elif self._streams.early_count >= self.config.max_buffered_streams:
            record.session_id = session_id
            self._refuse_unseen(record, c.WT_BUFFERED_STREAM_REJECTED)
        elif not self._streams.receive.try_take(0):  # the server's receive budget is spent
            logger.info("stream %d: refused, the server's receive budget is spent", record.stream_id)
            record.session_id = session_id
            self._refuse_unseen(record, c.WT_BUFFERED_STREAM_REJECTED)
        else:
            self._streams.hold_early(record, session_id, self._now)

    def _names_a_later_stream(self, record: StreamRecord, session_id: int) -> bool:
        """A client's bidirectional stream naming itself or a later stream: no such session can come.

        A client opens a session's CONNECT stream before the streams of that session, and a
        client's bidirectional stream ids grow, so such a stream would wait for nothing.
        """
        return not record.is_unidirectional and record.stream_id % 4 == 0 and session_id >= record.stream_id

    def _session_gone(self, session_id: int, session: Session | None) -> bool:
        """Whether no session ``session_id`` can appear any more (its streams get WT_SESSION_GONE)."""
        if session is not None:
            return session.is_closed
        if self.is_client:  # we open every session; one we do not hold is gone or never was
            return True
        connect = self._streams.get(session_id)
        if connect is not None:  # its request is still arriving: the stream overtook it
            return connect.kind is not KIND_REQUEST and connect.kind is not KIND_PENDING_BIDI
        # The CONNECT stream has not arrived yet (reordering, draft-15 §4.6) unless QUIC is done with it.
        return self.quic.is_stream_discarded(session_id)

    def _refuse_stream(self, record: StreamRecord, code: int) -> None:
        """Abandon a stream both ways with ``code`` and forget it."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("stream %d: refused with %s", record.stream_id, c.describe_code(code))
        if not record.recv_closed:
            self._quic_stop(record.stream_id, code)
        # Our FIN may be written and still wait here for session credit: the QUIC stream's
        # sending side is then not over, and without a reset the peer waits for it for good.
        resetting = not record.send_closed or bool(record.pending.size)
        if resetting:
            self._quic_reset(record.stream_id, code)
        self._drop_pending(record, reset=resetting)
        record.send_closed = record.recv_closed = True
        self._forget_reset(record)
        self._streams.finish(record)

    def _refuse_unseen(self, record: StreamRecord, code: int) -> None:
        """Refuse a stream that names a session not established yet (refused on arrival, or
        while it waited): the peer counted the stream and its payload against the session's
        credit, so the session's flow control counts them too once it starts (``PreAccept``):
        the bytes buffered now, and those still to come or a reset's final size
        (``_account_dropped``)."""
        account = self._pre_accept_for(record.session_id)
        if account is not None:
            account.streams[record.is_unidirectional] += 1
            account.data += record.early_bytes  # dropped with the stream
            record.carries_payload = True
        self._refuse_stream(record, code)

    def _pre_accept_for(self, session_id: int, *, make_unseen: bool = True) -> PreAccept | None:
        """The ``PreAccept`` record of a session not established yet: its own, or, on a server
        whose CONNECT for it has not arrived, one kept until it does (None beyond
        ``max_buffered_streams`` such sessions, and for sessions past establishing). Only a
        stream naming the session starts one for a session not seen (``make_unseen``): bytes
        alone may belong to a session long gone."""
        session = self._sessions.get(session_id)
        if session is not None:
            return session.pre_accept_account() if session.state is SessionState.CONNECTING else None
        if self.is_client:
            return None
        unseen = self._unseen_sessions
        account = unseen.get(session_id) if unseen is not None else None
        if account is None and make_unseen:
            if unseen is None:
                unseen = self._unseen_sessions = {}
            if len(unseen) < self.config.max_buffered_streams:
                account = unseen[session_id] = PreAccept()
        return account

    def _announce_stream(self, session: Session, record: StreamRecord) -> bool:
        if session.flow is not None:
            try:
                session.flow.on_peer_stream(record.is_unidirectional)
            except FlowControlError as exc:
                self._refuse_stream(record, c.WT_FLOW_CONTROL_ERROR)
                session.abort(c.WT_FLOW_CONTROL_ERROR, exc.message)
                return False
        session.last_activity = self._now
        if record.is_unidirectional:
            session.peer_streams_uni_opened += 1
        else:
            session.peer_streams_bidi_opened += 1
        self._streams.attach(record, session.session_id)
        self._events.append(ev.StreamOpened(session.session_id, record.stream_id, record.is_unidirectional))
        return True

    def _on_webtransport_data(self, record: StreamRecord, data: bytes, fin: bool) -> None:
        if record.early is not None:
            cfg = self.config
            if not self._streams.add_early_bytes(record, data, fin):
                logger.info("stream %d: refused, the server's receive budget is spent", record.stream_id)
                self._account_dropped(record, len(data))  # arrived, but not kept
                self._refuse_unseen(record, c.WT_BUFFERED_STREAM_REJECTED)
            elif (record.early_bytes > cfg.max_buffered_stream_bytes
                  or self._early_held() > cfg.max_buffered_bytes):
                self._refuse_unseen(record, c.WT_BUFFERED_STREAM_REJECTED)
            return
        session = self._sessions.get(record.session_id)
        if session is None or not session.is_open:
            return
        if record.recv_closed:  # after our STOP_SENDING: not delivered, but it used session credit
            self.quic.consume_stream_data(record.stream_id, len(data))
            self._account_dropped(record, len(data))
            return
        if session.flow is not None and data:
            try:
                session.flow.on_receive(len(data))
            except FlowControlError as exc:
                session.abort(c.WT_FLOW_CONTROL_ERROR, exc.message)
                return
        if data:
            session.data_received += len(data)
            self._hold(record.stream_id, session.session_id, len(data))  # until the application reads it
        session.last_activity = self._now
        if fin:
            record.recv_closed = True
        self._events.append(ev.StreamDataReceived(session.session_id, record.stream_id, data, fin))
        if fin:
            self._maybe_forget_stream(record)

    def _account_dropped(self, record: StreamRecord, amount: int) -> None:
        """Bytes we discard still count against session credit, or the two ends' books drift
        apart (draft-15 §5.4): count them received and consumed at once (for a session not
        established yet, once its flow control starts: ``PreAccept``)."""
        if amount <= 0:
            return
        session = self._sessions.get(record.session_id)
        if session is None or session.flow is None:  # not established yet: counted once it is
            account = self._pre_accept_for(record.session_id, make_unseen=False)
            if account is not None:
                account.data += amount
            return
        if not session.is_open:
            return
        try:
            session.flow.on_receive(amount)
        except FlowControlError as exc:
            session.abort(c.WT_FLOW_CONTROL_ERROR, exc.message)
            return
        session.send_capsules(session.flow.on_consume(amount))

    def _release_early(self, session: Session) -> None:
        for stream_id in self._streams.early_ids(session.session_id):
            record = self._streams.get(stream_id)
            if record is None or record.early is None:
                continue
            payload, fin = self._streams.release_early(record)
            if not self._announce_stream(session, record):
                return
            if record.early_stop is not None:  # the peer stopped our half while it waited
                code, record.early_stop = record.early_stop, None
                self._events.append(ev.StreamStopSending(session.session_id, stream_id,
                                                         error_codes.http_code_to_app(code), code))
            if payload or fin:
                self._on_webtransport_data(record, payload, fin)
        for datagram in self._early_datagrams.take(session.session_id):
            self._deliver_datagram(session, datagram)

    def _maybe_forget_stream(self, record: StreamRecord) -> None:
        if not (record.send_closed and record.recv_closed) or record.pending.size:
            return
        session = self._sessions.get(record.session_id)
        if (session is not None and session.flow is not None and session.is_open and not record.local
                and record.kind is KIND_WEBTRANSPORT):
            session.send_capsules(session.flow.on_peer_stream_closed(record.is_unidirectional))
        self._forget_reset(record)
        self._streams.finish(record)

    def _drop_pending(self, record: StreamRecord, *, reset: bool = True) -> None:
        """Our sending side of a stream is over: drop the bytes waiting for session credit.

        Every caller resets the QUIC stream just before or just after (``reset``), or QUIC
        did on the peer's STOP_SENDING; ``reset=False`` when the stream is not reset.
        """
        session = self._sessions.get(record.session_id)
        if session is not None and session.flow is not None:
            session.flow.forget_stream(record)
            if reset:
                self._settle_reset_send(session, record)
        record.pending.clear()

    def _settle_reset_send(self, session: Session, record: StreamRecord) -> None:
        """The final size of our RESET_STREAM is the highest offset QUIC put in a frame (RFC
        9000 §4.5), and that is all the peer charges to session credit (draft-15 §5.4): bytes
        we counted against WT_MAX_DATA that QUIC never sent are given back, or our count stays
        above the peer's for good. Nothing is sent between this and the reset, so the offsets
        read now are the reset's. Bytes still waiting in the engine were never counted."""
        flow = session.flow
        if flow is None or not session.is_open:  # an ending session's books are closed
            return
        offsets = self.quic.stream_offsets(record.stream_id)
        if offsets is None:
            return  # QUIC discarded the stream: everything was sent and acknowledged
        # Only payload counts (draft-15 §5.4): our own stream's header was never counted.
        counted_from = self._own_header_size(record) if record.local else 0
        unsent = offsets.written - max(offsets.sent, counted_from)
        if unsent > 0 and flow.on_reset_sent(record.stream_id, unsent):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("stream %d: reset with %d counted bytes unsent; credit given back",
                             record.stream_id, unsent)
            self._flush_session_credit(session)

    @staticmethod
    def _own_header_size(record: StreamRecord) -> int:
        """The length of the header we wrote on our own session stream (draft-15 §4.2, §4.3)."""
        if record.is_unidirectional:
            return len(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, record.session_id))
        return len(frames.encode_bidi_stream_header(record.session_id))

    def _forget_reset(self, record: StreamRecord) -> None:
        """A stream is finished: no STOP_SENDING can reach it any more."""
        session = self._sessions.get(record.session_id)
        if session is not None and session.flow is not None:
            session.flow.forget_reset(record.stream_id)

    def _account_reset(self, record: StreamRecord) -> None:
        """The peer reset a session stream: the bytes of its final size that never reached us
        used session credit too (draft-15 §5.4, RFC 9000 §4.5). Every byte handed to us after
        the stream header was counted as it came (delivered or dropped), so the rest is the
        final size less what QUIC delivered; counted as received and consumed at once."""
        offsets = self.quic.stream_offsets(record.stream_id)
        if offsets is None or offsets.final_size is None:
            return  # not reachable: QUIC reports the reset before it can drop the stream
        self._account_dropped(record, offsets.final_size - offsets.delivered)

    # -- the peer ends a stream
    def _on_stream_reset(self, stream_id: int, http_code: int) -> None:
        record = self._streams.get(stream_id)
        if record is None:
            # Reset before a byte of it arrived (no RESET_STREAM_AT to carry its header): a
            # peer bidi stream keeps our sending side open, and with it a QUIC stream slot,
            # unless we reset that side too.
            peer_bidi = not (stream_id & 2) and (stream_id & 1) == (0 if not self.is_client else 1)
            if peer_bidi and self.quic.has_stream(stream_id):
                self._quic_reset(stream_id, http_code)
            return
        kind = record.kind
        if kind is KIND_WEBTRANSPORT:
            if record.early is not None:  # reset before its session: nothing to deliver
                self._pre_accept_for(record.session_id)  # where its final size is kept (_account_dropped)
                self._account_reset(record)  # its final size counts, for a session still to come
                self._refuse_unseen(record, http_code)
                return
            record.recv_closed = True
            self._account_reset(record)
            if record.kind is not KIND_WEBTRANSPORT:  # its final size was over the limit: session gone
                return
            self._events.append(ev.StreamReset(record.session_id, stream_id, error_codes.http_code_to_app(http_code),
                                               http_code))
            self._maybe_forget_stream(record)
        elif kind is KIND_FINISHED and record.carries_payload:
            self._account_reset(record)  # after our STOP_SENDING: the answer's final size counts too
        elif kind is KIND_CONNECT or kind is KIND_REQUEST:
            self._on_connect_stream_gone(record, http_code,
                                         f"the peer reset the CONNECT stream with {c.describe_code(http_code)}",
                                         CloseCause.PEER_RESET)
        elif kind in CRITICAL_KINDS and not self._closed:
            raise RemoteProtocolError(f"the peer reset its {kind.value} stream with {c.describe_code(http_code)}",
                                      error_code=c.H3_CLOSED_CRITICAL_STREAM)
        elif kind is KIND_PENDING_UNI or kind is KIND_PENDING_BIDI:
            self._refuse_stream(record, http_code)

    def _on_stop_sending(self, stream_id: int, http_code: int) -> None:
        record = self._streams.get(stream_id)
        if record is None:
            # Our control and QPACK streams have no record. Stopping one is closing it: a
            # connection error (RFC 9114 §6.2.1, RFC 9204 §4.2), and a GOAWAY written to it
            # later would fail in the QUIC library.
            critical = self._h3.local_critical_kind(stream_id)
            if critical is not None and not self._closed:
                raise RemoteProtocolError(f"the peer stopped our {critical.value} stream with "
                                          f"{c.describe_code(http_code)}", error_code=c.H3_CLOSED_CRITICAL_STREAM)
            return
        kind = record.kind
        if kind is KIND_WEBTRANSPORT:
            # aioquic already answered with RESET_STREAM carrying the same code.
            record.send_closed = True
            self._drop_pending(record)
            if record.early is not None:  # not announced yet: said once it is (_release_early)
                record.early_stop = http_code
                return
            self._events.append(ev.StreamStopSending(record.session_id, stream_id,
                                                     error_codes.http_code_to_app(http_code), http_code))
            self._maybe_forget_stream(record)
        elif kind is KIND_CONNECT or kind is KIND_REQUEST:
            # Draft-15 §6: a peer closing a session MAY stop the CONNECT stream with
            # WT_SESSION_GONE; any other code stops it abruptly.
            cause = CloseCause.PEER_CLOSE if http_code == c.WT_SESSION_GONE else CloseCause.PEER_RESET
            self._on_connect_stream_gone(
                record, http_code, f"the peer stopped the CONNECT stream with {c.describe_code(http_code)}", cause)

    def _on_connect_stream_gone(self, record: StreamRecord, http_code: int, reason: str, cause: CloseCause) -> None:
        """The peer aborted a request/CONNECT stream: the session ends (with ``cause``; code 0,
        since no WT_CLOSE_SESSION said otherwise), and our half is closed too, or the QUIC
        stream never finishes and holds a MAX_STREAMS slot."""
        session = self._sessions.get(record.session_id) if record.kind is KIND_CONNECT else None
        if session is not None:
            session.peer_fin_received = True
        if session is not None and not session.is_closed:
            session.local_fin_sent = True
            if session.state is SessionState.CONNECTING and self.is_client:
                session.reject(0, {}, reason)
            else:
                session.end(0, reason, cause)
        elif record.kind is KIND_REQUEST:
            self.abandon_session_streams(record.stream_id, c.WT_SESSION_GONE)
        self.abort_stream(record.stream_id, http_code)

    # -- datagrams in
    def _on_datagram(self, data: bytes) -> None:
        try:
            session_id, payload = datagrams.decode_datagram(data)
        except DatagramError as exc:
            raise RemoteProtocolError(exc.message, error_code=c.H3_DATAGRAM_ERROR) from exc
        if session_id >> 2 > MAX_QUARTER_STREAM_ID:
            raise RemoteProtocolError(f"datagram quarter stream id {session_id >> 2} exceeds 2^60-1",
                                      error_code=c.H3_DATAGRAM_ERROR)
        session = self._sessions.get(session_id)
        if session is None:
            return  # unknown quarter stream id: drop silently (RFC 9297 §5)
        if session.is_open:
            self._deliver_datagram(session, payload)
        elif session.state is SessionState.CONNECTING:
            # What a connection holds for sessions not yet established, streams and datagrams
            # together, stays within max_buffered_bytes (draft-15 §4.6 lets us drop datagrams).
            room = self.config.max_buffered_bytes - self._early_held()
            self._early_datagrams.push(session_id, payload, room=room)

    def _early_held(self) -> int:
        """What the connection holds for sessions not yet established: early streams' bytes
        and early datagrams (within ``max_buffered_bytes`` together)."""
        return self._streams.early_bytes + self._early_datagrams.nbytes

    def _deliver_datagram(self, session: Session, payload: bytes) -> None:
        session.last_activity = self._now
        session.datagrams_received += 1
        session.datagram_bytes_received += len(payload)
        self._events.append(ev.DatagramReceived(session.session_id, payload))
