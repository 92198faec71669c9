"""HTTP/3 itself (RFC 9114): control and QPACK streams, SETTINGS, header blocks, GOAWAY.

Violations by the peer raise RemoteProtocolError with the code RFC 9114 §8.1 names; the
engine turns them into a connection close. What the peer told us (its SETTINGS, a GOAWAY)
goes out through the ``emit`` and ``on_settings`` callbacks the engine hands in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import pylsqpack

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.fields import field_section_size
from pywebtransport._protocol.settings import PeerSettings
from pywebtransport._protocol.streams import StreamKind, StreamRecord
from pywebtransport._wire import buffer, frames
from pywebtransport.exceptions import BufferReadError, FrameError, RemoteProtocolError

__all__ = ["Http3", "HttpQuic", "feed_frames"]

#: A field section prefix with no field lines: Required Insert Count 0, Delta Base 0.
_EMPTY_FIELD_SECTION = b"\x00\x00"

logger = logging.getLogger(__name__)

#: Frames that may never appear on the control stream (RFC 9114 §7.2).
_NOT_ON_CONTROL = frozenset({c.FRAME_DATA, c.FRAME_HEADERS, c.FRAME_PUSH_PROMISE}) | c.H3_HTTP2_ONLY_FRAMES
#: The peer's critical unidirectional streams (RFC 9114 §6.2.1, RFC 9204 §4.2).
_UNI_KINDS: dict[int, StreamKind] = {c.StreamType.CONTROL: StreamKind.CONTROL,
                                     c.StreamType.QPACK_ENCODER: StreamKind.QPACK_ENCODER,
                                     c.StreamType.QPACK_DECODER: StreamKind.QPACK_DECODER}


class HttpQuic(Protocol):
    """What HTTP/3 needs from the QUIC connection."""

    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int: ...
    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None: ...


#: What a control stream may hold of an incomplete frame once SETTINGS came: a frame header (at
#: most 16 bytes) and the one varint of a GOAWAY, MAX_PUSH_ID or CANCEL_PUSH (at most 8).
_CONTROL_HOLD_AFTER_SETTINGS = 24


def feed_frames(parser: frames.FrameParser, data: bytes) -> list[tuple[int, bytes]]:
    """Parse frames; a framing error is the peer's (RemoteProtocolError with its code)."""
    try:
        return parser.feed(data)
    except FrameError as exc:
        raise RemoteProtocolError(exc.message, error_code=exc.error_code) from exc


class Http3:
    """The HTTP/3 layer of one connection."""

    def __init__(self, quic: HttpQuic, *, is_client: bool, local_settings: dict[int, int], max_frame_size: int,
                 emit: Callable[[ev.EngineEvent], None], on_settings: Callable[[PeerSettings], None],
                 on_goaway: Callable[[int], None]) -> None:
        self._quic = quic
        self.is_client = is_client
        self.local_settings = local_settings
        self._max_frame_size = max_frame_size
        self._emit = emit
        self._on_settings = on_settings
        self._on_goaway_received = on_goaway
        self.peer: PeerSettings | None = None
        self.started = False
        self._control_id = -1
        self._encoder_id = -1
        self._decoder_id = -1
        self._peer_critical: dict[StreamKind, int] = {}
        #: The start of the peer's control stream until its first frame type can be read
        #: (a varint, at most 8 bytes); None once it was, and found to be SETTINGS.
        self._control_start: bytes | None = b""
        self._oversize_warned = False
        self._encoder = pylsqpack.Encoder()
        #: Made only once the peer's encoder stream carries bytes (which may end mid-instruction
        #: and so must meet the next ones in the same decoder). With no dynamic table a decoder
        #: keeps nothing from one header block to the next, so until then each block gets a
        #: fresh one (0.3 us) and an idle connection holds none (a decoder is 4.4 KiB).
        self._decoder: pylsqpack.Decoder | None = None
        self.goaway_sent: int | None = None
        self.goaway_received: int | None = None
        #: Server: the largest push id the client allowed in MAX_PUSH_ID (we never push; kept
        #: only because the value may never shrink, RFC 9114 §7.2.7).
        self.max_push_id_received: int | None = None

    def start(self) -> None:
        """Open our control stream with SETTINGS and the two QPACK streams (RFC 9114 §6.2)."""
        if self.started:
            return
        self.started = True
        quic = self._quic
        self._control_id = quic.get_next_available_stream_id(is_unidirectional=True)
        quic.send_stream_data(self._control_id,
                              frames.encode_uni_stream_header(c.STREAM_TYPE_CONTROL)
                              + frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings(self.local_settings)))
        self._encoder_id = quic.get_next_available_stream_id(is_unidirectional=True)
        quic.send_stream_data(self._encoder_id, frames.encode_uni_stream_header(c.STREAM_TYPE_QPACK_ENCODER))
        self._decoder_id = quic.get_next_available_stream_id(is_unidirectional=True)
        quic.send_stream_data(self._decoder_id, frames.encode_uni_stream_header(c.STREAM_TYPE_QPACK_DECODER))
        self._encoder.apply_settings(0, 0)

    def local_critical_kind(self, stream_id: int) -> StreamKind | None:
        """Which of our control and QPACK streams ``stream_id`` is (None for any other): the
        peer must never stop them (RFC 9114 §6.2.1, RFC 9204 §4.2)."""
        if not self.started:
            return None
        if stream_id == self._control_id:
            return StreamKind.CONTROL
        if stream_id == self._encoder_id:
            return StreamKind.QPACK_ENCODER
        if stream_id == self._decoder_id:
            return StreamKind.QPACK_DECODER
        return None

    # -- the peer's unidirectional streams
    @staticmethod
    def critical_kind(stream_type: int) -> StreamKind | None:
        return _UNI_KINDS.get(stream_type)

    def adopt_critical(self, record: StreamRecord, kind: StreamKind) -> None:
        """A peer control/QPACK stream: one of each (RFC 9114 §6.2.1, RFC 9204 §4.2)."""
        if kind in self._peer_critical:
            raise RemoteProtocolError(f"second {kind.value} stream from the peer",
                                      error_code=c.H3_STREAM_CREATION_ERROR)
        self._peer_critical[kind] = record.stream_id
        record.kind = kind
        if kind is StreamKind.CONTROL:
            record.parser = frames.FrameParser(max_frame_size=self._max_frame_size)

    def on_critical_data(self, record: StreamRecord, data: bytes, fin: bool) -> None:
        kind = record.kind
        if kind is StreamKind.CONTROL:
            parser = record.parser
            assert parser is not None
            if self._control_start is not None:
                self._check_first_control_frame(data)
            for frame_type, payload in feed_frames(parser, data):
                self._on_control_frame(frame_type, payload)
            if self.peer is not None and parser.buffered > _CONTROL_HOLD_AFTER_SETTINGS:
                # After SETTINGS the frames a control stream may carry are one varint each (the
                # parser refuses longer ones); a longer frame in progress can only be one that is
                # not allowed here, so it is refused now instead of held to its end.
                raise RemoteProtocolError(f"a frame of more than {_CONTROL_HOLD_AFTER_SETTINGS} bytes is arriving on "
                                          "the control stream after SETTINGS: none is allowed (RFC 9114 §7.2)",
                                          error_code=c.H3_FRAME_UNEXPECTED)
        elif kind is StreamKind.QPACK_ENCODER:
            if data:
                if self._decoder is None:
                    self._decoder = pylsqpack.Decoder(0, 0)
                try:
                    self._decoder.feed_encoder(data)
                except pylsqpack.EncoderStreamError as exc:
                    raise RemoteProtocolError("bad QPACK encoder stream",
                                              error_code=c.QPACK_ENCODER_STREAM_ERROR) from exc
        else:
            try:
                self._encoder.feed_decoder(data)
            except pylsqpack.DecoderStreamError as exc:
                raise RemoteProtocolError("bad QPACK decoder stream",
                                          error_code=c.QPACK_DECODER_STREAM_ERROR) from exc
        if fin:  # RFC 9114 §6.2.1, RFC 9204 §4.2
            raise RemoteProtocolError(f"the peer closed its {kind.value} stream",
                                      error_code=c.H3_CLOSED_CRITICAL_STREAM)

    def _check_first_control_frame(self, data: bytes) -> None:
        """RFC 9114 §6.2.1: the control stream's first frame MUST be SETTINGS, whatever it is
        instead (H3_MISSING_SETTINGS). The frame parser skips unknown and reserved types
        unseen, so the first type is read here, from the stream's first bytes."""
        assert self._control_start is not None
        start = self._control_start + data[:8]
        try:
            frame_type, _ = buffer.decode_varint(start)
        except BufferReadError:
            self._control_start = start  # a varint cut short: fewer than 8 bytes
            return
        self._control_start = None
        if frame_type != c.FRAME_SETTINGS:
            raise RemoteProtocolError(f"first control frame is {c.describe_code(frame_type, c.FrameType)}, "
                                      "not SETTINGS", error_code=c.H3_MISSING_SETTINGS)

    def _on_control_frame(self, frame_type: int, payload: bytes) -> None:
        if self.peer is None:  # the first frame, which _check_first_control_frame found to be SETTINGS
            try:
                settings = frames.decode_settings(payload)
            except FrameError as exc:
                raise RemoteProtocolError(exc.message, error_code=exc.error_code) from exc
            self.peer = PeerSettings.parse(settings)
            self._emit(ev.H3Ready(self.peer.raw, self.peer.dialect))
            self._on_settings(self.peer)
        elif frame_type == c.FRAME_SETTINGS:
            raise RemoteProtocolError("second SETTINGS frame", error_code=c.H3_FRAME_UNEXPECTED)
        elif frame_type in _NOT_ON_CONTROL:
            raise RemoteProtocolError(f"frame {c.describe_code(frame_type, c.FrameType)} is not allowed on the "
                                      "control stream",
                                      error_code=c.H3_FRAME_UNEXPECTED)
        elif frame_type == c.FRAME_GOAWAY:
            self._on_goaway(payload)
        elif frame_type == c.FRAME_MAX_PUSH_ID:
            self._on_max_push_id(payload)
        elif frame_type == c.FRAME_CANCEL_PUSH:
            self._on_cancel_push(payload)

    @staticmethod
    def _only_varint(payload: bytes, frame: str, field: str) -> int:
        """The one varint a GOAWAY / MAX_PUSH_ID / CANCEL_PUSH payload holds; a payload cut
        short or with bytes after it is an H3_FRAME_ERROR (RFC 9114 §7.1)."""
        reader = buffer.Reader(payload)
        try:
            value = reader.pull_varint()
        except buffer.BufferReadError as exc:
            raise RemoteProtocolError(f"malformed {frame}: its {field} is missing or cut short",
                                      error_code=c.H3_FRAME_ERROR) from exc
        if not reader.eof():
            raise RemoteProtocolError(f"{frame} has bytes after its {field}", error_code=c.H3_FRAME_ERROR)
        return value

    def _on_max_push_id(self, payload: bytes) -> None:
        if self.is_client:  # RFC 9114 §7.2.7
            raise RemoteProtocolError("a server sent MAX_PUSH_ID", error_code=c.H3_FRAME_UNEXPECTED)
        push_id = self._only_varint(payload, "MAX_PUSH_ID", "push id")
        previous = self.max_push_id_received
        if previous is not None and push_id < previous:  # RFC 9114 §7.2.7: it may never shrink
            raise RemoteProtocolError(f"MAX_PUSH_ID shrank from {previous} to {push_id}", error_code=c.H3_ID_ERROR)
        self.max_push_id_received = push_id  # we never push: nothing else to do

    def _on_cancel_push(self, payload: bytes) -> None:
        push_id = self._only_varint(payload, "CANCEL_PUSH", "push id")
        # RFC 9114 §7.2.3: a server never sent a PUSH_PROMISE naming it (we never push), and at a
        # client it is above what we allowed (we never send MAX_PUSH_ID, so no push id is allowed).
        if self.is_client:
            raise RemoteProtocolError(f"CANCEL_PUSH for push id {push_id}, but no push was allowed (no MAX_PUSH_ID "
                                      "was sent)", error_code=c.H3_ID_ERROR)
        raise RemoteProtocolError(f"CANCEL_PUSH for push id {push_id}, which no PUSH_PROMISE of ours named",
                                  error_code=c.H3_ID_ERROR)

    def _on_goaway(self, payload: bytes) -> None:
        last_id = self._only_varint(payload, "GOAWAY", "identifier")
        if self.is_client and last_id % 4 != 0:  # RFC 9114 §5.2: a client bidi stream id
            raise RemoteProtocolError(f"GOAWAY id {last_id} is not a client bidirectional stream id",
                                      error_code=c.H3_ID_ERROR)
        if self.goaway_received is not None and last_id > self.goaway_received:
            raise RemoteProtocolError(f"GOAWAY id grew from {self.goaway_received} to {last_id}",
                                      error_code=c.H3_ID_ERROR)
        self.goaway_received = last_id
        self._emit(ev.GoawayReceived(last_id))
        self._on_goaway_received(last_id)

    # -- header blocks
    def send_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        limit = self.peer.max_field_section_size if self.peer is not None else None
        if limit is not None and (size := field_section_size(headers)) > limit:
            # RFC 9114 §4.2.2 says SHOULD NOT. A client checks before it sends a request (and
            # sends nothing); an answer has no smaller form, so it goes, and the peer decides.
            # Once per connection: each answer to a peer that announced a tiny limit would
            # otherwise log a warning of its own, as often as the peer asks.
            level = logging.DEBUG if self._oversize_warned else logging.WARNING
            self._oversize_warned = True
            logger.log(level, "stream %d: sending a %d-byte header section; the peer's SETTINGS_MAX_FIELD_SECTION_SIZE "
                       "is %d (said once per connection)", stream_id, size, limit)
        encoder_data, block = self._encoder.encode(stream_id, headers)
        if encoder_data:
            self._quic.send_stream_data(self._encoder_id, encoder_data)
        self._quic.send_stream_data(stream_id, frames.encode_frame(c.FRAME_HEADERS, block), end_stream)

    def decode_headers(self, stream_id: int, block: bytes) -> list[tuple[bytes, bytes]]:
        if block == _EMPTY_FIELD_SECTION:
            # A valid encoding of no fields at all (RFC 9204 §4.5.1), which pylsqpack's own
            # encoder makes and its decoder refuses: the fields' validation answers it (400 for
            # a request), instead of a decoding failure that closed the whole connection.
            return []
        decoder = self._decoder if self._decoder is not None else pylsqpack.Decoder(0, 0)
        try:
            decoder_data, header_list = decoder.feed_header(stream_id, block)
        except (pylsqpack.DecompressionFailed, pylsqpack.StreamBlocked) as exc:
            raise RemoteProtocolError(f"QPACK header block on stream {stream_id} cannot be decoded",
                                      error_code=c.QPACK_DECOMPRESSION_FAILED) from exc
        if decoder_data:
            self._quic.send_stream_data(self._decoder_id, decoder_data)
        return list(header_list)

    # -- GOAWAY
    def send_goaway(self, last_id: int) -> bool:
        """Announce a graceful shutdown once (RFC 9114 §5.2); False if it was sent already."""
        if self.goaway_sent is not None or not self.started:
            return False
        self.goaway_sent = last_id
        self._quic.send_stream_data(self._control_id,
                                    frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(last_id)))
        return True
