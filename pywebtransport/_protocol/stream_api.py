"""The stream and datagram calls the application makes in a session: open a stream, write
(bytes beyond session credit wait in the engine), reset, stop, consume, send a datagram."""

from __future__ import annotations

from pywebtransport import constants as c
from pywebtransport._protocol.queries import EngineQueries
from pywebtransport._protocol.routing import StreamRouting
from pywebtransport._protocol.settings import Dialect
from pywebtransport._protocol.streams import KIND_WEBTRANSPORT, StreamRecord
from pywebtransport._wire import datagrams, error_codes, frames
from pywebtransport.exceptions import DatagramError, LocalProtocolError, StreamClosedError

__all__ = ["StreamApi"]

#: An upper bound of a DATAGRAM frame's overhead: type (1), length (up to 8) and the
#: quarter stream id (up to 8) (RFC 9221 §4, RFC 9297 §2.1).
_DATAGRAM_OVERHEAD_BOUND = 17
#: Draft-02 §4.3: stream error codes are 8 bits.
_DRAFT02_MAX_STREAM_CODE = 0xFF


class StreamApi(EngineQueries, StreamRouting):
    """Session streams and datagrams going out."""

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
        record = self._streams.add(StreamRecord(stream_id, KIND_WEBTRANSPORT, is_unidirectional, local=True,
                                                recv_closed=is_unidirectional))
        self._streams.attach(record, session_id)
        self.quic.send_stream_data(stream_id, preamble)
        self._send_bound.wrote(stream_id, len(preamble))
        return stream_id

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue payload on a session stream; bytes beyond session credit wait in the engine."""
        record = self._streams.get(stream_id)
        if record is None or record.kind is not KIND_WEBTRANSPORT or record.send_closed:
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
            if capsules_out:
                session.send_capsules(capsules_out)
        self._send_bound.wrote(stream_id, len(data))  # held by QUIC or waiting for credit
        if end_stream and record.recv_closed:  # else _maybe_forget_stream has nothing to do
            self._maybe_forget_stream(record)

    def reset_stream(self, stream_id: int, error_code: int = 0) -> None:
        """RESET_STREAM with an application code mapped into the HTTP/3 space (ValueError for
        a code outside [0, 2**32), whatever the stream; see ``_wire_code`` for draft-02)."""
        code = self._wire_code(error_code)  # checked before anything else
        record = self._require_session_stream(stream_id)
        self._reset_sending(record, code)
        self._maybe_forget_stream(record)

    def stop_stream(self, stream_id: int, error_code: int = 0) -> None:
        """STOP_SENDING with an application code mapped into the HTTP/3 space (ValueError for
        a code outside [0, 2**32), whatever the stream)."""
        code = self._wire_code(error_code)  # checked before anything else
        record = self._require_session_stream(stream_id)
        self._stop_receiving(record, code)
        self._maybe_forget_stream(record)

    def refuse_stream(self, stream_id: int, error_code: int = 0) -> None:
        """The application turns away a stream the peer opened (say, its incoming queue is
        full): STOP_SENDING, and RESET_STREAM for our half of a bidirectional one. A stream the
        engine has already finished (all of it arrived, FIN included) needs nothing and is
        not an error: the peer's bytes arrived before the application could refuse them."""
        record = self._streams.get(stream_id)
        if record is None or record.kind is not KIND_WEBTRANSPORT:
            return
        code = self._wire_code(error_code)
        self._stop_receiving(record, code)
        self._reset_sending(record, code)
        self._maybe_forget_stream(record)

    def _wire_code(self, error_code: int) -> int:
        """The HTTP/3 code for application code ``error_code``. Draft-02 limits stream codes
        to 8 bits (§4.3): with a peer that speaks only draft-02 (browsers) a larger one goes as
        255, as browsers clamp theirs, instead of landing outside the range the peer maps
        (Firefox read 256 as 0)."""
        code = error_codes.app_code_to_http(error_code)  # ValueError outside [0, 2**32)
        if error_code > _DRAFT02_MAX_STREAM_CODE and self.dialect is Dialect.DRAFT02:
            return error_codes.app_code_to_http(_DRAFT02_MAX_STREAM_CODE)
        return code

    def _reset_sending(self, record: StreamRecord, code: int) -> None:
        if not record.send_closed or record.pending.size:
            self._drop_pending(record)
            record.send_closed = True
            self._quic_reset(record.stream_id, code)
            self._send_bound.refresh_stream(record.stream_id)

    def _stop_receiving(self, record: StreamRecord, code: int) -> None:
        if not record.recv_closed:
            record.recv_closed = True
            self._quic_stop(record.stream_id, code)

    def consume_stream_data(self, stream_id: int, amount: int) -> None:
        """The application read ``amount`` bytes: return QUIC and session credit.

        The stream's record may be gone already (a stream whose FIN or reset came is
        forgotten once QUIC lets go of it, which can be before the application reads): its
        session is then the one its unread bytes are kept for, or the session would never
        get that credit back and its sender would stall for good."""
        self.quic.consume_stream_data(stream_id, amount)
        unread = self._unread.get(stream_id)
        record = self._streams.get(stream_id)
        session_id = unread[0] if unread is not None else (record.session_id if record is not None else None)
        self._release(stream_id, amount)
        session = self._sessions.get(session_id) if session_id is not None else None
        if session is not None and session.flow is not None and session.is_open:
            grant = session.flow.on_consume(amount)
            if grant:
                session.send_capsules(grant)

    def send_datagram(self, session_id: int, data: bytes) -> bool:
        """Send one datagram; False when the QUIC queue is full and it was dropped (counted).

        DatagramTooLargeError when it cannot fit a packet (aioquic would otherwise block its
        queue forever on it); DatagramError when the peer did not enable HTTP datagrams.
        """
        session = self._sessions.get(session_id)
        if session is None or not session.is_open or self._closed:
            session = self._require_open(session_id)  # raises the error that names why
        peer = self._h3.peer
        if peer is not self._datagram_peer:  # checked once per SETTINGS received
            if peer is not None and not peer.supports_datagrams:  # RFC 9297 §2.1.1
                raise DatagramError("the peer did not send SETTINGS_H3_DATAGRAM=1: it accepts no HTTP datagrams")
            self._datagram_peer = peer
        quic = self.quic
        size = len(data)
        # The exact room is computed only near the limits: the frame and stream-id overhead
        # is at most _DATAGRAM_OVERHEAD_BOUND bytes.
        if (size + _DATAGRAM_OVERHEAD_BOUND > quic.remote_max_datagram_frame_size
                or size + _DATAGRAM_OVERHEAD_BOUND > quic.datagram_path_limit):
            datagrams.check_payload_size(size, self.max_datagram_size(session_id))
        if quic.pending_datagrams >= self.config.max_pending_datagrams:
            session.datagrams_dropped += 1
            return False
        quic.send_datagram_frame(datagrams.encode_datagram(session_id, data))
        session.datagrams_sent += 1
        session.datagram_bytes_sent += size
        return True
