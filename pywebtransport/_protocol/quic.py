"""The one place that knows aioquic's internals: what the engine needs beyond its public API.

aioquic grants stream credit when data *arrives* (doubling the window each time), so a
slow reader cannot hold a fast writer back and memory grows without bound. Here stream
credit is granted as the application *consumes* data instead, which makes QUIC stream flow
control real backpressure. Everything else the library reads of aioquic's private state
(send buffers, stream discard, connection ids, the peer certificate, RTT, congestion
control names) is read here too, each access commented with the attribute it needs, so an
aioquic upgrade breaks exactly one module: ``REQUIRED_ATTRIBUTES`` is checked by a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicFrameType
from cryptography import x509

__all__ = [
    "PACKET_OVERHEAD",
    "REQUIRED_ATTRIBUTES",
    "BackpressuredQuicConnection",
    "RttSample",
    "build_connection_refused",
    "congestion_control_algorithms",
    "missing_attributes",
]

#: Bytes a 1-RTT packet spends outside its frames in the worst case: first byte,
#: a 20-byte destination connection id, a 4-byte packet number and the 16-byte AEAD tag.
PACKET_OVERHEAD = 1 + 20 + 4 + 16

_MAX_STREAM_DATA_FRAME_CAPACITY = 1 + 8 + 8

#: Private aioquic names this module relies on, as (owner, attribute). A test builds a real
#: connection and fails loudly, naming the attribute, when an aioquic release drops one.
REQUIRED_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("QuicConnection", "_streams"),
    ("QuicConnection", "_stream_is_discarded"),
    ("QuicConnection", "_local_next_stream_id_bidi"),
    ("QuicConnection", "_local_next_stream_id_uni"),
    ("QuicConnection", "_remote_max_streams_bidi"),
    ("QuicConnection", "_remote_max_streams_uni"),
    ("QuicConnection", "_remote_max_datagram_frame_size"),
    ("QuicConnection", "_max_datagram_size"),
    ("QuicConnection", "_datagrams_pending"),
    ("QuicConnection", "_host_cids"),
    ("QuicConnection", "_loss"),
    ("QuicConnection", "_configuration"),
    ("QuicConnection", "_on_max_stream_data_delivery"),
    ("QuicConnection", "_write_stream_limits"),
    ("QuicPacketRecovery", "_rtt_smoothed"),
    ("QuicPacketRecovery", "_rtt_min"),
    ("QuicPacketRecovery", "_rtt_latest"),
    ("QuicStreamSender", "_buffer_start"),
    ("QuicStreamSender", "_buffer_stop"),
    ("tls.Context", "_peer_certificate"),
)


@dataclass(frozen=True, slots=True)
class RttSample:
    """Round-trip times in seconds as QUIC's loss recovery sees them (0.0 before a sample)."""

    smoothed: float
    minimum: float
    latest: float
    congestion_window: int
    bytes_in_flight: int


def congestion_control_algorithms() -> tuple[str, ...]:
    """Names aioquic accepts as ``congestion_control_algorithm``."""
    from aioquic.quic.congestion import base

    # aioquic keeps its registry in the private module dict ``base._factories``.
    names = tuple(sorted(getattr(base, "_factories", {})))
    return names or ("reno",)


class BackpressuredQuicConnection(QuicConnection):
    """A QuicConnection whose stream receive windows follow the application's reads."""

    def __init__(self, *, configuration: QuicConfiguration,
                 original_destination_connection_id: bytes | None = None) -> None:
        super().__init__(configuration=configuration,
                         original_destination_connection_id=original_destination_connection_id)
        self._consumed: dict[int, int] = {}

    # -- read-driven stream credit
    def consume_stream_data(self, stream_id: int, amount: int) -> None:
        """The application has read ``amount`` more bytes of ``stream_id``."""
        if amount > 0:
            self._consumed[stream_id] = self._consumed.get(stream_id, 0) + amount

    def forget_stream(self, stream_id: int) -> None:
        """Drop the consumption record of a finished stream."""
        self._consumed.pop(stream_id, None)

    @property
    def consumed_records(self) -> int:
        """How many streams have a consumption record (for leak tests)."""
        return len(self._consumed)

    # -- streams
    def send_buffered(self, stream_id: int) -> int:
        """Bytes written to ``stream_id`` that the peer has not acknowledged yet."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        sender = stream.sender
        # QuicStreamSender keeps unacknowledged bytes between _buffer_start and _buffer_stop.
        return sender._buffer_stop - sender._buffer_start

    def send_acknowledged(self, stream_id: int) -> bool:
        """Whether everything sent on ``stream_id``, FIN or reset included, was acknowledged
        (True once aioquic discarded the stream, False for a stream still being written)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return self.is_stream_discarded(stream_id)
        return bool(stream.sender.is_finished)

    def is_stream_discarded(self, stream_id: int) -> bool:
        """Whether the stream was opened and aioquic has since dropped its state; aioquic
        then drops late frames for it itself, so no event about it can follow."""
        return bool(self._stream_is_discarded(stream_id))

    def has_stream(self, stream_id: int) -> bool:
        """Whether aioquic still holds state for ``stream_id``."""
        return stream_id in self._streams

    def stream_window(self, stream_id: int) -> int:
        """Receive credit the peer has left on ``stream_id`` (0 for unknown streams)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return max(0, stream.max_stream_data_local - stream.receiver.highest_offset)

    def next_stream_id(self, is_unidirectional: bool) -> int:
        """The id our next stream of this kind gets (without opening it)."""
        return self._local_next_stream_id_uni if is_unidirectional else self._local_next_stream_id_bidi

    def can_open_stream(self, is_unidirectional: bool) -> bool:
        """Whether the peer's MAX_STREAMS lets us open one more stream of this kind now."""
        limit = self._remote_max_streams_uni if is_unidirectional else self._remote_max_streams_bidi
        return self.next_stream_id(is_unidirectional) // 4 < limit

    # -- datagrams
    @property
    def remote_max_datagram_frame_size(self) -> int:
        """The peer's max_datagram_frame_size transport parameter (0 before/without it)."""
        return self._remote_max_datagram_frame_size or 0

    @property
    def datagram_path_limit(self) -> int:
        """Room for one DATAGRAM frame in a packet of the configured size."""
        return self._max_datagram_size - PACKET_OVERHEAD

    @property
    def pending_datagrams(self) -> int:
        """Datagrams queued in aioquic and not yet put in a packet."""
        return len(self._datagrams_pending)

    # -- connection facts
    def host_connection_ids(self) -> list[bytes]:
        """Every connection id of ours the peer may use now (for the endpoint's routing)."""
        return [self.host_cid, *(entry.cid for entry in self._host_cids)]

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's leaf certificate once TLS has seen it."""
        # tls.Context keeps it in _peer_certificate; aioquic has no public accessor.
        tls = getattr(self, "tls", None)  # created by connect() or the first datagram
        certificate = getattr(tls, "_peer_certificate", None)
        return certificate if isinstance(certificate, x509.Certificate) else None

    def rtt(self) -> RttSample:
        """RTT and congestion state from aioquic's loss recovery."""
        loss = self._loss
        minimum = loss._rtt_min
        return RttSample(smoothed=loss._rtt_smoothed, minimum=0.0 if minimum == float("inf") else minimum,
                         latest=loss._rtt_latest, congestion_window=loss.congestion_window,
                         bytes_in_flight=loss.bytes_in_flight)

    # aioquic hook: called for every stream when a packet is built.
    def _write_stream_limits(self, builder, space, stream) -> None:  # type: ignore[no-untyped-def]
        if not stream.max_stream_data_local:
            return
        window = self._configuration.max_stream_data
        wanted = self._consumed.get(stream.stream_id, 0) + window
        # Grant more once half of the window has been consumed (RFC 9000 §4.2 advice).
        if wanted - stream.max_stream_data_local >= window // 2:
            stream.max_stream_data_local = wanted
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            buf = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=_MAX_STREAM_DATA_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            buf.push_uint_var(stream.stream_id)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local


def missing_attributes(connection: QuicConnection) -> list[str]:
    """The entries of ``REQUIRED_ATTRIBUTES`` a live connection lacks (empty when all exist)."""
    from aioquic.quic.stream import QuicStreamSender

    owners: dict[str, object] = {
        "QuicConnection": connection,
        "QuicPacketRecovery": getattr(connection, "_loss", None),
        "QuicStreamSender": QuicStreamSender(stream_id=0, writable=True),
        "tls.Context": connection.tls,
    }
    return [f"{owner}.{name}" for owner, name in REQUIRED_ATTRIBUTES
            if owners[owner] is None or not hasattr(owners[owner], name)]


def build_connection_refused(*, version: int, client_dcid: bytes, client_scid: bytes,
                             reason: str = "server busy") -> bytes | None:
    """A server Initial carrying CONNECTION_CLOSE(CONNECTION_REFUSED) for a client Initial
    the server will not serve (RFC 9000 §10.2.3, §20.1), so the client learns at once
    instead of waiting out its timeout. None for a version aioquic cannot build."""
    import os

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
