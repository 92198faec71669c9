"""What a connection is built from: the engine's limits and the QUIC settings, from a
client or server configuration (used by ``WebTransportClient`` and ``WebTransportServer``).
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography import x509

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol.quic import QuicSettings, resolve_backend
from pywebtransport._protocol.quic_tls import file_version
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import CertificateError, ConfigurationError

__all__ = ["build_quic_configuration", "engine_config"]


def engine_config(config: ClientConfig | ServerConfig) -> EngineConfig:
    """The engine's limits, taken from a client or server configuration."""
    return EngineConfig(
        max_sessions=config.max_sessions,
        max_frame_size=config.max_frame_size,
        max_header_block_size=config.max_header_block_size,
        max_capsule_size=config.max_capsule_size,
        max_buffered_streams=config.max_buffered_streams,
        max_buffered_stream_bytes=config.stream_buffer_size,
        initial_max_data=config.initial_max_data,
        initial_max_streams_bidi=config.initial_max_streams_bidi,
        initial_max_streams_uni=config.initial_max_streams_uni,
        flow_control_auto_extend=config.flow_control_auto_extend,
        max_field_section_size=config.max_field_section_size,
        session_idle_timeout=config.session_idle_timeout,
        max_send_buffer=config.max_connection_send_buffer,
        # The peer's SETTINGS and a request's headers belong to connecting: a loaded server
        # given a longer connect_timeout must not drop connections at a fixed 10 s.
        settings_timeout=config.connect_timeout,
        request_timeout=config.connect_timeout,
    )


@functools.lru_cache(maxsize=16)
def _ca_certificate_count(path: str, version: float) -> int:
    """How many PEM certificates ``path`` holds (read once per file version); ValueError for none.

    The QUIC libraries read a CA file only during a handshake: aioquic raised from inside it
    and qh3 reported an empty CA store, neither naming the file.
    """
    with open(path, "rb") as source:
        return len(x509.load_pem_x509_certificates(source.read()))


def _check_ca_file(path: str) -> None:
    try:
        _ca_certificate_count(path, file_version(path))
    except OSError as exc:
        raise CertificateError(f"cannot load CA file {path!r}: {exc}") from exc
    except ValueError as exc:
        raise CertificateError(f"cannot load CA file {path!r}: it holds no PEM certificate") from exc


def build_quic_configuration(config: ClientConfig | ServerConfig, *, server_name: str | None = None
                             ) -> QuicSettings:
    """The QUIC settings for HTTP/3 with datagrams, from ours, for the configured backend
    (``quic_backend``, else ``PYWEBTRANSPORT_QUIC_BACKEND``, else aioquic)."""
    try:
        backend = resolve_backend(config.quic_backend)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(f"quic_backend: {exc}") from exc
    secrets = open(config.secrets_log_file, "a") if config.secrets_log_file else None  # noqa: SIM115 - lives with it
    common: dict[str, Any] = {
        "backend": backend, "alpn_protocols": (c.ALPN_H3,), "max_datagram_frame_size": config.max_datagram_frame_size,
        "idle_timeout": config.idle_timeout, "congestion_control_algorithm": config.congestion_control_algorithm,
        "max_datagram_size": config.quic_max_datagram_size, "max_stream_data": config.stream_buffer_size,
        "max_data": max(config.stream_buffer_size * 16, config.initial_max_data), "secrets_log": secrets,
        "qlog_dir": config.quic_log_dir, "max_streams_bidi": config.quic_max_streams_bidi,
        "max_streams_uni": config.quic_max_streams_uni,
    }
    if isinstance(config, ClientConfig):
        # Pinning by hash (as browsers' serverCertificateHashes) is checked after the handshake
        # by the connection; the backend's chain verification is off for it.
        verify = bool(config.verify_mode) and not config.server_certificate_hashes
        # certfile/keyfile: the client certificate, sent when the server asks for one (mTLS).
        ca_file = config.ca_certs if verify else None
        settings = QuicSettings(is_client=True, server_name=server_name, verify_peer=verify,
                                cafile=ca_file, certfile=config.certfile,
                                keyfile=config.keyfile, **common)
    else:
        if not config.certfile or not config.keyfile:
            raise CertificateError("ServerConfig needs certfile and keyfile (see pywebtransport.utils."
                                   "generate_self_signed_cert)")
        wants_client_certificate = config.verify_client != "none"
        if wants_client_certificate and backend != "aioquic":
            raise ConfigurationError(f"verify_client={config.verify_client!r} needs the aioquic backend: {backend} "
                                     "servers cannot ask for a client certificate")
        # The client's chain is verified against ca_certs by the connection after the handshake.
        ca_file = config.ca_certs if wants_client_certificate else None
        settings = QuicSettings(is_client=False, certfile=config.certfile, keyfile=config.keyfile,
                                request_client_certificate=wants_client_certificate, **common)
    # The CA file the backend (client) or the connection (server, verify_client) reads later.
    if ca_file:
        _check_ca_file(ca_file)
    if settings.is_client and not (settings.cafile or settings.certfile):
        return settings  # no file to load: nothing to check (a client builds these per connect)
    try:
        settings.validate()
    except (OSError, ValueError) as exc:
        target = f"certificate {config.certfile!r} / key {config.keyfile!r}" if isinstance(config, ServerConfig) \
            else f"CA file {config.ca_certs!r} / client certificate {config.certfile!r}"
        raise CertificateError(f"cannot load {target}: {exc}") from exc
    return settings
