"""Test peers shared by the integration tests: a raw UDP socket that speaks just enough QUIC to
start handshakes it never finishes, a server handler that hands each session to the test, and
a bare client connection (no WebTransportClient around it) for tests of the connect itself."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from pywebtransport._io import UdpEndpoint
from pywebtransport.config import ClientConfig
from pywebtransport.connection import WebTransportConnection, build_quic_configuration
from pywebtransport.session import WebTransportSession

__all__ = ["RawPeer", "SessionQueue", "client_connection"]

#: How long a test waits for a datagram or a session: far below any idle timeout.
WAIT = 10.0


class RawPeer:
    """A UDP socket that sends handcrafted QUIC datagrams and never completes a handshake."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    def initial(self) -> bytes:
        """A full-size client Initial (a fresh connection id each call)."""
        quic = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                                                              server_name="localhost"))
        quic.connect(self.server, now=time.monotonic())
        (data, _), *_ = quic.datagrams_to_send(now=time.monotonic())
        assert len(data) >= 1200
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def send_initial(self) -> None:
        """Start a handshake (that this peer never finishes)."""
        self.send(self.initial())

    async def receive(self) -> bytes:
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 65535), WAIT)

    async def barrier(self) -> None:
        """Return once the server has handled everything this socket sent before: a
        datagram of an unknown QUIC version is answered with Version Negotiation at once, and
        loopback keeps one socket's datagrams in order."""
        probe = bytes([0xC0]) + bytes.fromhex("1a2a3a4a") + bytes([8]) + os.urandom(8) + bytes([8]) + os.urandom(8)
        self.send(probe.ljust(1200, b"\0"))
        while True:
            data = await self.receive()
            if len(data) >= 5 and data[0] & 0x80 and data[1:5] == b"\0\0\0\0":
                return

    def close(self) -> None:
        self.sock.close()


class SessionQueue:
    """A server handler that hands every server-side session to the test and keeps it open
    until it closes."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[WebTransportSession] = asyncio.Queue()

    async def handler(self, session: WebTransportSession) -> None:
        await self.queue.put(session)
        await session.wait_closed()

    async def next(self) -> WebTransportSession:
        return await asyncio.wait_for(self.queue.get(), WAIT)


async def client_connection(config: ClientConfig, port: int) -> WebTransportConnection:
    """A client connection to 127.0.0.1:``port`` on its own endpoint, not yet connecting."""
    remote = ("127.0.0.1", port)
    endpoint = await UdpEndpoint.open(local_addr=("0.0.0.0", 0), remote_addr=remote)
    connection = WebTransportConnection(config=config, endpoint=endpoint,
                                        quic_configuration=build_quic_configuration(config, server_name="127.0.0.1"),
                                        remote_address=remote, owns_endpoint=True)
    endpoint.attach_client(connection)
    return connection
