"""The aioquic backend of the QUIC seam, and the one place that reads aioquic's internals.

aioquic grants stream credit when data *arrives* (doubling the window each time), so a
slow reader cannot hold a fast writer back and memory grows without bound. Here stream
credit is granted as the application *consumes* data instead, which makes QUIC stream flow
control real backpressure. Everything else the library reads of aioquic's private state
(send buffers, stream discard, connection ids, the peer certificate, RTT, congestion
control names) is read here too, each access commented with the attribute it needs, so an
aioquic upgrade breaks exactly one module: ``REQUIRED_ATTRIBUTES`` is checked by a test.
DATAGRAM frames in packets declared lost are counted (``datagrams_dropped``) and reported as
``DatagramFrameLost`` events. A server asks for a client certificate when
``request_client_certificate`` is set; the chain is verified by the caller after the
handshake. aioquic implements no RESET_STREAM_AT (``supports_reset_stream_at`` is False).
The end of the connection is reported (``ConnectionTerminated``) as soon as a close is
pending or the peer's CONNECTION_CLOSE arrived, not when aioquic's closing or draining
period ends three PTOs later; the datagrams that carried our close are kept
(``close_datagrams``) with the period's end (``closing_deadline``), so that the endpoint can
answer late packets for that period after the connection itself is gone (RFC 9000 §10.2).
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from typing import Any

from aioquic.buffer import size_uint_var
from aioquic.quic import events as aq_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicFrameType
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pywebtransport._protocol.quic import (
    DEFAULT_BACKEND,
    PACKET_OVERHEAD,
    ConnectionIdIssued,
    ConnectionIdRetired,
    ConnectionTerminated,
    DatagramFrameLost,
    DatagramFrameReceived,
    HandshakeCompleted,
    QuicCore,
    QuicEvent,
    QuicSettings,
    RttSample,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
    file_version,
    loss_rtt,
    qlog_trace_and_logger,
    request_client_certificate,
    sender_unacknowledged,
)
from pywebtransport._protocol.quic_tls import exporter_secret_from_schedule, tls_exporter

logger = logging.getLogger(__name__)

_MAX_STREAM_DATA_FRAME_CAPACITY = 1 + 8 + 8

__all__ = ["REQUIRED_ATTRIBUTES", "AioquicConnection", "AioquicFamilyMethods", "BackpressuredQuicConnection",
           "aioquic_configuration", "build_connection_refused", "congestion_control_algorithms", "end_qlog_trace",
           "missing_attributes", "qlog_directory_logger"]

@functools.lru_cache(maxsize=16)
def _aioquic_chain(certfile: str, keyfile: str | None, mtime: float) -> tuple[Any, list[Any], Any]:
    """Certificate, chain and key of a PEM pair, parsed once per file version (a server
    builds one configuration per connection)."""
    probe = QuicConfiguration()
    probe.load_cert_chain(certfile, keyfile)
    return probe.certificate, list(probe.certificate_chain), probe.private_key


def aioquic_configuration(settings: QuicSettings) -> QuicConfiguration:
    """aioquic's configuration for ``settings``."""
    qc = QuicConfiguration(
        is_client=settings.is_client,
        alpn_protocols=list(settings.alpn_protocols),
        max_datagram_frame_size=settings.max_datagram_frame_size,
        idle_timeout=settings.idle_timeout,
        congestion_control_algorithm=settings.congestion_control_algorithm,
        max_datagram_size=settings.max_datagram_size,
        max_stream_data=settings.max_stream_data,
        max_data=settings.max_data,
        server_name=settings.server_name,
        secrets_log_file=settings.secrets_log,
        quic_logger=settings.quic_logger or (_aioquic_qlog(settings.qlog_dir) if settings.qlog_dir else None),
    )
    qc.verify_mode = ssl.CERT_REQUIRED if settings.verify_peer else ssl.CERT_NONE
    if settings.cafile:
        qc.load_verify_locations(cafile=settings.cafile)
    if settings.certfile:
        qc.certificate, qc.certificate_chain, qc.private_key = _aioquic_chain(
            settings.certfile, settings.keyfile, file_version(settings.certfile))
    if settings.certificate is not None:
        qc.certificate = settings.certificate
        qc.certificate_chain = list(settings.certificate_chain)
    if settings.private_key is not None:
        qc.private_key = settings.private_key
    for name, value in settings.extra.items():
        setattr(qc, name, value)
    return qc


# ---------------------------------------------------------------------------- qlog


def qlog_directory_logger(base: type[Any]) -> type[Any]:
    """A subclass of a backend's ``QuicFileLogger`` (one qlog file per connection in a
    directory) whose ``end_trace`` may be called twice: a connection closed locally ends its
    trace itself, before QUIC's closing period would."""

    def end_trace(self: Any, trace: Any) -> None:
        if trace in self._traces:  # the base logger's own list of live traces
            base.end_trace(self, trace)

    return type("QlogDirectoryLogger", (base,), {"end_trace": end_trace})


@functools.lru_cache(maxsize=8)
def _aioquic_qlog(directory: str) -> Any:
    from aioquic.quic.logger import QuicFileLogger

    return qlog_directory_logger(QuicFileLogger)(directory)


def end_qlog_trace(connection: Any) -> None:
    """End ``connection``'s qlog trace now (its file is written) if a directory logger has it."""
    trace, logger = qlog_trace_and_logger(connection)
    if trace is not None and logger is not None and type(logger).__name__ == "QlogDirectoryLogger":
        logger.end_trace(trace)


# ---------------------------------------------------------------------------- aioquic

#: Private aioquic names this module relies on, as (owner, attribute). A test builds a real
#: connection and fails loudly, naming the attribute, when an aioquic release drops one.
#: Capacity of the 1-RTT TLS output buffer after the handshake (a NewSessionTicket is ~0.2 KiB).
POST_HANDSHAKE_TLS_BUFFER = 4096
#: Capacity of the Initial and Handshake TLS output buffers after the handshake (unused).
SPENT_EPOCH_TLS_BUFFER = 256

REQUIRED_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("QuicConnection", "_events"),
    ("QuicConnection", "_crypto_buffers"),
    ("QuicConnection", "_streams"),
    # aioquic >= 1.7 has _stream_is_discarded(); 1.3 (the newest on Python 3.10) a set instead.
    ("QuicConnection", "_stream_is_discarded|_streams_finished"),
    ("QuicConnection", "_local_next_stream_id_bidi"),
    ("QuicConnection", "_local_next_stream_id_uni"),
    ("QuicConnection", "_remote_max_streams_bidi"),
    ("QuicConnection", "_remote_max_streams_uni"),
    ("QuicConnection", "_remote_max_datagram_frame_size"),
    ("QuicConnection", "_remote_max_idle_timeout"),
    ("QuicConnection", "_max_datagram_size"),
    ("QuicConnection", "_datagrams_pending"),
    ("QuicConnection", "_host_cids"),
    ("QuicConnection", "_loss"),
    ("QuicConnection", "_configuration"),
    ("QuicConnection", "_on_max_stream_data_delivery"),
    ("QuicConnection", "_write_stream_limits"),
    ("QuicConnection", "_write_datagram_frame"),
    ("QuicConnection", "_quic_logger"),
    ("QuicPacketRecovery", "_rtt_smoothed"),
    ("QuicPacketRecovery", "_rtt_min"),
    ("QuicPacketRecovery", "_rtt_latest"),
    ("QuicStreamSender", "_buffer_start"),
    ("QuicStreamSender", "_buffer_stop"),
    ("tls.Context", "_peer_certificate"),
    ("tls.Context", "_peer_certificate_chain"),
    ("tls.Context", "_request_client_certificate"),
    ("tls.Context", "key_schedule"),
    ("QuicConnection", "_initialize"),
    ("QuicConnection", "_update_traffic_key"),
    ("QuicConnection", "_handshake_complete"),
    ("QuicFileLogger", "_traces"),
    ("QuicConnection", "_state"),
    ("QuicConnection", "_close_event"),
    ("QuicConnection", "_close_pending"),
    ("QuicConnection", "_close_at"),
)

#: aioquic's and qh3's ConnectionTerminated phrase when the idle timer (not the peer) ended it.
_IDLE_PHRASE = _AIOQUIC_IDLE_PHRASE = "Idle timeout"
#: The connection states (both libraries' QuicConnectionState names) in which QUIC sends
#: nothing but CONNECTION_CLOSE.
_END_STATE_NAMES = frozenset({"CLOSING", "DRAINING", "TERMINATED"})


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
    aq_events.ConnectionIdIssued: lambda e: ConnectionIdIssued(e.connection_id),
    aq_events.ConnectionIdRetired: lambda e: ConnectionIdRetired(e.connection_id),
    aq_events.ConnectionTerminated: lambda e: ConnectionTerminated(
        e.error_code, e.reason_phrase, e.reason_phrase == _AIOQUIC_IDLE_PHRASE),
    DatagramFrameLost: lambda e: e,  # ours, queued by the delivery handler below
}


def congestion_control_algorithms(backend: str = DEFAULT_BACKEND) -> tuple[str, ...]:
    """Names ``backend`` accepts as ``congestion_control_algorithm`` (qh3 has CUBIC only)."""
    if backend == "qh3":
        return ("cubic",)
    from aioquic.quic.congestion import base

    # aioquic keeps its registry in the private module dict ``base._factories``.
    names = tuple(sorted(getattr(base, "_factories", {})))
    return names or ("reno",)


class AioquicFamilyMethods:
    """What aioquic and qh3 (an aioquic fork) implement alike over the same private state:
    written once, mixed into both backend classes ahead of their QuicConnection."""

    # The state these methods read, named as both libraries name it.
    _streams: Any
    _consumed: dict[int, int]
    _handshake_complete: bool
    _exporter_secret: tuple[str, bytes] | None
    _dropped: int
    _events: Any
    _crypto_buffers: Any
    _local_next_stream_id_bidi: int
    _local_next_stream_id_uni: int
    _remote_max_streams_bidi: int
    _remote_max_streams_uni: int
    _remote_max_datagram_frame_size: int | None
    _datagrams_pending: Any
    _loss: Any
    _host_cids: Any
    _state: Any
    _close_event: Any
    _close_pending: bool
    _close_at: float | None
    host_cid: bytes
    #: Whether the ConnectionTerminated event was handed out (it is, once, as early as known).
    _termination_reported = False
    #: The datagrams that carried our CONNECTION_CLOSE, kept to answer late packets with.
    _close_datagrams: tuple[bytes, ...] = ()

    # -- closing (RFC 9000 §10.2). Both libraries report the end only when the closing or
    # draining period is over, three PTOs later; until then the application would go on
    # writing to a connection that is gone. The end is reported as soon as it is known
    # instead, and the period is left to whoever routes packets (``closing_deadline``).

    @property
    def is_closing(self) -> bool:
        """Whether QUIC will send nothing more but CONNECTION_CLOSE: a close is pending, or
        the connection is closing, draining or over (the library's _close_event/_state)."""
        return self._close_event is not None or self._state.name in _END_STATE_NAMES

    @property
    def closing_deadline(self) -> float | None:
        """When the closing or draining period ends (three PTOs after the close was sent or
        received, as the library computes it in _close_at); None outside those periods."""
        if self._state.name in ("CLOSING", "DRAINING"):
            return self._close_at
        return None

    @property
    def close_datagrams(self) -> tuple[bytes, ...]:
        """The datagrams that carried our CONNECTION_CLOSE (empty before it was sent, and after
        a close by the peer: a draining endpoint sends nothing, RFC 9000 §10.2.2)."""
        return self._close_datagrams

    def _note_close_sent(self, was_pending: bool, datagrams: list[tuple[bytes, Any]]) -> None:
        """Keep the datagrams of the send that wrote the CONNECTION_CLOSE (RFC 9000 §10.2.1
        allows sending the same packet again to answer late ones)."""
        if was_pending and datagrams:
            self._close_datagrams = tuple(data for data, _ in datagrams)

    def _terminal_event(self, translated: QuicEvent | None) -> QuicEvent | None:
        """``translated`` unless it is the library's late ConnectionTerminated, already reported."""
        kind = type(translated)
        if kind is ConnectionTerminated:
            if self._termination_reported:
                return None
            self._termination_reported = True
        elif kind is HandshakeCompleted:
            self._shrink_tls_buffers()
        return translated

    def _shrink_tls_buffers(self) -> None:
        """Give back the TLS output buffers the handshake needed (three of 16 KiB each, held for
        the connection's life by both libraries): once it is complete the Initial and
        Handshake epochs take no more messages and 1-RTT at most a NewSessionTicket."""
        buffers = self._crypto_buffers
        for epoch, buffer in list(buffers.items()):
            if buffer.tell():  # not flushed to its crypto stream (never at this point): keep it
                continue
            capacity = POST_HANDSHAKE_TLS_BUFFER if epoch.name == "ONE_RTT" else SPENT_EPOCH_TLS_BUFFER
            buffers[epoch] = type(buffer)(capacity=capacity)

    def _early_termination(self) -> ConnectionTerminated | None:
        """The ConnectionTerminated to report now that the event queue is empty, when a close
        is known and was not reported yet (the library's _close_event says why)."""
        close = self._close_event
        if close is None or self._termination_reported:
            return None
        self._termination_reported = True
        return ConnectionTerminated(close.error_code, close.reason_phrase, close.reason_phrase == _IDLE_PHRASE,
                                    by_peer=self._state.name == "DRAINING")

    def is_stream_discarded(self, stream_id: int) -> bool:
        """Implemented by each backend: the libraries differ here."""
        raise NotImplementedError

    @property
    def handshake_complete(self) -> bool:
        """Whether the TLS handshake finished (the library's _handshake_complete)."""
        return bool(self._handshake_complete)

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """The TLS exporter's output (RFC 8446 §7.5); RuntimeError before the handshake."""
        if self._exporter_secret is None or not self._handshake_complete:
            raise RuntimeError("keying material can be exported once the TLS handshake is complete")
        return tls_exporter(*self._exporter_secret, label, context, length)

    def forget_stream(self, stream_id: int) -> None:
        """Drop the consumption record of a finished stream."""
        self._consumed.pop(stream_id, None)

    @property
    def consumed_records(self) -> int:
        """How many streams have a consumption record (for leak tests)."""
        return len(self._consumed)

    def send_acknowledged(self, stream_id: int) -> bool:
        """Whether everything sent on ``stream_id``, FIN or reset included, was acknowledged
        (True once aioquic discarded the stream, False for a stream still being written)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return self.is_stream_discarded(stream_id)
        return bool(stream.sender.is_finished)

    def has_stream(self, stream_id: int) -> bool:
        """Whether aioquic still holds state for ``stream_id``."""
        return stream_id in self._streams

    def stream_window(self, stream_id: int) -> int:
        """Receive credit the peer has left on ``stream_id`` (0 for unknown streams)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return max(0, int(stream.max_stream_data_local - stream.receiver.highest_offset))

    def next_stream_id(self, is_unidirectional: bool) -> int:
        """The id our next stream of this kind gets (without opening it)."""
        return self._local_next_stream_id_uni if is_unidirectional else self._local_next_stream_id_bidi

    def can_open_stream(self, is_unidirectional: bool) -> bool:
        """Whether the peer's MAX_STREAMS lets us open one more stream of this kind now."""
        limit = self._remote_max_streams_uni if is_unidirectional else self._remote_max_streams_bidi
        return self.next_stream_id(is_unidirectional) // 4 < limit

    @property
    def remote_max_datagram_frame_size(self) -> int:
        """The peer's max_datagram_frame_size transport parameter (0 before/without it)."""
        return self._remote_max_datagram_frame_size or 0

    @property
    def pending_datagrams(self) -> int:
        """Datagrams queued in aioquic and not yet put in a packet."""
        return len(self._datagrams_pending)

    @property
    def datagrams_dropped(self) -> int:
        """DATAGRAM frames sent in packets loss recovery declared lost (RFC 9221 §5.2: never
        resent); aioquic itself drops no queued datagram before sending it."""
        return int(self._dropped)

    def _on_datagram_delivery(self, delivery: Any, data: bytes) -> None:
        # By name: aioquic and qh3 each have their own QuicDeliveryState enum.
        if delivery.name != "ACKED":
            self._dropped += 1
            self._events.append(DatagramFrameLost(data))  # next_event passes it up

    def host_connection_ids(self) -> list[bytes]:
        """Every connection id of ours the peer may use now (for the endpoint's routing)."""
        return [self.host_cid, *(entry.cid for entry in self._host_cids)]

    def rtt(self) -> RttSample:
        """RTT and congestion state from aioquic's loss recovery."""
        loss = self._loss
        smoothed, minimum, latest = loss_rtt(loss)
        return RttSample(smoothed=smoothed, minimum=minimum, latest=latest, congestion_window=loss.congestion_window,
                         bytes_in_flight=loss.bytes_in_flight)

    def end_qlog(self) -> None:
        """Write this connection's qlog file now (a no-op without ``qlog_dir``)."""
        end_qlog_trace(self)


class AioquicConnection(AioquicFamilyMethods, QuicConnection):
    """aioquic's QuicConnection whose stream receive windows follow the application's reads."""

    backend = "aioquic"
    #: RESET_STREAM_AT (reliable reset) is not implemented by aioquic (docs/protocol.md).
    supports_reset_stream_at = False

    def __init__(self, *, configuration: QuicConfiguration,
                 original_destination_connection_id: bytes | None = None,
                 request_client_certificate: bool = False) -> None:
        super().__init__(configuration=configuration,
                         original_destination_connection_id=original_destination_connection_id)
        self._consumed: dict[int, int] = {}
        #: Streams read from since their credit was last checked: aioquic calls the credit
        #: hook for every stream in every packet it builds, and only these can need a grant.
        self._credit_dirty: set[int] = set()
        self._dropped = 0
        self._wants_client_certificate = request_client_certificate and not configuration.is_client
        self._exporter_secret: tuple[str, bytes] | None = None

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
        from aioquic.tls import Direction, Epoch

        if (self._exporter_secret is None and epoch == Epoch.ONE_RTT
                and (direction == Direction.DECRYPT) == self._is_client):
            schedule: Any = self.tls.key_schedule
            self._exporter_secret = exporter_secret_from_schedule(schedule, schedule.algorithm.name, secret)



    # -- events
    def next_event(self) -> QuicEvent | None:  # type: ignore[override]
        """The next backend-neutral event (aioquic's PING acks and ALPN events are skipped)."""
        queue = self._events  # aioquic's own event deque (QuicConnection._events)
        while queue:
            event = self._terminal_event(_translate_aioquic(queue.popleft()))
            if event is not None:
                return event
        return self._early_termination()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        """aioquic's datagrams; those carrying our CONNECTION_CLOSE are kept (``close_datagrams``)."""
        was_pending = self._close_pending
        datagrams = super().datagrams_to_send(now=now)
        self._note_close_sent(was_pending, datagrams)
        return datagrams

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


    def is_stream_discarded(self, stream_id: int) -> bool:
        """Whether the stream was opened and aioquic has since dropped its state; aioquic
        then drops late frames for it itself, so no event about it can follow."""
        discarded = getattr(self, "_stream_is_discarded", None)
        if discarded is not None:
            return bool(discarded(stream_id))
        # aioquic < 1.7 keeps the ids of the streams it discarded in _streams_finished.
        finished: set[int] = getattr(self, "_streams_finished", set())
        return stream_id in finished





    # -- datagrams

    @property
    def datagram_path_limit(self) -> int:
        """Room for one DATAGRAM frame in a packet of the configured size."""
        return self._max_datagram_size - PACKET_OVERHEAD



    def _write_datagram_frame(self, builder, data, frame_type) -> bool:  # type: ignore[no-untyped-def]
        # aioquic hook: every DATAGRAM frame is written here (RFC 9221 §4, type 0x31 with
        # length). Ours carries a delivery handler, so a packet declared lost counts its datagrams.
        length = len(data)
        buf = builder.start_frame(frame_type, capacity=1 + size_uint_var(length) + length,
                                  handler=self._on_datagram_delivery, handler_args=(data,))
        buf.push_uint_var(length)
        buf.push_bytes(data)
        if self._quic_logger is not None:  # aioquic's qlog trace, as its own writer does
            builder.quic_logger_frames.append(self._quic_logger.encode_datagram_frame(length=length))
        return True


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

    @property
    def peer_max_idle_timeout(self) -> float | None:
        """The peer's max_idle_timeout transport parameter in seconds (None before/without it)."""
        return self._remote_max_idle_timeout or None



    def missing_attributes(self) -> list[str]:
        """The entries of ``REQUIRED_ATTRIBUTES`` this connection lacks (empty when all exist)."""
        from aioquic.quic.stream import QuicStreamSender

        owners: dict[str, object] = {
            "QuicConnection": self,
            "QuicPacketRecovery": getattr(self, "_loss", None),
            "QuicStreamSender": QuicStreamSender(stream_id=0, writable=True),
            "tls.Context": getattr(self, "tls", None),
            "QuicFileLogger": _aioquic_qlog(tempfile.gettempdir()),
        }
        return [f"{owner}.{name}" for owner, name in REQUIRED_ATTRIBUTES
                if owners[owner] is None or not any(hasattr(owners[owner], one) for one in name.split("|"))]

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


def build_connection_refused(*, version: int, client_dcid: bytes, client_scid: bytes,
                             reason: str = "server busy") -> bytes | None:
    """A server Initial carrying CONNECTION_CLOSE(CONNECTION_REFUSED) for a client Initial
    the server will not serve (RFC 9000 §10.2.3, §20.1), so the client learns at once
    instead of waiting out its timeout. None for a version aioquic cannot build. The packet
    is the same whichever backend serves the other connections."""
    from aioquic.quic.crypto import CryptoPair
    from aioquic.quic.packet import QuicErrorCode, QuicPacketType, QuicProtocolVersion
    from aioquic.quic.packet_builder import QuicPacketBuilder

    if version not in (QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2):
        return None
    try:
        crypto = CryptoPair()
        # Initial keys come from the client's first destination connection id (RFC 9001 §5.2).
        crypto.setup_initial(cid=client_dcid, is_client=False, version=version)
        builder = QuicPacketBuilder(host_cid=os.urandom(8), peer_cid=client_scid, version=version, is_client=False,
                                    max_datagram_size=1200)
        builder.start_packet(QuicPacketType.INITIAL, crypto)
        phrase = reason.encode("utf-8")[:64]
        buf = builder.start_frame(QuicFrameType.TRANSPORT_CLOSE, capacity=1 + 3 * 8 + len(phrase))
        buf.push_uint_var(QuicErrorCode.CONNECTION_REFUSED)
        buf.push_uint_var(0)  # frame type: none in particular
        buf.push_uint_var(len(phrase))
        buf.push_bytes(phrase)
        datagrams, _ = builder.flush()
    except Exception:  # an unsupported version or a malformed id: drop silently instead
        return None
    return datagrams[0] if datagrams else None
