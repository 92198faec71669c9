"""The aioquic backend of the QUIC seam: ``AioquicConnection``, and what it reads of aioquic.

aioquic grants stream credit when data *arrives* (doubling the window each time), so a
slow reader cannot hold a fast writer back and memory grows without bound. Here stream
credit is granted as the application *consumes* data instead, which makes QUIC stream flow
control real backpressure. Everything else the library reads of aioquic's private state
(send buffers, stream discard, connection ids, the peer certificate, RTT, congestion
control names) is read by the backend modules too, each access commented with the attribute
it needs, so an aioquic upgrade breaks only them: ``REQUIRED_ATTRIBUTES`` is checked by a test.
DATAGRAM frames in packets declared lost are counted (``datagrams_dropped``) and reported as
``DatagramFrameLost`` events. A server asks for a client certificate when
``request_client_certificate`` is set; the chain is verified by the caller after the
handshake. aioquic implements no RESET_STREAM_AT (``supports_reset_stream_at`` is False).
The end of the connection is reported (``ConnectionTerminated``) as soon as a close is
pending or the peer's CONNECTION_CLOSE arrived, not when aioquic's closing or draining
period ends three PTOs later; the datagrams that carried our close are kept
(``close_datagrams``) with the period's end (``closing_deadline``), so that the endpoint can
answer late packets for that period after the connection itself is gone (RFC 9000 §10.2).

The backend's other parts, each importable from here as before:

- ``quic_family.py``: ``AioquicFamilyMethods``, what aioquic and qh3 implement alike (the
  early end of the connection, stream facts, datagram loss accounting, the TLS exporter);
- ``quic_aioquic_config.py``: aioquic's configuration, congestion control names;
- ``quic_qlog.py``: qlog directory loggers; ``quic_refusal.py``: the CONNECTION_REFUSED reply.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from typing import Any

from aioquic.buffer import size_uint_var
from aioquic.quic import events as aq_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicDeliveryState
from aioquic.tls import Direction, Epoch
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pywebtransport._protocol.quic import (
    ConnectionIdIssued,
    ConnectionIdRetired,
    ConnectionTerminated,
    DatagramFrameLost,
    DatagramFrameReceived,
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicCore,
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
    request_client_certificate,
    sender_unacknowledged,
    sender_written,
)
from pywebtransport._protocol.quic_aioquic_config import aioquic_configuration, congestion_control_algorithms
from pywebtransport._protocol.quic_family import POST_HANDSHAKE_TLS_BUFFER as POST_HANDSHAKE_TLS_BUFFER
from pywebtransport._protocol.quic_family import SPENT_EPOCH_TLS_BUFFER as SPENT_EPOCH_TLS_BUFFER
from pywebtransport._protocol.quic_family import AioquicFamilyMethods
from pywebtransport._protocol.quic_qlog import _aioquic_qlog, end_qlog_trace, qlog_directory_logger
from pywebtransport._protocol.quic_refusal import build_connection_refused
from pywebtransport._protocol.quic_required import FAMILY_REQUIRED_ATTRIBUTES, missing_from
from pywebtransport._protocol.quic_tls import exporter_secret_from_schedule

logger = logging.getLogger(__name__)

_MAX_STREAM_DATA_FRAME_CAPACITY = 1 + 8 + 8

__all__ = ["REQUIRED_ATTRIBUTES", "AioquicConnection", "AioquicFamilyMethods", "BackpressuredQuicConnection",
           "aioquic_configuration", "build_connection_refused", "congestion_control_algorithms", "end_qlog_trace",
           "missing_attributes", "qlog_directory_logger"]

#: Private aioquic names the aioquic backend relies on (here, in ``quic_family``, ``quic_qlog``
#: and ``quic``'s readers of private state), as (owner, attribute). A test builds a real
#: connection and fails loudly, naming the attribute, when an aioquic release drops one.
REQUIRED_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    *FAMILY_REQUIRED_ATTRIBUTES,
    # aioquic >= 1.7 has _stream_is_discarded(); 1.3 (the newest on Python 3.10) a set instead.
    ("QuicConnection", "_stream_is_discarded|_streams_finished"),
    ("QuicConnection", "_on_max_stream_data_delivery"),
    ("QuicConnection", "_write_stream_limits"),
    ("QuicStreamSender", "_buffer_start"),
    ("QuicStreamSender", "_buffer_stop"),
    ("tls.Context", "_peer_certificate"),
    ("tls.Context", "_request_client_certificate"),
    ("QuicConnection", "_initialize"),
    ("QuicConnection", "_local_active_connection_id_limit"),
)

#: aioquic's ConnectionTerminated phrase when the idle timer (not the peer) ended it.
_AIOQUIC_IDLE_PHRASE = "Idle timeout"


def _translate_aioquic(event: aq_events.QuicEvent) -> QuicEvent | None:
    """The neutral event for one of aioquic's (None for those the engine does not use)."""
    translate = _AIOQUIC_EVENTS.get(type(event))
    return translate(event) if translate is not None else None


_AIOQUIC_EVENTS: dict[type, Callable[[Any], QuicEvent]] = {
    aq_events.StreamDataReceived: lambda e: StreamDataReceived(e.stream_id, e.data, e.end_stream),
    aq_events.DatagramFrameReceived: lambda e: DatagramFrameReceived(e.data),
    aq_events.StreamReset: lambda e: StreamReset(e.stream_id, e.error_code),
    aq_events.StopSendingReceived: lambda e: StopSendingReceived(e.stream_id, e.error_code),
    aq_events.HandshakeCompleted: lambda e: HandshakeCompleted(e.alpn_protocol),
    aq_events.ProtocolNegotiated: lambda e: ProtocolNegotiated(e.alpn_protocol),
    aq_events.ConnectionIdIssued: lambda e: ConnectionIdIssued(e.connection_id),
    aq_events.ConnectionIdRetired: lambda e: ConnectionIdRetired(e.connection_id),
    aq_events.ConnectionTerminated: lambda e: ConnectionTerminated(
        e.error_code, e.reason_phrase, e.reason_phrase == _AIOQUIC_IDLE_PHRASE, application=e.frame_type is None),
    DatagramFrameLost: lambda e: e,  # ours, queued by the delivery handler (quic_family)
}


class AioquicConnection(AioquicFamilyMethods, QuicConnection):
    """aioquic's QuicConnection whose stream receive windows follow the application's reads."""

    backend = "aioquic"
    delivery_acked = QuicDeliveryState.ACKED
    one_rtt_epoch = Epoch.ONE_RTT
    translate_event = staticmethod(_translate_aioquic)
    varint_size = staticmethod(size_uint_var)
    #: RESET_STREAM_AT (reliable reset) is not implemented by aioquic (docs/protocol.md).
    supports_reset_stream_at = False

    def __init__(self, *, configuration: QuicConfiguration,
                 original_destination_connection_id: bytes | None = None,
                 request_client_certificate: bool = False, active_connection_id_limit: int = 2,
                 max_streams: tuple[int, int] = (128, 128)) -> None:
        super().__init__(configuration=configuration,
                         original_destination_connection_id=original_destination_connection_id)
        # aioquic has no configuration field for these: its transport parameters read them
        # (8 connection ids and 128 streams of each kind by default). MAX_STREAMS then grows
        # by one as each of the peer's streams finishes, from what is set here.
        self._local_active_connection_id_limit = active_connection_id_limit
        for limit, value in zip((self._local_max_streams_bidi, self._local_max_streams_uni), max_streams, strict=True):
            limit.value = limit.sent = value
        self._consumed: dict[int, int] = {}
        #: Streams read from since their credit was last checked: aioquic calls the credit
        #: hook for every stream in every packet it builds, and only these can need a grant.
        self._credit_dirty: set[int] = set()
        self._dropped = 0
        self._wants_client_certificate = request_client_certificate and not configuration.is_client
        self._exporter_secret: tuple[str, bytes] | None = None
        self._share_frame_epochs()
        self._read_driven_connection_credit()

    @property
    def requests_client_certificate(self) -> bool:
        """Whether this server asks the client for a certificate (a CertificateRequest)."""
        return bool(self._wants_client_certificate)

    # -- TLS
    def _initialize(self, peer_cid: bytes) -> None:
        # aioquic hook: creates the tls.Context. Its server sends a CertificateRequest only
        # when the private _request_client_certificate flag is set.
        super()._initialize(peer_cid)
        if self._wants_client_certificate:
            request_client_certificate(self.tls)

    def _update_traffic_key(self, direction, epoch, cipher_suite, secret) -> None:  # type: ignore[no-untyped-def]
        # aioquic hook: every new traffic secret passes here. The first 1-RTT secret of the
        # server's direction comes right after the key schedule (tls.Context.key_schedule)
        # extracted the master secret over the transcript up to the server's Finished.
        super()._update_traffic_key(direction, epoch, cipher_suite, secret)
        if (self._exporter_secret is None and epoch == Epoch.ONE_RTT
                and (direction == Direction.DECRYPT) == self._is_client):
            schedule: Any = self.tls.key_schedule
            self._exporter_secret = exporter_secret_from_schedule(schedule, schedule.algorithm.name, secret)

    #: The next backend-neutral event (aioquic's own events never reach the engine): the
    #: family's method itself, with no frame of ours around it (the engine pumps it per packet).
    next_event = AioquicFamilyMethods.next_neutral_event  # type: ignore[assignment]

    # -- read-driven stream credit
    def consume_stream_data(self, stream_id: int, amount: int) -> None:
        """The application has read ``amount`` more bytes of ``stream_id`` (ignored once the
        stream received everything: no credit is needed then, and no record may linger)."""
        stream = self._streams.get(stream_id)
        if amount > 0 and stream is not None and not stream.receiver.is_finished:
            self._consumed[stream_id] = self._consumed.get(stream_id, 0) + amount
            self._credit_dirty.add(stream_id)

    def forget_stream(self, stream_id: int) -> None:
        """Drop the consumption record of a finished stream."""
        super().forget_stream(stream_id)
        self._credit_dirty.discard(stream_id)

    # -- streams
    def send_buffered(self, stream_id: int) -> int:
        """Bytes written to ``stream_id`` that the peer has not acknowledged yet."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return sender_unacknowledged(stream.sender)

    def _sender_written(self, sender: Any) -> int:
        """Bytes written to an aioquic stream sender (its _buffer_stop, see ``quic.sender_written``)."""
        return sender_written(sender)

    def is_stream_discarded(self, stream_id: int) -> bool:
        """Whether the stream was opened and aioquic has since dropped its state; aioquic
        then drops late frames for it itself, so no event about it can follow."""
        discarded = getattr(self, "_stream_is_discarded", None)
        if discarded is not None:
            return bool(discarded(stream_id))
        # aioquic < 1.7 keeps the ids of the streams it discarded in _streams_finished.
        finished: set[int] = getattr(self, "_streams_finished", set())
        return stream_id in finished

    # -- connection facts

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's leaf certificate once TLS has seen it."""
        # tls.Context keeps it in _peer_certificate; aioquic has no public accessor.
        tls = getattr(self, "tls", None)  # created by connect() or the first datagram
        certificate = getattr(tls, "_peer_certificate", None)
        return certificate if isinstance(certificate, x509.Certificate) else None

    @property
    def peer_certificate_der(self) -> bytes | None:
        """The peer's leaf certificate, DER-encoded (what hash pinning digests)."""
        certificate = self.peer_certificate
        return certificate.public_bytes(Encoding.DER) if certificate is not None else None

    @property
    def peer_certificate_chain(self) -> tuple[x509.Certificate, ...]:
        """The certificates the peer sent after its leaf (intermediates), in its order."""
        # tls.Context keeps them in _peer_certificate_chain.
        chain = getattr(getattr(self, "tls", None), "_peer_certificate_chain", None) or ()
        return tuple(c for c in chain if isinstance(c, x509.Certificate))

    def missing_attributes(self) -> list[str]:
        """The entries of ``REQUIRED_ATTRIBUTES`` this connection lacks (empty when all exist)."""
        from aioquic.quic.recovery import QuicPacketSpace
        from aioquic.quic.stream import QuicStreamReceiver, QuicStreamSender

        owners: dict[str, object] = {
            "QuicConnection": self,
            "QuicPacketRecovery": getattr(self, "_loss", None),
            "QuicPacketSpace": QuicPacketSpace(),
            "QuicStreamSender": QuicStreamSender(stream_id=0, writable=True),
            "QuicStreamReceiver": QuicStreamReceiver(stream_id=0, readable=True),
            "tls.Context": getattr(self, "tls", None),
            "QuicFileLogger": _aioquic_qlog(tempfile.gettempdir()),
        }
        return missing_from(REQUIRED_ATTRIBUTES, owners)

    # aioquic hook: called for every stream when a packet is built.
    def _write_stream_limits(self, builder, space, stream) -> None:  # type: ignore[no-untyped-def]
        if not stream.max_stream_data_local:
            return
        if stream.stream_id in self._credit_dirty:  # only a read can make a grant due
            self._credit_dirty.discard(stream.stream_id)
            window = self._configuration.max_stream_data
            wanted = self._consumed.get(stream.stream_id, 0) + window
            # Grant more once half of the window has been consumed (RFC 9000 §4.2 advice).
            if wanted - stream.max_stream_data_local >= window // 2:
                stream.max_stream_data_local = wanted
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:  # new, or lost and resent
            buf = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=_MAX_STREAM_DATA_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            buf.push_uint_var(stream.stream_id)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local


#: The name the rest of the library has used for the aioquic backend.
BackpressuredQuicConnection = AioquicConnection


def missing_attributes(connection: QuicCore | QuicConnection) -> list[str]:
    """The private attributes a live connection of either backend lacks (empty when all exist)."""
    check = getattr(connection, "missing_attributes", None)
    if check is None:  # a plain aioquic QuicConnection: check it against aioquic's list
        return AioquicConnection.missing_attributes(connection)  # type: ignore[arg-type]
    return list(check())
