"""The largest ``quic_max_datagram_size`` the configs accept carries a transfer both ways.

Values up to 65527 used to be accepted, and any above about 16400 broke every connection:
both QUIC libraries write a STREAM or CRYPTO frame's length in 2 bytes (found by a bug
hunt). The bound is now ``MAX_QUIC_DATAGRAM_SIZE``; this checks that it works, on whichever
backend and UDP mode the suite runs with.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import MAX_QUIC_DATAGRAM_SIZE, ClientConfig, ServerConfig

from .conftest import echo_handler, running_server

pytestmark = pytest.mark.timeout(60)

SIZE = 1 << 20


async def test_the_largest_accepted_packet_size_carries_a_megabyte_each_way(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    config = {"quic_max_datagram_size": MAX_QUIC_DATAGRAM_SIZE}
    async with (running_server(server_config.replace(**config), {"/e": echo_handler}) as (_, base),
                WebTransportClient(config=client_config.replace(**config)) as client):
        session = await client.connect(f"{base}/e")
        stream = await session.create_bidirectional_stream()
        payload = os.urandom(SIZE)
        sending = asyncio.ensure_future(stream.write_all(payload, end_stream=True))
        received = await asyncio.wait_for(stream.read(), 30)
        await sending
        assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        assert session.datagrams.max_datagram_size > 16000  # the packets really are that large
