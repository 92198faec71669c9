"""TLS extras both QUIC backends share: the TLS 1.3 exporter (RFC 8446 §7.5, used for
WebTransport keying material, draft-15 §4.8) and checks of a client's certificate (mTLS).

The exporter master secret is captured from the backend's key schedule at the moment it
derives the server's application traffic secret (same secret, same transcript: ClientHello
up to the server's Finished); the exporter itself is computed here.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

if TYPE_CHECKING:
    from pywebtransport._protocol.quic import QuicCore

logger = logging.getLogger(__name__)

__all__ = ["TLS_ALERT_BAD_CERTIFICATE", "TLS_ALERT_CERTIFICATE_REQUIRED", "check_certificate_key_pair",
           "close_with_tls_alert", "exporter_secret_from_schedule", "file_version", "tls_exporter",
           "verify_client_certificate"]

#: TLS alerts (RFC 8446 §6.2) a server sends when a client certificate fails its checks.
TLS_ALERT_BAD_CERTIFICATE = 42
TLS_ALERT_CERTIFICATE_REQUIRED = 116
#: QUIC carries a TLS alert as CRYPTO_ERROR 0x100 + alert, closing with a transport
#: CONNECTION_CLOSE whose frame type is CRYPTO (RFC 9001 §4.8, RFC 9000 §20.1).
_CRYPTO_ERROR_BASE = 0x100
_CRYPTO_FRAME_TYPE = 0x06


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

def file_version(path: str) -> float:
    """The modification time of ``path`` (part of certificate cache keys: a renewed file is reread)."""
    return os.stat(path).st_mtime


def check_certificate_key_pair(certfile: str, keyfile: str | None) -> None:
    """ValueError naming the files unless ``keyfile`` (``certfile`` when None) holds a PEM
    private key whose public key is that of ``certfile``'s first certificate.

    Both libraries load a key that does not belong to the certificate without a word, and
    every handshake then fails (the client sees a bad signature); qh3 also ends a key file
    with no key in it by a Rust panic, which no ``except Exception`` catches. OSError for a
    file that cannot be read. A pair that passed is not parsed again until a file changes:
    a client with a certificate checks it at every connect, as the backends' cached loaders."""
    _check_pair(certfile, keyfile, file_version(certfile), file_version(keyfile) if keyfile is not None else 0.0)


@functools.lru_cache(maxsize=16)
def _check_pair(certfile: str, keyfile: str | None, cert_version: float, key_version: float) -> None:
    from cryptography.hazmat.primitives import serialization

    cert_data = Path(certfile).read_bytes()
    key_data = cert_data if keyfile is None else Path(keyfile).read_bytes()
    try:
        certificate = x509.load_pem_x509_certificates(cert_data)[0]
    except ValueError as exc:
        raise ValueError(f"no PEM certificate in {certfile!r}: {exc}") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: an encrypted key (no password is taken)
        raise ValueError(f"no usable PEM private key in {keyfile or certfile!r}: {exc}") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise ValueError(f"the private key in {keyfile or certfile!r} does not belong to the certificate in "
                         f"{certfile!r}: every TLS handshake would fail")
