"""build_quic_configuration: a client builds the backend's configuration once per connect,
and still fails early on a certificate it cannot load."""

from __future__ import annotations

from typing import Any

import pytest

from pywebtransport._protocol.quic import QuicSettings, available_backends
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection_config import build_quic_configuration
from pywebtransport.exceptions import CertificateError
from pywebtransport.utils import generate_self_signed_cert


def test_a_client_without_files_does_not_build_a_throwaway_backend_configuration(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    built: list[Any] = []
    monkeypatch.setattr(QuicSettings, "validate", lambda self: built.append(self))
    settings = build_quic_configuration(ClientConfig(), server_name="localhost")
    assert settings.is_client and settings.server_name == "localhost"
    assert built == []  # create_connection builds the one it uses
    ca = generate_self_signed_cert("localhost", output_dir=tmp_path)
    build_quic_configuration(ClientConfig(ca_certs=str(ca.cert_path)), server_name="localhost")
    assert len(built) == 1  # a CA file is checked up front


@pytest.mark.parametrize("backend", available_backends())
def test_a_certificate_that_cannot_be_loaded_fails_when_the_settings_are_built(tmp_path: Any, backend: str) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    with pytest.raises(CertificateError, match="client certificate"):
        build_quic_configuration(ClientConfig(certfile=str(bad), keyfile=str(bad), quic_backend=backend),
                                 server_name="localhost")
    with pytest.raises(CertificateError, match="cannot load certificate"):
        build_quic_configuration(ServerConfig(certfile=str(bad), keyfile=str(bad), quic_backend=backend))


@pytest.mark.parametrize("backend", available_backends())
def test_a_ca_file_without_certificates_fails_before_any_handshake(tmp_path: Any, backend: str) -> None:
    # the libraries read it only during the handshake: aioquic raised from inside it (the
    # connect then waited out its timeout), qh3 reported an empty CA store
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(CertificateError, match="cannot load CA file .*no PEM certificate"):
        build_quic_configuration(ClientConfig(ca_certs=str(bad), quic_backend=backend), server_name="localhost")


def test_a_server_ca_file_for_client_certificates_is_checked_at_start(tmp_path: Any) -> None:
    cert = generate_self_signed_cert("localhost", output_dir=tmp_path)
    bad = tmp_path / "clients-ca.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    config = ServerConfig(certfile=str(cert.cert_path), keyfile=str(cert.key_path), verify_client="required",
                          ca_certs=str(bad), quic_backend="aioquic")
    with pytest.raises(CertificateError, match="cannot load CA file"):
        build_quic_configuration(config)
    good = ServerConfig(certfile=str(cert.cert_path), keyfile=str(cert.key_path), verify_client="required",
                        ca_certs=str(cert.cert_path), quic_backend="aioquic")
    assert build_quic_configuration(good).request_client_certificate
