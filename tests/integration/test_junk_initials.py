"""Datagrams shaped like a QUIC Initial that do not decrypt get no connection and hold no
handshake slot: the server checks that the Initial decrypts before it builds anything. Each
used to make a full connection that counted against ``max_concurrent_handshakes`` until
``connect_timeout``: a few dozen from spoofed sources every few seconds kept every real client
out with CONNECTION_REFUSED (found by a UDP-layer bug hunt). An Initial is protected with keys
anyone derives from its connection id (RFC 9001 §5.2), so a real client's decrypts."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from pywebtransport._protocol.quic_initial import initial_decrypts
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.utils import SelfSignedCertificate

from .conftest import echo_handler, eventually, running_server

pytestmark = pytest.mark.timeout(60)

SLOTS = 4


def junk_initial() -> bytes:
    """A 1200-byte QUIC v1 Initial: a well-formed long header, random bytes after it."""
    dcid, scid = os.urandom(8), os.urandom(8)
    head = struct.pack("!BI", 0xC3, 1) + bytes((8,)) + dcid + bytes((8,)) + scid + b"\x00"  # no token
    rest = 1200 - len(head) - 2
    return head + struct.pack("!H", 0x4000 | rest) + os.urandom(rest)


async def test_initials_that_do_not_decrypt_leave_no_connection_and_no_handshake_slot_taken(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    config = server_config.replace(max_concurrent_handshakes=SLOTS)
    async with running_server(config, {"/e": echo_handler}) as (server, base):
        flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            received = server.get_stats()["datagrams_received"]
            for _ in range(4 * SLOTS):
                flooder.sendto(junk_initial(), server.local_address)
            await eventually(lambda: server.get_stats()["datagrams_received"] >= received + 4 * SLOTS)
        finally:
            flooder.close()
        stats = server.get_stats()
        assert (stats["connections"], stats["handshakes_in_progress"]) == (0, 0), stats
        assert stats["initials_dropped"] == 4 * SLOTS  # refused before any connection was built
        client_config = ClientConfig(server_certificate_hashes=[certificate.sha256], connect_timeout=10)
        async with WebTransportClient(config=client_config) as client:
            session = await client.connect(f"{base}/e")  # CONNECTION_REFUSED while the junk held the slots
            assert session.is_ready


def initial_with_a_short_destination_cid() -> bytes:
    """A real client's first datagram (it decrypts) whose Destination Connection ID is 4 bytes."""
    configuration = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name="localhost",
                                      connection_id_length=4)
    client = QuicConnection(configuration=configuration)
    client.connect(("127.0.0.1", 4433), now=time.monotonic())
    (data, _), *_ = client.datagrams_to_send(now=time.monotonic())
    assert initial_decrypts(data) and data[5] == 4  # the DCID length byte: well formed, just short
    return data


async def test_an_initial_with_a_destination_cid_under_8_bytes_gets_no_connection(
        server_config: ServerConfig) -> None:
    # RFC 9000 §7.2: a client's first Destination Connection ID MUST be at least 8 bytes long.
    async with running_server(server_config, {"/e": echo_handler}) as (server, _base):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            received = server.get_stats()["datagrams_received"]
            sender.sendto(initial_with_a_short_destination_cid(), server.local_address)
            await eventually(lambda: server.get_stats()["datagrams_received"] >= received + 1)
        finally:
            sender.close()
        stats = server.get_stats()
        assert (stats["connections"], stats["handshakes_in_progress"], stats["initials_dropped"]) == (0, 0, 1), stats
