"""A certificate accepted by its hash (``server_certificate_hashes``) must also be valid now,
as browsers require of one given in ``serverCertificateHashes``: an expired or not yet valid
certificate whose hash is pinned was accepted."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import CertificateError
from pywebtransport.session import WebTransportSession
from tests.integration.conftest import running_server

pytestmark = pytest.mark.timeout(60)

DAY = datetime.timedelta(days=1)


def _certificate(directory: Path, not_before: datetime.datetime, not_after: datetime.datetime) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for localhost with the given validity: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(not_before)
                   .not_valid_after(not_after).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def _hold(session: WebTransportSession) -> None:
    await session.wait_closed()


@pytest.mark.parametrize(("first_day", "last_day", "valid"), [
    (-10, -1, False),  # expired yesterday
    (1, 10, False),  # valid from tomorrow
    (-1, 9, True),  # valid now
], ids=["expired", "not-yet-valid", "valid"])
async def test_a_pinned_certificate_must_be_valid_now(tmp_path: Path, first_day: int, last_day: int,
                                                      valid: bool) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    cert_path, key_path = _certificate(tmp_path, now + first_day * DAY, now + last_day * DAY)
    digest = hashlib.sha256(x509.load_pem_x509_certificate(cert_path.read_bytes())
                            .public_bytes(serialization.Encoding.DER)).digest()
    server_config = ServerConfig(host="127.0.0.1", port=0, certfile=str(cert_path), keyfile=str(key_path))
    async with (running_server(server_config, {"/h": _hold}) as (_, base),
                WebTransportClient(config=ClientConfig(server_certificate_hashes=[digest],
                                                       connect_timeout=10.0)) as client):
        if valid:
            session = await asyncio.wait_for(client.connect(f"{base}/h"), 20)
            await session.close()
            return
        with pytest.raises(CertificateError, match="is pinned but not valid now"):
            await asyncio.wait_for(client.connect(f"{base}/h"), 20)
