"""The qh3 backend of the QUIC seam (``pywebtransport[qh3]``, qh3 1.x).

qh3 1.x keeps aioquic's Python connection and packet scheduling and moves buffers, TLS and
crypto into a native module. What differs from the aioquic backend:

- Read-driven stream credit. qh3 has no ``_write_stream_limits`` hook: it raises a
  stream's receive window inline while building packets (doubling it once the peer used
  half, and again on every STREAM_DATA_BLOCKED). The closest safe mechanism is the one
  place all of those go through, the assignment to ``QuicStream.max_stream_data_local``:
  every stream is switched to ``ReadDrivenQuicStream``, whose property refuses any raise
  made by qh3. Reads raise the window (to *consumed + window*) themselves and mark
  the stream for qh3's own MAX_STREAM_DATA writer, so the frame goes out exactly as qh3
  would send it. The effect is the same as on aioquic: a slow reader caps what the sender
  can have in flight at one window.
- Stream-count credit. qh3 doubles the MAX_STREAMS it grants once the peer used half, so
  a peer could open streams without end without closing any; aioquic grants one more as
  each of the peer's streams is finished and discarded, in batches (once the peer has
  fewer streams left to open than the slots waiting). Here too: ``_StreamCountLimit``
  refuses qh3's raises and the set of discarded streams hands the slot back, batched by
  the same rule (a frame per stream cost a packet and an ACK per new stream).
- ``send_buffered`` counts bytes not yet sent rather than not yet acknowledged: qh3's
  native stream sender does not expose its acknowledged offset, only the ranges still to
  send. ``send_acknowledged`` is exact (the sender's ``is_finished``).
- A FIN written after the stream's data left. qh3 1.x's native sender has no ``fin``
  argument in its delivery handler (aioquic's has) and calls itself finished once the data
  up to the FIN offset is acknowledged, FIN sent or not; qh3 then discards the stream and
  the FIN never goes out. ``_FinAwareSender`` wraps the sender of a stream whose FIN was
  written and waits for the acknowledgement of a frame that carried it.
- A reset or send on a stream qh3 already discarded raises ValueError as in aioquic (qh3
  would otherwise create the stream again). qh3 remembers every discarded stream id in a
  set for the connection's lifetime (aioquic computes it); that set is qh3's, not ours.
- qh3 does CUBIC only: ``congestion_control_algorithm`` is ignored. Client path MTU
  probing is off so that both backends send packets of ``max_datagram_size``.
- Datagram drops. qh3 queues every DATAGRAM frame until a packet has room, like aioquic,
  and drops none itself. What goes missing is lost *packets*: qh3 sends in large bursts
  (over 1,600 packets from one ``datagrams_to_send`` in a loopback flood, where aioquic
  releases at most about 17), the receiver's UDP buffer
  overflows (the kernel's RcvbufErrors grow by the same amount), loss recovery declares
  the packets lost, and a DATAGRAM frame is never resent (RFC 9221 §5.2). Both backends
  count these: our DATAGRAM writer registers a delivery handler, ``datagrams_dropped``
  counts the frames of every packet declared lost (a spuriously declared loss counts too),
  and a ``DatagramFrameLost`` event lets the engine count it for its session.

- Closing. As on aioquic, the end is reported as soon as it is known and the close
  datagrams are kept for the endpoint (see ``AioquicFamilyMethods``); qh3's own resending
  of CONNECTION_CLOSE while closing is not used, since the connection is forgotten once the
  close is sent and the endpoint answers late packets itself.

- TLS extras. The exporter master secret is captured as on aioquic (qh3's TLS state
  machine is Python, with the same key schedule). qh3 1.x answers a CertificateRequest as a
  client, but its server never sends one: ``request_client_certificate`` is refused (a
  ValueError when the configuration is built), so servers that verify clients run on aioquic.

qh3 2.x replaced the Python connection with a native packet core that exposes neither
streams nor flow-control windows, so read-driven credit cannot hold there: only 1.x is
supported (``qh3>=1.9,<2``). Every private qh3 attribute used is listed in
``REQUIRED_ATTRIBUTES`` and read in this module only.
"""


from __future__ import annotations

import tempfile
from typing import Any

from cryptography import x509
from qh3._hazmat import size_uint_var
from qh3.quic import events as q_events
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection, stream_is_client_initiated, stream_is_unidirectional
from qh3.quic.packet_builder import QuicDeliveryState
from qh3.quic.stream import QuicStream
from qh3.tls import Direction, Epoch

from pywebtransport._protocol.quic import (
    ConnectionIdIssued,
    ConnectionIdRetired,
    ConnectionTerminated,
    DatagramFrameLost,
    DatagramFrameReceived,
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicEvent,
    QuicSettings,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
    sender_pending,
    sender_unsent,
)
from pywebtransport._protocol.quic_family import AioquicFamilyMethods
from pywebtransport._protocol.quic_qh3_config import qh3_configuration
from pywebtransport._protocol.quic_qh3_credit import (
    _INITIAL_MAX_STREAMS,
    _WINDOW_SLOT,
    ReadDrivenQuicStream,
    _FinishedStreams,
    _StreamCountLimit,
)
from pywebtransport._protocol.quic_qh3_fin import _FinAwareSender, fin_needs_own_frame
from pywebtransport._protocol.quic_qlog import _qh3_qlog
from pywebtransport._protocol.quic_required import FAMILY_REQUIRED_ATTRIBUTES, missing_from
from pywebtransport._protocol.quic_tls import exporter_secret_from_schedule

__all__ = ["REQUIRED_ATTRIBUTES", "Qh3Connection", "create", "qh3_configuration"]

#: Private qh3 names this module relies on, as (owner, attribute); a test fails naming the
#: attribute when a qh3 release drops one.
REQUIRED_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    *FAMILY_REQUIRED_ATTRIBUTES,
    ("QuicConnection", "_streams_finished"),
    ("QuicConnection", "_streams_dirty_limits"),
    ("QuicConnection", "_get_or_create_stream"),
    ("QuicConnection", "_get_or_create_stream_for_send"),
    ("QuicStreamSender", "_pending"),
    ("QuicPacketBuilder", "start_frame"),
)

#: qh3's ConnectionTerminated phrase when its idle timer (not the peer) ended the connection.
_QH3_IDLE_PHRASE = "Idle timeout"


def _translate(event: Any) -> QuicEvent | None:
    """The neutral event for one of qh3's (None for those the engine does not use)."""
    kind = type(event)
    if kind is q_events.StreamDataReceived:
        return StreamDataReceived(event.stream_id, event.data, event.end_stream)
    if kind is q_events.DatagramFrameReceived:
        return DatagramFrameReceived(event.data)
    if kind is q_events.StreamReset:
        return StreamReset(event.stream_id, event.error_code)
    if kind is q_events.StopSendingReceived:
        return StopSendingReceived(event.stream_id, event.error_code)
    if kind is q_events.HandshakeCompleted:
        return HandshakeCompleted(event.alpn_protocol)
    if kind is q_events.ProtocolNegotiated:
        return ProtocolNegotiated(event.alpn_protocol)
    if kind is q_events.ConnectionIdIssued:
        return ConnectionIdIssued(event.connection_id)
    if kind is q_events.ConnectionIdRetired:
        return ConnectionIdRetired(event.connection_id)
    if isinstance(event, DatagramFrameLost):  # ours, queued by the delivery handler
        return event
    if kind is q_events.ConnectionTerminated:
        phrase = event.reason_phrase
        return ConnectionTerminated(event.error_code, phrase, phrase == _QH3_IDLE_PHRASE,
                                    application=event.frame_type is None)
    return None


class Qh3Connection(AioquicFamilyMethods, QuicConnection):
    """qh3's QuicConnection behind the seam: neutral events, read-driven stream credit."""

    backend = "qh3"
    delivery_acked = QuicDeliveryState.ACKED
    one_rtt_epoch = Epoch.ONE_RTT
    translate_event = staticmethod(_translate)
    varint_size = staticmethod(size_uint_var)
    #: RESET_STREAM_AT (reliable reset) is not implemented by qh3 1.x (docs/protocol.md).
    supports_reset_stream_at = False
    #: qh3 servers cannot ask for client certificates (docs/protocol.md).
    requests_client_certificate = False

    def __init__(self, *, configuration: QuicConfiguration,
                 original_destination_connection_id: bytes | None = None,
                 max_streams: tuple[int, int] = (_INITIAL_MAX_STREAMS, _INITIAL_MAX_STREAMS)) -> None:
        super().__init__(configuration=configuration,
                         original_destination_connection_id=original_destination_connection_id)
        self._consumed: dict[int, int] = {}
        self._window = configuration.max_stream_data
        self._dropped = 0
        self._exporter_secret: tuple[str, bytes] | None = None
        # Stream-count credit follows finished streams, not arrivals (see _StreamCountLimit).
        # Before the handshake, so the transport parameters carry it: ``max_streams`` (bidi,
        # uni), aioquic's 128 of each kind by default (qh3 starts at 100 and 103; a browser page
        # opening 100 streams at once needs more).
        self._local_max_streams_bidi = _StreamCountLimit(  # type: ignore[assignment]
            self._local_max_streams_bidi, max_streams[0])
        self._local_max_streams_uni = _StreamCountLimit(  # type: ignore[assignment]
            self._local_max_streams_uni, max_streams[1])
        self._streams_finished = _FinishedStreams(self._streams_finished, self._on_stream_discarded)
        self._share_frame_epochs()
        self._read_driven_connection_credit()

    def _on_stream_discarded(self, stream_id: int) -> None:
        if stream_is_client_initiated(stream_id) != self._is_client:  # the peer's stream: its slot is free
            limit = self._local_max_streams_uni if stream_is_unidirectional(stream_id) else self._local_max_streams_bidi
            limit.grant()  # type: ignore[attr-defined]

    # -- TLS
    def _update_traffic_key(self, direction: Any, epoch: Any, cipher_suite: Any, secret: bytes) -> None:
        # qh3 hook: every new traffic secret passes here. The first 1-RTT secret of the
        # server's direction comes right after the key schedule (tls.Context.key_schedule)
        # extracted the master secret over the transcript up to the server's Finished.
        super()._update_traffic_key(direction, epoch, cipher_suite, secret)
        if (self._exporter_secret is None and epoch == Epoch.ONE_RTT
                and (direction == Direction.DECRYPT) == self._is_client):
            schedule: Any = self.tls.key_schedule  # qh3's KeySchedule.algorithm is the digest size in bits
            self._exporter_secret = exporter_secret_from_schedule(schedule, f"sha{schedule.algorithm}", secret)

    #: The next backend-neutral event (qh3's own events never reach the engine): the
    #: family's method itself, with no frame of ours around it (the engine pumps it per packet).
    next_event = AioquicFamilyMethods.next_neutral_event  # type: ignore[assignment]

    # -- read-driven stream credit (see the module docstring)
    def _get_or_create_stream(self, frame_type: int, stream_id: int) -> QuicStream:
        # qh3 hook: every received stream frame finds its stream here.
        stream = super()._get_or_create_stream(frame_type, stream_id)
        if type(stream) is QuicStream:
            stream.__class__ = ReadDrivenQuicStream
        return stream

    def _get_or_create_stream_for_send(self, stream_id: int) -> QuicStream:
        # qh3 hook: every send, reset and new local stream comes through here. aioquic refuses
        # a discarded stream; qh3 would create it anew.
        if stream_id in self._streams_finished:
            raise ValueError("Cannot send data on a finished stream")
        stream = super()._get_or_create_stream_for_send(stream_id)
        if type(stream) is QuicStream:
            stream.__class__ = ReadDrivenQuicStream
        return stream

    def _fin_written(self, stream: Any) -> None:
        """With the FIN written, the stream's sender waits for the FIN's own acknowledgement
        before it counts as finished (see ``_FinAwareSender``)."""
        if fin_needs_own_frame(stream.sender):
            stream.sender = _FinAwareSender(stream.sender)

    def consume_stream_data(self, stream_id: int, amount: int) -> None:
        """The application has read ``amount`` more bytes of ``stream_id``: grant credit
        (ignored once the stream received everything, so no record lingers)."""
        stream = self._streams.get(stream_id)
        if amount <= 0 or stream is None or stream.receiver.is_finished:
            return
        consumed = self._consumed[stream_id] = self._consumed.get(stream_id, 0) + amount
        if not stream.max_stream_data_local:
            return
        wanted = consumed + self._window
        current = _WINDOW_SLOT.__get__(stream, QuicStream)
        # Grant more once half of the window has been consumed (RFC 9000 §4.2 advice).
        if wanted - current >= self._window // 2:
            _WINDOW_SLOT.__set__(stream, wanted)
            self._streams_dirty_limits.add(stream)  # qh3 writes MAX_STREAM_DATA for dirty streams

    # -- streams
    def send_buffered(self, stream_id: int) -> int:
        """Bytes written to ``stream_id`` and not yet sent (see the module docstring)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return sender_unsent(stream.sender)

    def _sender_written(self, sender: Any) -> int:
        """Bytes written to a qh3 stream sender. Its native sender keeps no write offset: the
        ranges still to send (_pending, kept after a reset) end there when some were never
        sent, else everything written went into a frame and ``highest_offset`` is the end."""
        return max([int(sender.highest_offset), *(stop for _, stop in sender_pending(sender))])

    def is_stream_discarded(self, stream_id: int) -> bool:
        """Whether the stream was opened and qh3 has since dropped its state."""
        return stream_id in self._streams_finished

    # -- connection facts

    @property
    def peer_certificate_der(self) -> bytes | None:
        """The peer's leaf certificate, DER-encoded (what hash pinning digests)."""
        certificate = self.get_peercert()
        return bytes(certificate.public_bytes()) if certificate is not None else None

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's leaf certificate as a ``cryptography`` object, as on aioquic."""
        der = self.peer_certificate_der
        return x509.load_der_x509_certificate(der) if der is not None else None

    @property
    def peer_certificate_chain(self) -> tuple[x509.Certificate, ...]:
        """The certificates the peer sent after its leaf (intermediates), in its order."""
        # tls.Context keeps them in _peer_certificate_chain (qh3's own certificate type).
        chain = getattr(getattr(self, "tls", None), "_peer_certificate_chain", None) or ()
        return tuple(x509.load_der_x509_certificate(bytes(c.public_bytes())) for c in chain)

    def missing_attributes(self) -> list[str]:
        """The entries of ``REQUIRED_ATTRIBUTES`` this connection lacks (empty when all exist)."""
        from qh3._hazmat import QuicStreamSender
        from qh3.quic.packet_builder import QuicPacketBuilder
        from qh3.quic.recovery import QuicPacketSpace
        from qh3.quic.stream import QuicStreamReceiver

        owners: dict[str, object] = {
            "QuicConnection": self,
            "QuicPacketRecovery": getattr(self, "_loss", None),
            "QuicPacketSpace": QuicPacketSpace(),
            "QuicStreamSender": QuicStreamSender(stream_id=0, writable=True),
            "QuicStreamReceiver": QuicStreamReceiver(stream_id=0, readable=True),
            "QuicPacketBuilder": QuicPacketBuilder,
            "QuicFileLogger": _qh3_qlog(tempfile.gettempdir()),
            "tls.Context": getattr(self, "tls", None),
        }
        missing = missing_from(REQUIRED_ATTRIBUTES, owners)
        if not isinstance(_WINDOW_SLOT, type(QuicStream.__dict__["stream_id"])):
            missing.append("QuicStream.max_stream_data_local (a slot)")
        return missing


def create(settings: QuicSettings, original_destination_connection_id: bytes | None) -> Qh3Connection:
    """A qh3 connection for ``settings``."""
    return Qh3Connection(configuration=qh3_configuration(settings),
                         original_destination_connection_id=original_destination_connection_id,
                         max_streams=(settings.max_streams_bidi, settings.max_streams_uni))
