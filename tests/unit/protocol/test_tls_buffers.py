"""The TLS output buffers kept after the handshake are never written to, on either backend.

``quic_family`` replaces the libraries' three 16 KiB TLS output buffers with 256-byte ones once
the handshake is complete. That is safe only while neither library's TLS writes a message after
the handshake; a write past a buffer's capacity raises the library's BufferWriteError, which no
code in the library catches: it would escape ``receive_datagram``. These tests hand each side's
TLS the post-handshake messages a peer could send and check what it writes.
"""

from __future__ import annotations

import importlib
import os
import struct
from types import ModuleType
from typing import Any

import pytest

from pywebtransport._protocol import quic as seam
from pywebtransport._protocol.quic_family import POST_HANDSHAKE_TLS_BUFFER

from .harness import Pair


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _tls_module(backend: str) -> ModuleType:
    """The backend library's own ``tls`` module (aioquic.tls or qh3.tls)."""
    return importlib.import_module(f"{backend}.tls")


def _ticket_message(tls: ModuleType, *, ticket_size: int = 64) -> bytes:
    """A NewSessionTicket as the libraries' servers build theirs (RFC 8446 §4.6.1)."""
    ticket = tls.NewSessionTicket(ticket_lifetime=86400, ticket_age_add=struct.unpack("I", os.urandom(4))[0],
                                  ticket_nonce=b"", ticket=os.urandom(ticket_size), max_early_data_size=0xFFFFFFFF)
    buf = tls.Buffer(capacity=4096)
    tls.push_new_session_ticket(buf, ticket)
    return bytes(buf.data)


def _written(quic: Any) -> dict[str, int]:
    return {epoch.name: buffer.tell() for epoch, buffer in quic._crypto_buffers.items()}


def test_a_new_session_ticket_as_the_library_writes_it_fits_the_post_handshake_buffer(backend: str) -> None:
    pair = Pair(backend=backend)
    pair.open_session()
    tls = _tls_module(backend)
    message = _ticket_message(tls)
    buffer = pair.server.quic._crypto_buffers[tls.Epoch.ONE_RTT]
    assert buffer.capacity == POST_HANDSHAKE_TLS_BUFFER
    buffer.push_bytes(message)  # BufferWriteError if it did not fit
    assert buffer.tell() == len(message) < POST_HANDSHAKE_TLS_BUFFER
    buffer.seek(0)


def test_a_write_past_the_capacity_raises_the_librarys_buffer_write_error(backend: str) -> None:
    # What a too small buffer would do: the library raises, and receive_datagram catches only
    # its own connection errors and TLS alerts.
    tls = _tls_module(backend)
    buffer = tls.Buffer(capacity=POST_HANDSHAKE_TLS_BUFFER)
    with pytest.raises(ValueError, match="[Ww]rite out of bounds"):
        buffer.push_bytes(b"x" * (POST_HANDSHAKE_TLS_BUFFER + 1))


def test_a_client_takes_a_ticket_after_the_handshake_without_writing_anything(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    quic = pair.client.quic
    tls = _tls_module(backend)
    # A ticket far larger than the buffer: the client only reads it.
    message = _ticket_message(tls, ticket_size=2 * POST_HANDSHAKE_TLS_BUFFER)
    handle: Any = quic.tls.handle_message
    if backend == "qh3":  # qh3 checks the epoch a message arrived at
        handle(message, quic._crypto_buffers, epoch=tls.Epoch.ONE_RTT)
    else:
        handle(message, quic._crypto_buffers)
    assert _written(quic) == {"INITIAL": 0, "HANDSHAKE": 0, "ONE_RTT": 0}
    assert pair.client.send_datagram(sid, b"still up")
    pair.run()
    assert len(pair.take("server")) >= 1


@pytest.mark.parametrize("message_type", [4, 13, 24])  # NewSessionTicket, CertificateRequest, KeyUpdate
def test_a_server_answers_any_post_handshake_message_with_an_alert_and_writes_nothing(backend: str,
                                                                                      message_type: int) -> None:
    pair = Pair(backend=backend)
    pair.open_session()
    quic = pair.server.quic
    tls = _tls_module(backend)
    message = bytes([message_type]) + (1).to_bytes(3, "big") + b"\x00"
    with pytest.raises(tls.Alert):
        quic.tls.handle_message(message, quic._crypto_buffers)
    assert _written(quic) == {"INITIAL": 0, "HANDSHAKE": 0, "ONE_RTT": 0}


def test_a_client_answers_a_key_update_message_with_an_alert_and_writes_nothing(backend: str) -> None:
    # RFC 9001 §6: QUIC updates keys with the key phase bit; a TLS KeyUpdate is an error.
    pair = Pair(backend=backend)
    pair.open_session()
    quic = pair.client.quic
    tls = _tls_module(backend)
    with pytest.raises(tls.Alert):
        quic.tls.handle_message(bytes([24, 0, 0, 1, 0]), quic._crypto_buffers)
    assert _written(quic) == {"INITIAL": 0, "HANDSHAKE": 0, "ONE_RTT": 0}
