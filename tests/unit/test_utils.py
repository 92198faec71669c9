"""Certificates browsers accept, URL parsing and helpers."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pywebtransport.exceptions import ClientError, ConfigurationError
from pywebtransport.utils import (
    certificate_sha256,
    ensure_bytes,
    format_duration,
    generate_self_signed_cert,
    load_certificate_hash,
    parse_webtransport_url,
)


def test_generated_certificate_meets_the_browser_rules(tmp_path: Path) -> None:
    generated = generate_self_signed_cert("example.test", output_dir=tmp_path)
    certificate = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    key = certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity.total_seconds() <= 14 * 86400  # backdating included
    der = certificate.public_bytes(Encoding.DER)
    assert generated.sha256 == hashlib.sha256(der).digest()
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"example.test", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert generated.spki_sha256_base64 == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert load_certificate_hash(tmp_path / "cert.pem") == generated.sha256
    assert certificate_sha256(der) == generated.sha256
    assert (tmp_path / "key.pem").stat().st_mode & 0o077 == 0  # the key is private to its owner


def test_certificate_helpers_render_for_browsers() -> None:
    generated = generate_self_signed_cert()
    assert generated.cert_path is None and generated.key_path is None
    assert len(generated.sha256_hex) == 64 and generated.sha256_colon.count(":") == 31
    assert generated.js_hash_array().startswith("new Uint8Array([")
    snippet = generated.browser_snippet("https://127.0.0.1:4433/x")
    assert 'serverCertificateHashes: [{algorithm: "sha-256"' in snippet and "https://127.0.0.1:4433/x" in snippet


@pytest.mark.parametrize("days", [0, 15, 30])
def test_validity_browsers_refuse_is_rejected(days: int) -> None:
    with pytest.raises(ConfigurationError, match="validity_days"):
        generate_self_signed_cert(validity_days=days)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://example.com/chat", ("example.com", 443, "/chat")),
    ("https://127.0.0.1:4433", ("127.0.0.1", 4433, "/")),
    ("https://[::1]:8443/a/b?x=1&y=2", ("::1", 8443, "/a/b?x=1&y=2")),
])
def test_parse_webtransport_url(url: str, expected: tuple[str, int, str]) -> None:
    assert parse_webtransport_url(url) == expected


@pytest.mark.parametrize("url", ["http://example.com/", "wss://x/", "https:///nohost", "https://host:99999/",
                                 "https://127.0.0.1:0/"])  # port 0 used to dial 443
def test_bad_urls_are_client_errors(url: str) -> None:
    with pytest.raises(ClientError):
        parse_webtransport_url(url)


def test_ensure_bytes_and_format_duration() -> None:
    assert ensure_bytes("é") == "é".encode() and ensure_bytes(bytearray(b"a")) == b"a"
    assert ensure_bytes(memoryview(b"mv")) == b"mv"
    with pytest.raises(TypeError):
        ensure_bytes(12)  # type: ignore[arg-type]
    assert [format_duration(s) for s in (0.0005, 0.0123, 4.561, 123)] == ["500us", "12.3ms", "4.56s", "2m03s"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("old_mode", [0o644, 0o664])
def test_the_key_is_owner_only_also_over_an_existing_key_file(tmp_path: Path, old_mode: int) -> None:
    # Writing into an existing key.pem kept its mode: a new private key readable by everyone.
    old = tmp_path / "key.pem"
    old.write_text("old\n")
    old.chmod(old_mode)
    generated = generate_self_signed_cert("localhost", output_dir=tmp_path)
    assert generated.key_path == old and old.read_bytes() == generated.key_pem
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "key.pem"]  # no temporary left


def test_an_output_path_that_is_a_file_is_named(tmp_path: Path) -> None:
    taken = tmp_path / "not-a-directory"
    taken.write_text("x")
    with pytest.raises(NotADirectoryError, match="not-a-directory exists and is not a directory"):
        generate_self_signed_cert("localhost", output_dir=taken)


def test_a_file_without_a_certificate_is_named_when_hashing_it(tmp_path: Path) -> None:
    generated = generate_self_signed_cert("localhost", output_dir=tmp_path)
    assert generated.key_path is not None
    with pytest.raises(ValueError, match=r"no certificate in '.*key\.pem'"):  # the key given for the certificate
        load_certificate_hash(generated.key_path)
