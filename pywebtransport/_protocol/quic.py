"""The QUIC seam: everything the engine and the endpoint need from a QUIC implementation.

Two cores sit behind it, chosen by name: ``"aioquic"`` (the default, implemented in this
module) and ``"qh3"`` (an aioquic-derived QUIC with a native crypto core, optional extra
``pywebtransport[qh3]``, implemented in ``quic_qh3.py``). ``create_quic_connection`` builds
either from plain values; ``PYWEBTRANSPORT_QUIC_BACKEND`` picks the default for tests. The
engine sees only ``QuicCore`` and the backend-neutral events below, never a backend's
classes.

aioquic grants stream credit when data *arrives* (doubling the window each time), so a
slow reader cannot hold a fast writer back and memory grows without bound. Here stream
credit is granted as the application *consumes* data instead, which makes QUIC stream flow
control real backpressure. Everything else the library reads of aioquic's private state
(send buffers, stream discard, connection ids, the peer certificate, RTT, congestion
control names) is read here too, each access commented with the attribute it needs, so an
aioquic upgrade breaks exactly one module: ``REQUIRED_ATTRIBUTES`` is checked by a test.
DATAGRAM frames in packets declared lost are counted (``datagrams_dropped``) and reported
as ``DatagramFrameLost`` events on both backends.

TLS extras, on both backends: the TLS 1.3 exporter (RFC 8446 §7.5) is computed here from the
exporter master secret, captured from the backend's key schedule at the moment it derives
the server's application traffic secret (same secret, same transcript: ClientHello up to
the server's Finished). A server asks for a client certificate when
``request_client_certificate`` is set (aioquic only: qh3 1.x has no server-side
CertificateRequest); the chain is verified by the caller after the handshake. Neither
backend implements RESET_STREAM_AT (``supports_reset_stream_at`` is False).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import importlib.util
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO, TypeAlias

from aioquic.buffer import size_uint_var
from aioquic.quic import events as aq_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicFrameType
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "DEFAULT_BACKEND",
    "PACKET_OVERHEAD",
    "REQUIRED_ATTRIBUTES",
    "TLS_ALERT_BAD_CERTIFICATE",
    "TLS_ALERT_CERTIFICATE_REQUIRED",
    "AioquicConnection",
    "BackpressuredQuicConnection",
    "ConnectionIdIssued",
    "ConnectionIdRetired",
    "ConnectionTerminated",
    "DatagramFrameLost",
    "DatagramFrameReceived",
    "HandshakeCompleted",
    "QuicCore",
    "QuicEvent",
    "QuicSettings",
    "RttSample",
    "StopSendingReceived",
    "StreamDataReceived",
    "StreamReset",
    "aioquic_configuration",
    "available_backends",
    "build_connection_refused",
    "close_with_tls_alert",
    "congestion_control_algorithms",
    "create_quic_connection",
    "end_qlog_trace",
    "exporter_secret_from_schedule",
    "file_version",
    "missing_attributes",
    "qlog_directory_logger",
    "resolve_backend",
    "tls_exporter",
    "verify_client_certificate",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the QUIC backend used when a configuration does not (tests).
BACKEND_ENV = "PYWEBTRANSPORT_QUIC_BACKEND"
DEFAULT_BACKEND = "aioquic"
#: Every backend the seam knows, default first; ``available_backends`` says which are installed.
BACKENDS: tuple[str, ...] = ("aioquic", "qh3")

#: Bytes a 1-RTT packet spends outside its frames in the worst case: first byte,
#: a 20-byte destination connection id, a 4-byte packet number and the 16-byte AEAD tag.
PACKET_OVERHEAD = 1 + 20 + 4 + 16

_MAX_STREAM_DATA_FRAME_CAPACITY = 1 + 8 + 8

#: TLS alerts (RFC 8446 §6.2) a server sends when a client certificate fails its checks.
TLS_ALERT_BAD_CERTIFICATE = 42
TLS_ALERT_CERTIFICATE_REQUIRED = 116
#: QUIC carries a TLS alert as CRYPTO_ERROR 0x100 + alert, closing with a transport
#: CONNECTION_CLOSE whose frame type is CRYPTO (RFC 9001 §4.8, RFC 9000 §20.1).
_CRYPTO_ERROR_BASE = 0x100
_CRYPTO_FRAME_TYPE = 0x06


# ---------------------------------------------------------------------------- neutral events


@dataclass(frozen=True, slots=True)
class StreamDataReceived:
    """Bytes arrived on a stream (``end_stream``: the peer's FIN came with them)."""

    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(frozen=True, slots=True)
class DatagramFrameReceived:
    """A QUIC DATAGRAM frame arrived (RFC 9221)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class DatagramFrameLost:
    """A DATAGRAM frame we sent went out in a packet loss recovery declared lost; it is never
    resent (RFC 9221 §5.2). ``data`` is the frame's payload as it was queued."""

    data: bytes


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer reset its sending side of a stream (RESET_STREAM)."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class StopSendingReceived:
    """The peer asked us to stop sending on a stream (STOP_SENDING)."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """The TLS handshake finished; ``alpn_protocol`` is what ALPN negotiated."""

    alpn_protocol: str | None


@dataclass(frozen=True, slots=True)
class ConnectionIdIssued:
    """We issued a new connection id the peer may address us by."""

    connection_id: bytes


@dataclass(frozen=True, slots=True)
class ConnectionIdRetired:
    """A connection id of ours was retired and must no longer route to this connection."""

    connection_id: bytes


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """The connection ended; ``idle_timeout`` is True when QUIC's idle timer ended it."""

    error_code: int
    reason_phrase: str
    idle_timeout: bool = False


QuicEvent: TypeAlias = (StreamDataReceived | DatagramFrameReceived | DatagramFrameLost | StreamReset
                        | StopSendingReceived | HandshakeCompleted | ConnectionIdIssued | ConnectionIdRetired
                        | ConnectionTerminated)


@dataclass(frozen=True, slots=True)
class RttSample:
    """Round-trip times in seconds as QUIC's loss recovery sees them (0.0 before a sample)."""

    smoothed: float
    minimum: float
    latest: float
    congestion_window: int
    bytes_in_flight: int


# ---------------------------------------------------------------------------- the seam


class _Configuration(Protocol):
    @property
    def is_client(self) -> bool: ...


class QuicCore(Protocol):
    """What the engine, the connection and the endpoint use of a QUIC connection."""

    @property
    def configuration(self) -> _Configuration: ...
    @property
    def host_cid(self) -> bytes: ...
    @property
    def original_destination_connection_id(self) -> bytes: ...

    # driving (sans-I/O: time comes in as ``now``)
    def connect(self, addr: Any, now: float) -> None: ...
    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_event(self) -> QuicEvent | None: ...
    def close(self, error_code: int = ..., frame_type: int | None = None, reason_phrase: str = "") -> None: ...
    def send_ping(self, uid: int) -> None: ...

    # streams
    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int: ...
    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None: ...
    def reset_stream(self, stream_id: int, error_code: int) -> None: ...
    def stop_stream(self, stream_id: int, error_code: int) -> None: ...
    def consume_stream_data(self, stream_id: int, amount: int) -> None: ...
    def forget_stream(self, stream_id: int) -> None: ...
    def send_buffered(self, stream_id: int) -> int: ...
    def send_acknowledged(self, stream_id: int) -> bool: ...
    def is_stream_discarded(self, stream_id: int) -> bool: ...
    def has_stream(self, stream_id: int) -> bool: ...
    def stream_window(self, stream_id: int) -> int: ...
    def next_stream_id(self, is_unidirectional: bool) -> int: ...
    def can_open_stream(self, is_unidirectional: bool) -> bool: ...
    @property
    def consumed_records(self) -> int: ...

    # datagrams
    def send_datagram_frame(self, data: bytes) -> None: ...
    @property
    def remote_max_datagram_frame_size(self) -> int: ...
    @property
    def datagram_path_limit(self) -> int: ...
    @property
    def pending_datagrams(self) -> int: ...
    @property
    def datagrams_dropped(self) -> int: ...

    # connection facts
    @property
    def backend(self) -> str: ...
    def host_connection_ids(self) -> list[bytes]: ...
    @property
    def peer_certificate(self) -> x509.Certificate | None: ...
    @property
    def peer_certificate_der(self) -> bytes | None: ...
    @property
    def peer_certificate_chain(self) -> tuple[x509.Certificate, ...]: ...
    @property
    def peer_max_idle_timeout(self) -> float | None: ...
    @property
    def handshake_complete(self) -> bool: ...
    @property
    def supports_reset_stream_at(self) -> bool: ...
    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes: ...
    def rtt(self) -> RttSample: ...
    def missing_attributes(self) -> list[str]: ...
    def end_qlog(self) -> None: ...


# ---------------------------------------------------------------------------- choosing and building


def available_backends() -> tuple[str, ...]:
    """The backends importable here, default first."""
    return tuple(name for name in BACKENDS if name == DEFAULT_BACKEND or importlib.util.find_spec(name) is not None)


def resolve_backend(backend: str | None = None) -> str:
    """The backend to use: ``backend`` if given, else ``$PYWEBTRANSPORT_QUIC_BACKEND``, else aioquic.

    ValueError for a name the seam does not know; ImportError when it is not installed.
    """
    name = backend or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if name not in BACKENDS:
        raise ValueError(f"unknown QUIC backend {name!r}; known: {', '.join(BACKENDS)}")
    if name not in available_backends():
        raise ImportError(f"QUIC backend {name!r} is not installed (pip install 'pywebtransport[{name}]')")
    return name


@dataclass(frozen=True, slots=True)
class QuicSettings:
    """Everything a backend needs to build a QUIC connection, as plain values.

    A server builds this once and calls ``create_connection`` for every client Initial.
    Certificates are given as files (``certfile``/``keyfile``, PEM) or as ``cryptography``
    objects (``certificate``, ``private_key``, ``certificate_chain``). ``qlog_dir`` writes
    one qlog file per connection with the backend's own logger; ``quic_logger`` (a logger of
    the backend's own classes) is passed through untouched instead when given.
    """

    is_client: bool
    backend: str = DEFAULT_BACKEND
    alpn_protocols: tuple[str, ...] = ("h3",)
    server_name: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    certificate: x509.Certificate | None = None
    private_key: Any = None
    certificate_chain: tuple[x509.Certificate, ...] = ()
    verify_peer: bool = True
    cafile: str | None = None
    max_datagram_frame_size: int | None = 65536
    max_datagram_size: int = 1200
    idle_timeout: float = 60.0
    congestion_control_algorithm: str = "reno"
    secrets_log: TextIO | None = None
    qlog_dir: str | None = None  # one qlog file per connection in this directory
    quic_logger: Any = None
    max_stream_data: int = 1 << 20
    max_data: int = 1 << 24
    request_client_certificate: bool = False  # server: send a CertificateRequest (aioquic only)
    extra: dict[str, Any] = field(default_factory=dict)  # backend configuration fields set as-is

    def validate(self) -> None:
        """Build the backend's configuration once now, so that unusable certificate or CA files
        fail at startup (OSError, ValueError) rather than at the first connection."""
        if self.backend == "qh3":
            from pywebtransport._protocol import quic_qh3

            quic_qh3.qh3_configuration(self)
        else:
            aioquic_configuration(self)

    def create_connection(self, *, original_destination_connection_id: bytes | None = None) -> QuicCore:
        """A new connection of this backend with these settings."""
        if self.backend == "qh3":
            from pywebtransport._protocol import quic_qh3

            return quic_qh3.create(self, original_destination_connection_id)
        if self.backend != "aioquic":
            raise ValueError(f"unknown QUIC backend {self.backend!r}; known: {', '.join(BACKENDS)}")
        return AioquicConnection(configuration=aioquic_configuration(self),
                                 original_destination_connection_id=original_destination_connection_id,
                                 request_client_certificate=self.request_client_certificate)


def create_quic_connection(backend: str | None = None, *, is_client: bool,
                           original_destination_connection_id: bytes | None = None, **settings: Any) -> QuicCore:
    """Build a QUIC connection of ``backend`` (None: ``$PYWEBTRANSPORT_QUIC_BACKEND`` or aioquic)
    from plain values; ``settings`` are the fields of :class:`QuicSettings`."""
    quic_settings = QuicSettings(is_client=is_client, backend=resolve_backend(backend), **settings)
    return quic_settings.create_connection(original_destination_connection_id=original_destination_connection_id)


@functools.lru_cache(maxsize=16)
def _aioquic_chain(certfile: str, keyfile: str | None, mtime: float) -> tuple[Any, list[Any], Any]:
    """Certificate, chain and key of a PEM pair, parsed once per file version (a server
    builds one configuration per connection)."""
    probe = QuicConfiguration()
    probe.load_cert_chain(certfile, keyfile)
    return probe.certificate, list(probe.certificate_chain), probe.private_key


def file_version(path: str) -> float:
    """The modification time of ``path`` (part of certificate cache keys: a renewed file is reread)."""
    return os.stat(path).st_mtime


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


# ---------------------------------------------------------------------------- TLS exporter


def _hkdf_expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1) over HKDF-Expand (RFC 5869 §2.3)."""
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full_label)]) + full_label + bytes([len(context)]) + context
    output, block = b"", b""
    counter = 1
    while len(output) < length:
        block = hmac.new(secret, block + info + bytes([counter]), hash_name).digest()
        output += block
        counter += 1
    return output[:length]


def tls_exporter(hash_name: str, exporter_master_secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """TLS-Exporter(label, context, length) of RFC 8446 §7.5 from the exporter master secret
    of a handshake whose cipher suite hashes with ``hash_name`` ("sha256", "sha384")."""
    if not 0 <= length <= 255 * hashlib.new(hash_name).digest_size:
        raise ValueError(f"an exporter cannot give {length} bytes")
    if len(label) > 249:  # the HKDF label is at most 255 bytes, "tls13 " included
        raise ValueError("an exporter label is at most 249 bytes")
    empty = hashlib.new(hash_name).digest()
    # Derive-Secret(exporter_master_secret, label, "") hashes the empty transcript.
    derived = _hkdf_expand_label(hash_name, exporter_master_secret, label, empty, len(empty))
    return _hkdf_expand_label(hash_name, derived, b"exporter", hashlib.new(hash_name, context).digest(), length)


def close_with_tls_alert(connection: QuicCore, alert: int, reason: str) -> int:
    """Close ``connection`` with the TLS ``alert`` as CRYPTO_ERROR; returns the error code."""
    code = _CRYPTO_ERROR_BASE + alert
    connection.close(error_code=code, frame_type=_CRYPTO_FRAME_TYPE, reason_phrase=reason)
    return code


@functools.lru_cache(maxsize=8)
def _ca_store(cafile: str, mtime: float) -> Any:
    """The trust store of a PEM file of CA certificates, parsed once per file version."""
    from cryptography.x509.verification import Store

    with open(cafile, "rb") as pem:
        return Store(x509.load_pem_x509_certificates(pem.read()))


def verify_client_certificate(leaf: x509.Certificate, intermediates: tuple[x509.Certificate, ...],
                              cafile: str, *, now: datetime.datetime | None = None) -> str | None:
    """Why ``leaf`` (with the ``intermediates`` the client sent) is not a valid TLS client
    certificate chaining to a CA of ``cafile``, or None when it is (RFC 5280 path validation,
    with the client-authentication extended key usage, as ``cryptography`` checks it)."""
    from cryptography.x509.verification import PolicyBuilder, VerificationError

    try:
        store = _ca_store(cafile, file_version(cafile))
    except (OSError, ValueError) as exc:
        return f"cannot read CA file {cafile!r}: {exc}"
    verifier = PolicyBuilder().store(store).time(now or datetime.datetime.now(datetime.timezone.utc)) \
        .build_client_verifier()
    try:
        verifier.verify(leaf, list(intermediates))
    except VerificationError as exc:
        detail = str(exc)
        if "candidates exhausted" in detail:  # no path to any CA of the store
            return f"not issued by a CA in {os.path.basename(cafile)} ({detail})"
        return detail
    return None


def exporter_secret_from_schedule(schedule: Any, hash_name: str, server_traffic_secret: bytes
                                  ) -> tuple[str, bytes] | None:
    """(hash name, exporter master secret) from a backend's TLS key schedule at the moment it
    derived the server's application traffic secret, or None when the schedule does not
    reproduce ``server_traffic_secret`` (then the moment is not the one RFC 8446 §7.1 names)."""
    if schedule.derive_secret(b"s ap traffic") != server_traffic_secret:
        return None
    return hash_name, bytes(schedule.derive_secret(b"exp master"))


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
    # Both backends keep the connection's trace in QuicConnection._quic_logger.
    trace, logger = connection._quic_logger, connection._configuration.quic_logger
    if trace is not None and logger is not None and type(logger).__name__ == "QlogDirectoryLogger":
        logger.end_trace(trace)


# ---------------------------------------------------------------------------- aioquic

#: Private aioquic names this module relies on, as (owner, attribute). A test builds a real
#: connection and fails loudly, naming the attribute, when an aioquic release drops one.
REQUIRED_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("QuicConnection", "_events"),
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
)

#: aioquic's ConnectionTerminated phrase when its idle timer (not the peer) ended the connection.
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
    _local_next_stream_id_bidi: int
    _local_next_stream_id_uni: int
    _remote_max_streams_bidi: int
    _remote_max_streams_uni: int
    _remote_max_datagram_frame_size: int | None
    _datagrams_pending: Any
    _loss: Any
    _host_cids: Any
    host_cid: bytes

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
        minimum = loss._rtt_min
        return RttSample(smoothed=loss._rtt_smoothed, minimum=0.0 if minimum == float("inf") else minimum,
                         latest=loss._rtt_latest, congestion_window=loss.congestion_window,
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
        self._dropped = 0
        self._wants_client_certificate = request_client_certificate and not configuration.is_client
        self._exporter_secret: tuple[str, bytes] | None = None

    # -- TLS
    def _initialize(self, peer_cid: bytes) -> None:
        # aioquic hook: creates the tls.Context. Its server sends a CertificateRequest only
        # when the private _request_client_certificate flag is set.
        super()._initialize(peer_cid)
        if self._wants_client_certificate:
            self.tls._request_client_certificate = True

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
            event = _translate_aioquic(queue.popleft())
            if event is not None:
                return event
        return None

    # -- read-driven stream credit
    def consume_stream_data(self, stream_id: int, amount: int) -> None:
        """The application has read ``amount`` more bytes of ``stream_id`` (ignored once the
        stream received everything: no credit is needed then, and no record may linger)."""
        stream = self._streams.get(stream_id)
        if amount > 0 and stream is not None and not stream.receiver.is_finished:
            self._consumed[stream_id] = self._consumed.get(stream_id, 0) + amount



    # -- streams
    def send_buffered(self, stream_id: int) -> int:
        """Bytes written to ``stream_id`` that the peer has not acknowledged yet."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        sender = stream.sender
        # QuicStreamSender keeps unacknowledged bytes between _buffer_start and _buffer_stop.
        return int(sender._buffer_stop - sender._buffer_start)


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
