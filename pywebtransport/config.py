"""Client and server configuration: validated dataclasses with safe defaults.

Every limit the library enforces on peer input lives here, so it can be tuned in one
place. Invalid values raise :class:`~pywebtransport.exceptions.ConfigurationError` naming
the field and the value.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

from pywebtransport import __version__
from pywebtransport import constants as c
from pywebtransport._protocol.budget import (
    DEFAULT_CONNECTION_SEND_BUFFER,
    DEFAULT_SERVER_RECEIVE_BUFFER,
    DEFAULT_SERVER_SEND_BUFFER,
)
from pywebtransport._protocol.quic import congestion_control_algorithms, resolve_backend
from pywebtransport.exceptions import ConfigurationError

__all__ = ["CONGESTION_CONTROL_ALGORITHMS", "MAX_QUIC_DATAGRAM_SIZE", "VERIFY_CLIENT_MODES", "ClientConfig",
           "ServerConfig"]


#: Congestion controllers the installed aioquic offers.
CONGESTION_CONTROL_ALGORITHMS = congestion_control_algorithms()
#: What ``ServerConfig.verify_client`` accepts: ask for no client certificate, verify one if sent, require one.
VERIFY_CLIENT_MODES = ("none", "optional", "required")
#: The largest ``quic_max_datagram_size`` that works: aioquic and qh3 write the length of a
#: STREAM or CRYPTO frame as a 2-byte varint (at most 16383), and a packet that let a frame
#: grow past that broke the connection ("Unknown frame type" at the peer).
MAX_QUIC_DATAGRAM_SIZE = 16383
#: The QUIC MAX_STREAMS granted the peer of each kind, as aioquic grants on its own.
DEFAULT_QUIC_MAX_STREAMS = 128
#: RFC 9000 §4.6: a stream count cannot exceed 2**60.
_MAX_STREAM_COUNT = 1 << 60


@dataclass(kw_only=True, slots=True)
class _CommonConfig:
    """Fields shared by clients and servers.

    Timeouts (seconds, finite; NaN and infinity are refused): ``connect_timeout`` (handshake +
    session; a server also gives its decider, ``ServerApp`` middleware included, that long to
    decide on a session request, then rejects it with 503), ``read_timeout`` /
    ``write_timeout`` (stream reads / drain; None waits forever), ``stream_creation_timeout``
    (waiting for stream credit), ``close_timeout`` (how long a close lingers for finished
    streams and the close capsule to be acknowledged before it resets or closes anyway),
    ``idle_timeout`` (QUIC max idle), ``keep_alive_interval`` (PING; None disables).
    Limits on what a peer can make us hold: ``max_sessions`` (per connection),
    ``max_buffered_streams`` (early streams), ``stream_buffer_size`` (per-stream receive
    window, also the drain high-water mark), ``datagram_queue_size``/``datagram_queue_bytes``
    (received datagrams waiting to be read), ``max_frame_size``, ``max_header_block_size``,
    ``max_capsule_size``, ``max_incoming_streams_queue`` (streams not yet accepted).
    What we hold for the peer: ``max_connection_send_buffer`` bounds the bytes written on all
    session streams of a connection and not yet acknowledged; past it ``drain()`` and
    ``write_all()`` wait until an eighth of it is free (``write()`` still queues).
    Session flow control (draft-15 peers): ``initial_max_data``, ``initial_max_streams_bidi``,
    ``initial_max_streams_uni``, ``flow_control_auto_extend``.
    QUIC: ``congestion_control_algorithm``, ``max_datagram_frame_size`` (transport parameter;
    must be > 0 for datagrams), ``quic_max_datagram_size`` (UDP payload size),
    ``quic_max_streams_bidi``/``quic_max_streams_uni`` (how many streams of each kind the peer
    may have open at once, its QUIC MAX_STREAMS: 128; raise them for browser pages that open
    many streams together, as Chromium fails a stream beyond it instead of waiting),
    ``socket_buffer_size``, ``secrets_log_file`` (TLS keys for Wireshark), ``quic_log_dir``
    (an existing writable directory: one aioquic qlog file per connection is written there).
    ``debug=True`` logs every engine event of each connection at DEBUG on the
    ``pywebtransport.connection`` logger (frames, capsules and streams as they are processed).
    ``quic_backend``: "aioquic" (default) or "qh3" (the ``pywebtransport[qh3]`` extra); None
    reads ``PYWEBTRANSPORT_QUIC_BACKEND``, else aioquic. ``max_field_section_size``: the
    largest decoded header section accepted and advertised (RFC 9114 §4.2.2).
    ``session_idle_timeout``: close (code 0) an established session from which nothing arrived
    for that long; None (default) never does. Keep-alive PINGs keep QUIC's idle timer from
    firing, and Firefox keeps the session of a page that navigated away (docs/browsers.md).
    """

    connect_timeout: float = 10.0
    read_timeout: float | None = None
    write_timeout: float | None = None
    stream_creation_timeout: float = 10.0
    close_timeout: float = 5.0
    idle_timeout: float = 60.0
    keep_alive_interval: float | None = 15.0
    congestion_control_algorithm: str = "reno"
    max_datagram_frame_size: int = c.DEFAULT_MAX_DATAGRAM_FRAME_SIZE
    max_sessions: int = c.DEFAULT_MAX_SESSIONS
    initial_max_data: int = c.DEFAULT_SESSION_MAX_DATA
    initial_max_streams_bidi: int = c.DEFAULT_SESSION_MAX_STREAMS_BIDI
    initial_max_streams_uni: int = c.DEFAULT_SESSION_MAX_STREAMS_UNI
    flow_control_auto_extend: bool = True
    stream_buffer_size: int = 1 << 20
    max_buffered_streams: int = c.DEFAULT_BUFFERED_STREAMS
    datagram_queue_size: int = c.DEFAULT_DATAGRAM_QUEUE_SIZE
    datagram_queue_bytes: int = c.DEFAULT_DATAGRAM_QUEUE_BYTES
    max_frame_size: int = c.DEFAULT_MAX_FRAME_SIZE
    max_header_block_size: int = c.DEFAULT_MAX_HEADER_BLOCK_SIZE
    max_capsule_size: int = c.DEFAULT_MAX_CAPSULE_SIZE
    max_incoming_streams_queue: int = 1000
    quic_max_datagram_size: int = 1350
    quic_max_streams_bidi: int = DEFAULT_QUIC_MAX_STREAMS
    quic_max_streams_uni: int = DEFAULT_QUIC_MAX_STREAMS
    socket_buffer_size: int = 4 << 20
    secrets_log_file: str | None = None
    quic_log_dir: str | None = None
    debug: bool = False
    quic_backend: str | None = None
    max_field_section_size: int = c.DEFAULT_MAX_FIELD_SECTION_SIZE
    session_idle_timeout: float | None = None
    max_connection_send_buffer: int = DEFAULT_CONNECTION_SEND_BUFFER

    def __post_init__(self) -> None:
        self._validate()

    def _fail(self, name: str, rule: str, value: object) -> ConfigurationError:
        return ConfigurationError(f"{type(self).__name__}.{name} {rule}, got {value!r}")

    def _validate(self) -> None:
        self._validate_common()

    def _validate_common(self) -> None:
        if self.quic_log_dir is not None and not (os.path.isdir(self.quic_log_dir)
                                                  and os.access(self.quic_log_dir, os.W_OK)):
            raise self._fail("quic_log_dir", "must name an existing writable directory", self.quic_log_dir)
        # NaN compares false with everything and infinity overflows QUIC's idle timeout and
        # timer arithmetic: a timeout is a finite number (None, where allowed, waits forever).
        for name in ("connect_timeout", "stream_creation_timeout", "close_timeout", "idle_timeout"):
            value = getattr(self, name)
            if not _is_seconds(value) or value <= 0:
                raise self._fail(name, "must be a finite number > 0", value)
        for name in ("read_timeout", "write_timeout", "keep_alive_interval", "session_idle_timeout"):
            value = getattr(self, name)
            if value is not None and (not _is_seconds(value) or value <= 0):
                raise self._fail(name, "must be None or a finite number > 0", value)
        for name in ("max_sessions", "stream_buffer_size", "datagram_queue_size", "datagram_queue_bytes",
                     "max_frame_size", "max_header_block_size", "max_capsule_size", "max_incoming_streams_queue",
                     "socket_buffer_size", "max_field_section_size", "max_connection_send_buffer"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise self._fail(name, "must be an int >= 1", value)
        for name in ("initial_max_data", "initial_max_streams_bidi", "initial_max_streams_uni",
                     "max_buffered_streams", "max_datagram_frame_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= c.VARINT_MAX:
                raise self._fail(name, "must be an int in [0, 2**62-1]", value)
        if not 1200 <= self.quic_max_datagram_size <= MAX_QUIC_DATAGRAM_SIZE:
            raise self._fail("quic_max_datagram_size",
                             f"must be in [1200, {MAX_QUIC_DATAGRAM_SIZE}]: RFC 9000 §14 allows up to 65527, but both "
                             "QUIC libraries write a frame's length in 2 bytes, which hold at most 16383",
                             self.quic_max_datagram_size)
        for name, least in (("quic_max_streams_bidi", 1), ("quic_max_streams_uni", 3)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= _MAX_STREAM_COUNT:
                raise self._fail(name, f"must be an int in [{least}, 2**60] (the peer's HTTP/3 control and QPACK "
                                       "streams are 3 unidirectional ones)", value)
        if self.quic_backend is not None:
            try:
                resolve_backend(self.quic_backend)
            except (ImportError, ValueError) as exc:
                raise self._fail("quic_backend", f"must name an installed backend ({exc})",
                                 self.quic_backend) from None
        if self.congestion_control_algorithm not in CONGESTION_CONTROL_ALGORITHMS:
            raise self._fail("congestion_control_algorithm", f"must be one of {list(CONGESTION_CONTROL_ALGORITHMS)}",
                             self.congestion_control_algorithm)

    def replace(self, **changes: Any) -> Any:
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(kw_only=True, slots=True)
class ClientConfig(_CommonConfig):
    """Client options. TLS is verified by default (``verify_mode=True``) against the system
    roots or ``ca_certs``; ``server_certificate_hashes`` pins SHA-256 hashes of the leaf
    certificate's DER instead, as browsers' ``serverCertificateHashes`` do;
    ``verify_mode=False`` disables verification (development on loopback only).
    ``headers`` are added to every CONNECT; ``origin`` sets the ``origin`` header.
    ``max_retries``/``retry_delay`` retry a failed handshake. ``certfile``/``keyfile`` (PEM,
    given together) are the client certificate sent when a server asks for one (mTLS)."""

    verify_mode: bool = True
    ca_certs: str | None = None
    server_certificate_hashes: list[bytes] | None = None
    user_agent: str = f"pywebtransport/{__version__}"
    headers: dict[str, str] = field(default_factory=dict)
    origin: str | None = None
    max_retries: int = 0
    retry_delay: float = 1.0
    certfile: str | None = None
    keyfile: str | None = None

    def _validate(self) -> None:
        self._validate_common()
        if self.ca_certs is not None and not os.path.exists(self.ca_certs):
            raise self._fail("ca_certs", "must name an existing file", self.ca_certs)
        if self.server_certificate_hashes is not None:
            for digest in self.server_certificate_hashes:
                if not isinstance(digest, bytes) or len(digest) != 32:
                    raise self._fail("server_certificate_hashes", "must hold 32-byte SHA-256 digests", digest)
        if (self.certfile is None) != (self.keyfile is None):
            raise self._fail("certfile/keyfile", "must be given together", (self.certfile, self.keyfile))
        for name in ("certfile", "keyfile"):
            value = getattr(self, name)
            if value is not None and not os.path.exists(value):
                raise self._fail(name, "must name an existing file", value)
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise self._fail("max_retries", "must be an int >= 0", self.max_retries)
        if not _is_seconds(self.retry_delay) or self.retry_delay < 0:
            raise self._fail("retry_delay", "must be a finite number >= 0", self.retry_delay)
        for name, value in self.headers.items():
            if not name or name.startswith(":") or not isinstance(value, str):
                raise self._fail("headers", "must map plain header names to str values", {name: value})


@dataclass(kw_only=True, slots=True)
class ServerConfig(_CommonConfig):
    """Server options: where to listen (port 0 picks a free port), the certificate and key
    (PEM files; see ``pywebtransport.utils.generate_self_signed_cert``), how many connections
    to accept (``max_connections``; ``max_concurrent_handshakes`` in progress at once, more are
    refused at once with CONNECTION_REFUSED), which origins may connect (None: any; checked
    by every server, draft-15 §3.2), and the status for unknown paths. ``reuse_port`` sets
    SO_REUSEPORT on the UDP socket (Linux), so that several worker processes can share one
    port, the kernel spreading clients over them by address (``ServerApp.run(workers=N)``).

    Client certificates (mTLS): ``verify_client`` is ``"none"`` (default: none is asked for),
    ``"optional"`` (asked for; one that is sent must verify against ``ca_certs``) or
    ``"required"`` (a client without a valid one fails the handshake). The chain is checked
    against the CA certificates in ``ca_certs`` (PEM) as a TLS client certificate (its
    extended key usage must allow client authentication; it needs a subjectAltName and an
    authority key identifier).
    The aioquic backend only: qh3 1.x servers cannot ask for a certificate.

    Budgets over all connections together: ``max_server_send_buffer`` (bytes written on
    session streams and not yet acknowledged; writers wait in ``drain()`` / ``write_all()``
    once it is spent) and ``max_server_receive_buffer`` (bytes held for peers in streams that
    arrived before their session and in incomplete request headers; once it is spent a new
    early stream is refused with WT_BUFFERED_STREAM_REJECTED, draft-15 §4.6, and a request
    whose headers do not fit with H3_REQUEST_REJECTED).

    ``pre_session_grace``: at ``max_connections``, a connection that has carried no session
    for this many seconds (since it was accepted or its last session ended) may be closed
    (CONNECTION_CLOSE, H3_NO_ERROR) to admit a new client."""

    host: str = "127.0.0.1"
    port: int = 4433
    certfile: str | None = None
    keyfile: str | None = None
    max_connections: int = 1000
    max_concurrent_handshakes: int = 64
    allowed_origins: list[str] | None = None
    reject_status_for_unknown_path: int = 404
    ca_certs: str | None = None
    verify_client: str = "none"
    reuse_port: bool = False
    max_server_send_buffer: int = DEFAULT_SERVER_SEND_BUFFER
    max_server_receive_buffer: int = DEFAULT_SERVER_RECEIVE_BUFFER
    pre_session_grace: float = 3.0

    def _validate(self) -> None:
        self._validate_common()
        if not isinstance(self.reuse_port, bool):
            raise self._fail("reuse_port", "must be a bool", self.reuse_port)
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise self._fail("port", "must be in [0, 65535]", self.port)
        if (self.certfile is None) != (self.keyfile is None):
            raise self._fail("certfile/keyfile", "must be given together", (self.certfile, self.keyfile))
        for name in ("certfile", "keyfile", "ca_certs"):
            value = getattr(self, name)
            if value is not None and not os.path.exists(value):
                raise self._fail(name, "must name an existing file", value)
        if self.verify_client not in VERIFY_CLIENT_MODES:
            raise self._fail("verify_client", f"must be one of {list(VERIFY_CLIENT_MODES)}", self.verify_client)
        if self.verify_client != "none" and self.ca_certs is None:
            raise self._fail("ca_certs", f"must name the CA file when verify_client is {self.verify_client!r}",
                             self.ca_certs)
        for name in ("max_connections", "max_concurrent_handshakes", "max_server_send_buffer",
                     "max_server_receive_buffer"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise self._fail(name, "must be an int >= 1", value)
        grace = self.pre_session_grace
        if not _is_seconds(grace) or grace < 0:
            raise self._fail("pre_session_grace", "must be a finite number of seconds >= 0", grace)
        if not 400 <= self.reject_status_for_unknown_path <= 599:
            raise self._fail("reject_status_for_unknown_path", "must be a 4xx or 5xx status",
                             self.reject_status_for_unknown_path)


def _is_seconds(value: object) -> bool:
    """Whether ``value`` is a finite int or float (not a bool): a number of seconds."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
