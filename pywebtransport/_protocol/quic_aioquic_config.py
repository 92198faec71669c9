"""aioquic's configuration from ``QuicSettings``, and the congestion control names it knows.

Certificate files are parsed once per file version (a server builds one configuration per
connection); ``qlog_dir`` gets aioquic's directory logger (``quic_qlog``).
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

from aioquic.quic.configuration import QuicConfiguration

from pywebtransport._protocol.quic import DEFAULT_BACKEND, QuicSettings, file_version
from pywebtransport._protocol.quic_qlog import _aioquic_qlog

__all__ = ["aioquic_configuration", "congestion_control_algorithms"]


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


def congestion_control_algorithms(backend: str = DEFAULT_BACKEND) -> tuple[str, ...]:
    """Names ``backend`` accepts as ``congestion_control_algorithm`` (qh3 has CUBIC only)."""
    if backend == "qh3":
        return ("cubic",)
    from aioquic.quic.congestion import base

    # aioquic keeps its registry in the private module dict ``base._factories``.
    names = tuple(sorted(getattr(base, "_factories", {})))
    return names or ("reno",)
