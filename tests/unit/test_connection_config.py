"""build_quic_configuration: a client builds the backend's configuration once per connect,
and still fails early on a certificate it cannot load."""

from __future__ import annotations

from typing import Any

import pytest

from pywebtransport._protocol.quic import QuicSettings, available_backends
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection_config import build_quic_configuration
from pywebtransport.exceptions import CertificateError


def test_a_client_without_files_does_not_build_a_throwaway_backend_configuration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    monkeypatch.setattr(QuicSettings, "validate", lambda self: built.append(self))
    settings = build_quic_configuration(ClientConfig(), server_name="localhost")
    assert settings.is_client and settings.server_name == "localhost"
    assert built == []  # create_connection builds the one it uses
    build_quic_configuration(ClientConfig(ca_certs=__file__), server_name="localhost")
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
