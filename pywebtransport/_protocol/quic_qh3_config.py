"""qh3's configuration from ``QuicSettings`` (``cryptography`` objects converted to qh3's).

Certificate files are parsed once per file version; ``qlog_dir`` gets qh3's directory logger
(``quic_qlog``). qh3 1.x servers send no CertificateRequest, so a configuration asking for
a client certificate is refused here.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from qh3.quic.configuration import QuicConfiguration
from qh3.tls import load_pem_private_key, load_pem_x509_certificates

from pywebtransport._protocol.quic import QuicSettings, file_version
from pywebtransport._protocol.quic_qlog import _qh3_qlog

__all__ = ["qh3_configuration"]


@functools.lru_cache(maxsize=16)
def _chain_from_files(certfile: str, keyfile: str | None, mtime: float) -> tuple[Any, list[Any], Any]:
    """qh3's certificate, chain and key of a PEM pair, parsed once per file version."""
    probe = QuicConfiguration()
    try:
        probe.load_cert_chain(certfile, keyfile)
    except OSError:
        raise
    except Exception as exc:  # qh3 raises IndexError, among others, for a file with no certificate in it
        raise ValueError(f"no usable PEM certificate and key in {certfile!r} / {keyfile!r}: {exc!r}") from exc
    return probe.certificate, list(probe.certificate_chain), probe.private_key


def qh3_configuration(settings: QuicSettings) -> QuicConfiguration:
    """qh3's configuration for ``settings`` (objects from ``cryptography`` are converted).

    ValueError for ``request_client_certificate``: qh3 1.x servers cannot ask for one.
    """
    if settings.request_client_certificate and not settings.is_client:
        raise ValueError("the qh3 backend cannot request client certificates (qh3 1.x servers send no "
                         "CertificateRequest); use quic_backend='aioquic' for verify_client")
    qc = QuicConfiguration(
        is_client=settings.is_client,
        alpn_protocols=list(settings.alpn_protocols),
        max_datagram_frame_size=settings.max_datagram_frame_size,
        idle_timeout=settings.idle_timeout,
        max_datagram_size=settings.max_datagram_size,
        probe_datagram_size=False,
        max_stream_data=settings.max_stream_data,
        max_data=settings.max_data,
        active_connection_id_limit=settings.active_connection_id_limit,
        server_name=settings.server_name,
        quic_logger=settings.quic_logger or (_qh3_qlog(settings.qlog_dir) if settings.qlog_dir else None),
    )
    if settings.secrets_log is not None:
        qc.secrets_log_file = settings.secrets_log
    if not settings.verify_peer:
        import ssl

        qc.verify_mode = ssl.CERT_NONE
    if settings.cafile:
        qc.load_verify_locations(cafile=settings.cafile)
    if settings.certfile:
        qc.certificate, qc.certificate_chain, qc.private_key = _chain_from_files(
            settings.certfile, settings.keyfile, file_version(settings.certfile))
    if settings.certificate is not None:
        pem = b"".join(c.public_bytes(Encoding.PEM) for c in (settings.certificate, *settings.certificate_chain))
        certificates = load_pem_x509_certificates(pem)
        qc.certificate, qc.certificate_chain = certificates[0], certificates[1:]
    if settings.private_key is not None:
        qc.private_key = load_pem_private_key(settings.private_key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    for name, value in settings.extra.items():
        setattr(qc, name, value)
    return qc
