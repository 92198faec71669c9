"""Certificates browsers accept, URL parsing and small helpers."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pywebtransport.exceptions import ClientError, ConfigurationError
from pywebtransport.types import Data

__all__ = [
    "SelfSignedCertificate",
    "certificate_sha256",
    "ensure_bytes",
    "format_duration",
    "generate_self_signed_cert",
    "load_certificate_hash",
    "parse_webtransport_url",
]

#: Browsers accept a certificate by hash only if it is valid for at most 14 days.
MAX_HASH_PINNED_VALIDITY_DAYS = 14


@dataclass(frozen=True, slots=True)
class SelfSignedCertificate:
    """A certificate and key in PEM, where they were written, and the leaf's SHA-256."""

    cert_pem: bytes
    key_pem: bytes
    cert_path: Path | None
    key_path: Path | None
    sha256: bytes
    spki_sha256: bytes

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()

    @property
    def sha256_colon(self) -> str:
        return ":".join(f"{b:02X}" for b in self.sha256)

    @property
    def spki_sha256_base64(self) -> str:
        """For Chromium's ``--ignore-certificate-errors-spki-list``."""
        return base64.b64encode(self.spki_sha256).decode()

    def js_hash_array(self) -> str:
        """The hash as a JavaScript ``new Uint8Array([...])`` literal."""
        return "new Uint8Array([" + ", ".join(str(b) for b in self.sha256) + "])"

    def browser_snippet(self, url: str) -> str:
        """JavaScript that opens a WebTransport session to ``url`` trusting this certificate."""
        return (f'const transport = new WebTransport("{url}", {{\n'
                f'  serverCertificateHashes: [{{algorithm: "sha-256", value: {self.js_hash_array()}}}],\n'
                f"}});\nawait transport.ready;")


def generate_self_signed_cert(hostname: str = "localhost", *, output_dir: str | Path | None = None,
                              validity_days: int = 10,
                              ip_addresses: tuple[str, ...] = ("127.0.0.1", "::1")) -> SelfSignedCertificate:
    """An ECDSA P-256 certificate that browsers accept through ``serverCertificateHashes``.

    Its validity (notAfter - notBefore, the one-hour backdating included) is ``validity_days``;
    browsers refuse more than 14 days, so more is a ConfigurationError. With ``output_dir``,
    ``cert.pem`` and ``key.pem`` are written there.
    """
    if not 1 <= validity_days <= MAX_HASH_PINNED_VALIDITY_DAYS:
        raise ConfigurationError(f"validity_days must be in [1, {MAX_HASH_PINNED_VALIDITY_DAYS}] for browsers "
                                 f"to accept the certificate hash, got {validity_days}")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    not_before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        alt_names.append(x509.DNSName("localhost"))
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + datetime.timedelta(days=validity_days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    cert_path = key_path = None
    if output_dir is not None:
        directory = Path(output_dir)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"{directory} exists and is not a directory: cert.pem and key.pem go in one")
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / "cert.pem", directory / "key.pem"
        cert_path.write_bytes(cert_pem)
        _write_owner_only(key_path, key_pem)
    return SelfSignedCertificate(cert_pem=cert_pem, key_pem=key_pem, cert_path=cert_path, key_path=key_path,
                                 sha256=certificate_sha256(cert_pem), spki_sha256=hashlib.sha256(spki).digest())


def _write_owner_only(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only, whatever was there: a new file
    made with mode 0600 is renamed over it (writing into an existing key.pem kept its mode,
    0644 say, and a link there would have been followed)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def certificate_sha256(certificate: bytes) -> bytes:
    """SHA-256 of a certificate's DER encoding (given PEM or DER), as browsers pin it."""
    if certificate.lstrip().startswith(b"-----BEGIN"):
        certificate = x509.load_pem_x509_certificate(certificate).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(certificate).digest()


def load_certificate_hash(path: str | Path) -> bytes:
    """The browser-style SHA-256 of the certificate in a PEM or DER file; ValueError naming
    the file when it holds none (a key given for the certificate, say)."""
    try:
        return certificate_sha256(Path(path).read_bytes())
    except ValueError as exc:
        raise ValueError(f"no certificate in {str(path)!r}: {exc}") from None


def parse_webtransport_url(url: str) -> tuple[str, int, str]:
    """``https://host:port/path?query`` -> (host, port, path with query). Port defaults to 443."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ClientError(f"invalid WebTransport URL {url!r}: {exc}") from exc
    if parts.scheme != "https":
        raise ClientError(f"WebTransport URLs use https://, got {url!r}")
    if not parts.hostname:
        raise ClientError(f"WebTransport URL {url!r} has no host")
    if port == 0:  # a server's ServerConfig(port=0) in a URL, not its local_address: no such port
        raise ClientError(f"invalid WebTransport URL {url!r}: port 0 is no port to connect to")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return parts.hostname, 443 if port is None else port, path


def ensure_bytes(data: Data) -> bytes:
    """Bytes of ``data``; ``str`` is encoded as UTF-8."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, bytearray, memoryview or str, got {type(data).__name__}")


def format_duration(seconds: float) -> str:
    """Human-readable duration: ``850us``, ``12.3ms``, ``4.56s``, ``2m03s``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"
