"""Certificate and key files that cannot serve a handshake fail ``start()`` with a
CertificateError naming them, on both backends (``QuicSettings.validate``).

A key that does not belong to the certificate used to start a server whose every handshake
then failed (a bad signature at the client); a key file with no key in it made qh3 end
``start()`` by a Rust panic, a BaseException that no ``except Exception`` catches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pywebtransport import ServerConfig, WebTransportServer
from pywebtransport.exceptions import CertificateError
from pywebtransport.server import ServerApp
from pywebtransport.utils import generate_self_signed_cert

pytestmark = pytest.mark.timeout(60)


def _key_of_another_certificate(directory: Path) -> str:
    return str(generate_self_signed_cert("localhost", output_dir=directory).key_path)


def _no_key(directory: Path) -> str:
    path = directory / "key.pem"
    path.write_text("this is not a PEM key\n")
    return str(path)


@pytest.mark.parametrize("server_class", [WebTransportServer, ServerApp])
@pytest.mark.parametrize(("keyfile", "says"), [
    (_key_of_another_certificate, "does not belong to the certificate"),
    (_no_key, "no usable PEM private key"),
], ids=["another-certificates-key", "no-key"])
async def test_unusable_key_files_fail_start_with_a_certificate_error(
        server_config: ServerConfig, tmp_path: Path, server_class: type[WebTransportServer] | type[ServerApp],
        keyfile: object, says: str) -> None:
    assert callable(keyfile)
    server = server_class(config=server_config.replace(keyfile=keyfile(tmp_path)))
    try:
        try:
            await server.start()
        except Exception as exc:  # an Exception: a BaseException would escape `except Exception`
            assert isinstance(exc, CertificateError), repr(exc)
            assert says in str(exc)
        else:
            pytest.fail("the server started with a key file that cannot serve a handshake")
    finally:
        await server.close()
