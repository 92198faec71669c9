"""The QUIC seam: everything the engine and the endpoint need from a QUIC implementation.

Two cores sit behind it, chosen by name: ``"aioquic"`` (the default, ``quic_aioquic.py``)
and ``"qh3"`` (an aioquic-derived QUIC with a native crypto core, optional extra
``pywebtransport[qh3]``, ``quic_qh3.py``). ``create_quic_connection`` builds either from
plain values; ``PYWEBTRANSPORT_QUIC_BACKEND`` picks the default for tests. The engine sees
only ``QuicCore`` and the backend-neutral events below, never a backend's classes. The TLS
extras both backends share (exporter, client-certificate checks) are in ``quic_tls.py``.
The backends' own parts are named for what they hold: ``quic_family.py`` (what aioquic and
qh3 implement alike), ``quic_aioquic_config.py`` and ``quic_qh3_config.py`` (building each
library's configuration), ``quic_qh3_credit.py`` and ``quic_qh3_fin.py`` (qh3's read-driven
stream credit and FIN-aware sender), ``quic_qlog.py`` (qlog files) and ``quic_refusal.py``
(the CONNECTION_REFUSED reply). Every public name of the aioquic side stays importable from here.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO, TypeAlias

from cryptography import x509

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "DEFAULT_BACKEND",
    "PACKET_OVERHEAD",
    "REQUIRED_ATTRIBUTES",
    "TLS_ALERT_BAD_CERTIFICATE",
    "TLS_ALERT_CERTIFICATE_REQUIRED",
    "AioquicConnection",
    "AioquicFamilyMethods",
    "BackpressuredQuicConnection",
    "ConnectionIdIssued",
    "ConnectionIdRetired",
    "ConnectionTerminated",
    "DatagramFrameLost",
    "DatagramFrameReceived",
    "HandshakeCompleted",
    "ProtocolNegotiated",
    "QuicCore",
    "QuicEvent",
    "QuicSettings",
    "RttSample",
    "StopSendingReceived",
    "StreamDataReceived",
    "StreamOffsets",
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

from pywebtransport._protocol.quic_tls import (
    TLS_ALERT_BAD_CERTIFICATE,
    TLS_ALERT_CERTIFICATE_REQUIRED,
    check_certificate_key_pair,
    close_with_tls_alert,
    exporter_secret_from_schedule,
    file_version,
    tls_exporter,
    verify_client_certificate,
)

logger = logging.getLogger(__name__)

#: Environment variable naming the QUIC backend used when a configuration does not (tests).
BACKEND_ENV = "PYWEBTRANSPORT_QUIC_BACKEND"
DEFAULT_BACKEND = "aioquic"
#: Every backend the seam knows, default first; ``available_backends`` says which are installed.
BACKENDS: tuple[str, ...] = ("aioquic", "qh3")

#: Bytes a 1-RTT packet spends outside its frames in the worst case: first byte,
#: a 20-byte destination connection id, a 4-byte packet number and the 16-byte AEAD tag.
PACKET_OVERHEAD = 1 + 20 + 4 + 16


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
class ProtocolNegotiated:
    """ALPN chose ``alpn_protocol``. On a server this comes while its first handshake flight
    is built, with the 1-RTT keys to send at 0.5-RTT (RFC 9001 §4.1.1) already there."""

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
    """The connection ended; ``idle_timeout`` is True when QUIC's idle timer ended it.

    Reported once, as soon as QUIC knows: when a close is pending or our CONNECTION_CLOSE
    went out, and when the peer's arrived (``by_peer``), not three PTOs later when the
    closing or draining period (RFC 9000 §10.2) ends; the backend keeps those periods.
    """

    error_code: int
    reason_phrase: str
    idle_timeout: bool = False
    by_peer: bool = False
    #: The close carried an application (HTTP/3) code: a CONNECTION_CLOSE of type 0x1d. Else
    #: ``error_code`` is a QUIC transport code, TLS alerts (0x100-0x1ff) among them (RFC 9000
    #: §20.1), whose range HTTP/3's codes share.
    application: bool = False


QuicEvent: TypeAlias = (StreamDataReceived | DatagramFrameReceived | DatagramFrameLost | StreamReset
                        | StopSendingReceived | HandshakeCompleted | ProtocolNegotiated | ConnectionIdIssued
                        | ConnectionIdRetired | ConnectionTerminated)


@dataclass(frozen=True, slots=True)
class RttSample:
    """Round-trip times in seconds as QUIC's loss recovery sees them (0.0 before a sample)."""

    smoothed: float
    minimum: float
    latest: float
    congestion_window: int
    bytes_in_flight: int


@dataclass(frozen=True, slots=True)
class StreamOffsets:
    """Where one QUIC stream stands in both directions, as stream offsets (RFC 9000 §2.2).

    What session flow control needs to charge a reset stream's final size (RFC 9000 §4.5,
    draft-15 §5.4): a RESET_STREAM's final size is the highest offset its sender put in a
    STREAM frame, which can lie beyond what the receiver was handed and short of what the
    sender's application wrote.
    """

    #: Received bytes QUIC handed out in order (StreamDataReceived), counted from offset 0.
    delivered: int
    #: The peer's final size once its sending side is over (a RESET_STREAM arrived, or every
    #: byte up to its FIN did); None before, and for a stream the peer cannot send on.
    final_size: int | None
    #: Bytes we wrote to the stream.
    written: int
    #: The highest offset we put in a STREAM frame: the final size of a RESET_STREAM from us.
    sent: int


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

    # closing (RFC 9000 §10.2)
    @property
    def is_closing(self) -> bool: ...
    @property
    def close_pending(self) -> bool: ...
    @property
    def closing_deadline(self) -> float | None: ...
    @property
    def ack_pending(self) -> bool: ...
    ack_with_data: bool
    @property
    def close_datagrams(self) -> tuple[bytes, ...]: ...

    # streams
    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int: ...
    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None: ...
    def reset_stream(self, stream_id: int, error_code: int) -> None: ...
    def stop_stream(self, stream_id: int, error_code: int) -> None: ...
    def consume_stream_data(self, stream_id: int, amount: int) -> None: ...
    def set_held_probe(self, probe: Callable[[], int]) -> None: ...
    def forget_stream(self, stream_id: int) -> None: ...
    def send_buffered(self, stream_id: int) -> int: ...
    def send_acknowledged(self, stream_id: int) -> bool: ...
    def is_stream_discarded(self, stream_id: int) -> bool: ...
    def has_stream(self, stream_id: int) -> bool: ...
    def stream_window(self, stream_id: int) -> int: ...
    def stream_offsets(self, stream_id: int) -> StreamOffsets | None: ...
    def peer_address(self) -> Any | None: ...
    def has_accepted_packet(self) -> bool: ...
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
    @property
    def requests_client_certificate(self) -> bool: ...
    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes: ...
    def rtt(self) -> RttSample: ...
    def missing_attributes(self) -> list[str]: ...
    def end_qlog(self) -> None: ...


# ---------------------------------------------------------------------------- choosing and building


def available_backends() -> tuple[str, ...]:
    """The backends importable here, default first.

    A backend already imported is available without a look at the file system: every
    connection resolves its backend, and ``find_spec`` costs several ``stat`` calls.
    """
    return tuple(name for name in BACKENDS if name == DEFAULT_BACKEND or _importable(name))


def _importable(name: str) -> bool:
    """Whether the top-level module ``name`` is imported already or can be found."""
    return sys.modules.get(name) is not None or importlib.util.find_spec(name) is not None


def resolve_backend(backend: str | None = None) -> str:
    """The backend to use: ``backend`` if given, else ``$PYWEBTRANSPORT_QUIC_BACKEND``, else aioquic.

    ValueError for a name the seam does not know; ImportError when it is not installed.
    """
    name = backend or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if name not in BACKENDS:
        raise ValueError(f"unknown QUIC backend {name!r}; known: {', '.join(BACKENDS)}")
    if name != DEFAULT_BACKEND and not _importable(name):  # only the one asked for is looked up
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
    #: The connection ids the peer may give us (RFC 9000 §18.2, at least 2). Each costs both
    #: ends a NEW_CONNECTION_ID, a routing entry and its state; one spare is all a client
    #: needs to migrate (it gets a new one for each it retires), and a server never does.
    #: Both libraries advertise 8 on their own.
    active_connection_id_limit: int = 2
    #: The MAX_STREAMS granted the peer of each kind at first (raised as its streams finish).
    max_streams_bidi: int = 128
    max_streams_uni: int = 128
    extra: dict[str, Any] = field(default_factory=dict)  # backend configuration fields set as-is

    def validate(self) -> None:
        """Build the backend's configuration once now, so that unusable certificate or CA files
        fail at startup (OSError, ValueError) rather than at the first connection."""
        if self.certfile:
            check_certificate_key_pair(self.certfile, self.keyfile)
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
                                 request_client_certificate=self.request_client_certificate,
                                 active_connection_id_limit=self.active_connection_id_limit,
                                 max_streams=(self.max_streams_bidi, self.max_streams_uni))


def create_quic_connection(backend: str | None = None, *, is_client: bool,
                           original_destination_connection_id: bytes | None = None, **settings: Any) -> QuicCore:
    """Build a QUIC connection of ``backend`` (None: ``$PYWEBTRANSPORT_QUIC_BACKEND`` or aioquic)
    from plain values; ``settings`` are the fields of :class:`QuicSettings`."""
    quic_settings = QuicSettings(is_client=is_client, backend=resolve_backend(backend), **settings)
    return quic_settings.create_connection(original_destination_connection_id=original_destination_connection_id)


# ---------------------------------------------------------------------------- private state
# The only reads of aioquic's and qh3's private state on objects other than a backend's own
# connection (``self``), each naming the attribute and why; REQUIRED_ATTRIBUTES and
# ``missing_attributes`` guard them.


def loss_rtt(loss: Any) -> tuple[float, float, float]:
    """(smoothed, minimum, latest) RTT of a QuicPacketRecovery: both libraries keep them in
    _rtt_smoothed/_rtt_min/_rtt_latest and expose none publicly. Minimum is 0.0 before a sample."""
    minimum = loss._rtt_min
    return loss._rtt_smoothed, 0.0 if minimum == float("inf") else minimum, loss._rtt_latest


def sender_unacknowledged(sender: Any) -> int:
    """Bytes an aioquic QuicStreamSender holds unacknowledged: between _buffer_start and
    _buffer_stop (no public accessor)."""
    return int(sender._buffer_stop - sender._buffer_start)


def receiver_final_size(receiver: Any) -> int | None:
    """A QuicStreamReceiver's _final_size (aioquic and qh3 alike): the peer's final size once
    its RESET_STREAM or FIN came, else None. No public accessor; aioquic 1.7 also raises
    ``highest_offset`` to a reset's final size, but 1.3 (the newest on Python 3.10) does not."""
    final: int | None = receiver._final_size
    return final


def sender_written(sender: Any) -> int:
    """Bytes written to an aioquic QuicStreamSender: its _buffer_stop (no public accessor; it
    stays put after a reset, whose final size is the public ``highest_offset`` instead)."""
    return int(sender._buffer_stop)


def sender_pending(sender: Any) -> list[tuple[int, int]]:
    """The byte ranges a qh3 native stream sender still has to send (new or lost)."""
    return list(sender._pending)


def sender_unsent(sender: Any) -> int:
    """Bytes a qh3 stream sender still has to send (new or lost): its _pending ranges."""
    total = 0
    for start, stop in sender._pending:  # a loop, not sum() over a generator: no frame per range
        total += stop - start
    return total


def request_client_certificate(tls: Any) -> None:
    """Make an aioquic tls.Context (server) send a CertificateRequest: it does only when the
    private _request_client_certificate flag is set."""
    tls._request_client_certificate = True


def qlog_trace_and_logger(connection: Any) -> tuple[Any, Any]:
    """A connection's qlog trace and its configuration's logger: both libraries keep them in
    QuicConnection._quic_logger and _configuration.quic_logger."""
    return connection._quic_logger, connection._configuration.quic_logger


# The aioquic backend and the parts both backends share, importable from the seam as before
# (imported last: they build on the events and the protocol above; import them through this module).
from pywebtransport._protocol.quic_aioquic import (  # noqa: E402
    REQUIRED_ATTRIBUTES,
    AioquicConnection,
    BackpressuredQuicConnection,
    missing_attributes,
)
from pywebtransport._protocol.quic_aioquic_config import (  # noqa: E402
    aioquic_configuration,
    congestion_control_algorithms,
)
from pywebtransport._protocol.quic_family import AioquicFamilyMethods  # noqa: E402
from pywebtransport._protocol.quic_qlog import end_qlog_trace, qlog_directory_logger  # noqa: E402
from pywebtransport._protocol.quic_refusal import build_connection_refused  # noqa: E402
