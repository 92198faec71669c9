"""``initial_decrypts``: the check a server makes before building a connection for a datagram
that would open one. A client's Initial decrypts with keys derived from its destination
connection id (RFC 9001 §5.2), whichever library sent it; junk shaped like one does not."""

from __future__ import annotations

import os
import struct
import time

import pytest

from pywebtransport._protocol.quic_initial import initial_decrypts


def _first_datagram(package: str) -> bytes:
    """The first datagram a client of ``package`` ("aioquic" or "qh3") sends."""
    configuration_module = pytest.importorskip(f"{package}.quic.configuration")
    connection_module = pytest.importorskip(f"{package}.quic.connection")
    configuration = configuration_module.QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                                                           server_name="localhost")
    client = connection_module.QuicConnection(configuration=configuration)
    client.connect(("127.0.0.1", 4433), now=time.monotonic())
    (data, _), *_ = client.datagrams_to_send(now=time.monotonic())
    return bytes(data)


@pytest.mark.parametrize("package", ["aioquic", "qh3"])
def test_a_clients_initial_decrypts_and_the_same_bytes_garbled_do_not(package: str) -> None:
    datagram = _first_datagram(package)
    assert initial_decrypts(datagram)
    garbled = datagram[:60] + bytes((datagram[60] ^ 0x01,)) + datagram[61:]
    assert not initial_decrypts(garbled)


def test_junk_with_a_valid_initial_header_does_not_decrypt() -> None:
    head = struct.pack("!BI", 0xC3, 1) + bytes((8,)) + os.urandom(8) + bytes((8,)) + os.urandom(8) + b"\x00"
    rest = 1200 - len(head) - 2
    assert not initial_decrypts(head + struct.pack("!H", 0x4000 | rest) + os.urandom(rest))


@pytest.mark.parametrize("datagram", [b"", b"\xc3", b"\xc3\x00\x00\x00\x01\x08", os.urandom(1200)])
def test_truncated_or_shapeless_bytes_do_not_decrypt_and_do_not_raise(datagram: bytes) -> None:
    assert not initial_decrypts(datagram)
