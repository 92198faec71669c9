"""Client certificates (mTLS) over real UDP: the server asks for one, verifies it against its
CA file and shows it to the handler; a client without a valid one fails the handshake.

The server runs on aioquic (qh3 1.x servers cannot ask for a client certificate); the client
runs on the backend under test ($PYWEBTRANSPORT_QUIC_BACKEND), so both backends' clients
present certificates here.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pywebtransport.client import WebTransportClient
from pywebtransport.client.reconnect import is_retryable_error
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection import build_quic_configuration
from pywebtransport.exceptions import ConfigurationError, HandshakeError
from pywebtransport.session import WebTransportSession
from pywebtransport.utils import SelfSignedCertificate

from .conftest import running_server

pytestmark = pytest.mark.timeout(60)

_NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(hours=1)).not_valid_after(_NOW + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _make_client(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, user: str, *,
                 usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH
                 ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(user)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(hours=1)).not_valid_after(_NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(f"{user}@example.test")]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


@dataclass(frozen=True)
class Identity:
    certificate: x509.Certificate
    certfile: str
    keyfile: str


@dataclass(frozen=True)
class Pki:
    ca_file: str
    alice: Identity  # issued by the trusted CA, for client authentication
    mallory: Identity  # issued by a CA the server does not trust
    server_only: Identity  # issued by the trusted CA, but for server authentication only


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Identity:
    certfile, keyfile = directory / f"{name}.pem", directory / f"{name}.key"
    certfile.write_bytes(cert.public_bytes(Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return Identity(cert, str(certfile), str(keyfile))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("mtls")
    ca, ca_key = _make_ca("Test Client CA")
    other_ca, other_key = _make_ca("Untrusted CA")
    (directory / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    return Pki(
        ca_file=str(directory / "ca.pem"),
        alice=_write(directory, "alice", *_make_client(ca, ca_key, "alice")),
        mallory=_write(directory, "mallory", *_make_client(other_ca, other_key, "mallory")),
        server_only=_write(directory, "server-only", *_make_client(ca, ca_key, "svc",
                                                                   usage=ExtendedKeyUsageOID.SERVER_AUTH)),
    )


def _server_config(certificate: SelfSignedCertificate, pki: Pki, verify_client: str) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, certfile=str(certificate.cert_path),
                        keyfile=str(certificate.key_path), ca_certs=pki.ca_file, verify_client=verify_client,
                        quic_backend="aioquic")


def _client_config(certificate: SelfSignedCertificate, identity: Identity | None) -> ClientConfig:
    return ClientConfig(server_certificate_hashes=[certificate.sha256], connect_timeout=5.0,
                        certfile=identity.certfile if identity else None,
                        keyfile=identity.keyfile if identity else None)


class Seen:
    """What the server handler saw of each session's peer certificate."""

    def __init__(self) -> None:
        self.certificates: asyncio.Queue[x509.Certificate | None] = asyncio.Queue()

    async def handler(self, session: WebTransportSession) -> None:
        await self.certificates.put(session.peer_certificate)
        await session.wait_closed()


async def test_the_handler_sees_the_verified_client_certificate(certificate, pki) -> None:
    seen = Seen()
    async with running_server(_server_config(certificate, pki, "required"), {"/who": seen.handler}) as (_, base), \
            WebTransportClient(config=_client_config(certificate, pki.alice)) as client:
        session = await client.connect(f"{base}/who")
        peer = await asyncio.wait_for(seen.certificates.get(), 5)
        assert peer == pki.alice.certificate
        assert peer is not None and peer.subject.rfc4514_string() == "CN=alice"
        # the client sees the server's certificate, not its own
        assert session.peer_certificate is not None
        assert session.peer_certificate.fingerprint(hashes.SHA256()) == certificate.sha256
        await session.close()


async def test_a_client_without_a_certificate_fails_the_handshake_when_one_is_required(certificate, pki) -> None:
    seen = Seen()
    async with running_server(_server_config(certificate, pki, "required"), {"/who": seen.handler}) as (_, base), \
            WebTransportClient(config=_client_config(certificate, None)) as client:
        with pytest.raises(HandshakeError, match="client certificate required") as caught:
            await client.connect(f"{base}/who")
        assert caught.value.error_code == 0x100 + 116  # CRYPTO_ERROR(certificate_required), RFC 9001 §4.8
        assert caught.value.tls_alert == 116 and not is_retryable_error(caught.value)
    assert seen.certificates.empty()  # the handler never ran


@pytest.mark.parametrize(("who", "why"), [("mallory", "client certificate rejected: not issued by a CA in ca.pem"),
                                          ("server_only", "client certificate rejected: .*required EKU not found")])
async def test_an_untrusted_or_misused_certificate_fails_the_handshake(certificate, pki, who: str, why: str) -> None:
    seen = Seen()
    async with running_server(_server_config(certificate, pki, "optional"), {"/who": seen.handler}) as (_, base), \
            WebTransportClient(config=_client_config(certificate, getattr(pki, who))) as client:
        with pytest.raises(HandshakeError, match=why) as caught:
            await client.connect(f"{base}/who")
        assert caught.value.error_code == 0x100 + 42  # CRYPTO_ERROR(bad_certificate)
        assert caught.value.tls_alert == 42 and not is_retryable_error(caught.value)
    assert seen.certificates.empty()


async def test_optional_verification_lets_a_client_without_a_certificate_in(certificate, pki) -> None:
    seen = Seen()
    async with running_server(_server_config(certificate, pki, "optional"), {"/who": seen.handler}) as (_, base):
        async with WebTransportClient(config=_client_config(certificate, None)) as client:
            session = await client.connect(f"{base}/who")
            assert await asyncio.wait_for(seen.certificates.get(), 5) is None
            await session.close()
        async with WebTransportClient(config=_client_config(certificate, pki.alice)) as client:
            session = await client.connect(f"{base}/who")
            assert await asyncio.wait_for(seen.certificates.get(), 5) == pki.alice.certificate
            await session.close()


async def test_without_verify_client_no_certificate_is_asked_for(certificate, pki, server_config) -> None:
    seen = Seen()
    async with running_server(server_config, {"/who": seen.handler}) as (_, base), \
            WebTransportClient(config=_client_config(certificate, pki.alice)) as client:
        session = await client.connect(f"{base}/who")
        assert await asyncio.wait_for(seen.certificates.get(), 5) is None  # configured, but never sent
        await session.close()


def test_mtls_configuration_is_validated(certificate, pki) -> None:
    with pytest.raises(ConfigurationError, match="verify_client"):
        ServerConfig(certfile=str(certificate.cert_path), keyfile=str(certificate.key_path), verify_client="always")
    with pytest.raises(ConfigurationError, match="ca_certs"):
        ServerConfig(certfile=str(certificate.cert_path), keyfile=str(certificate.key_path), verify_client="required")
    with pytest.raises(ConfigurationError, match="certfile/keyfile"):
        ClientConfig(certfile=pki.alice.certfile)
    with pytest.raises(ConfigurationError, match="must name an existing file"):
        ClientConfig(certfile="/nonexistent/cert.pem", keyfile=pki.alice.keyfile)
    # qh3 1.x servers send no CertificateRequest: refused at once, naming the backend to use
    qh3_server = ServerConfig(certfile=str(certificate.cert_path), keyfile=str(certificate.key_path),
                              ca_certs=pki.ca_file, verify_client="required", quic_backend="qh3")
    with pytest.raises(ConfigurationError, match="needs the aioquic backend"):
        build_quic_configuration(qh3_server)
