"""A connection's peer address moves only when QUIC authenticates the move (RFC 9000 §9).

It was set from every datagram routed to the connection, before QUIC looked at it: one
datagram that could not decrypt, sent from a spoofed source, rewrote ``remote_address``, which
``RateLimit`` keys on, logs name and the closing period answers. A client echoing its own
packets, garbled, from other loopback addresses got past ``RateLimit(max_sessions=1)`` four
times in four (found by a UDP-layer bug hunt). A real move (NAT rebinding) still follows.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession
from pywebtransport.utils import SelfSignedCertificate

from .conftest import echo_handler, eventually, running_server

pytestmark = pytest.mark.timeout(60)


class Relay:
    """Forwards UDP between a client and a server; ``rebind()`` moves the server-facing
    socket to a new port, as a NAT would."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server: tuple[str, int]) -> None:
        self._loop, self._server = loop, server
        self.front = self._socket()
        self.client: tuple[str, int] | None = None
        self.last_from_client = b""
        #: While set, what the client sends is held here instead of forwarded.
        self.held: list[bytes] | None = None
        self.back = self._open_back()
        loop.add_reader(self.front.fileno(), self._from_client)

    @staticmethod
    def _socket(host: str = "127.0.0.1") -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        sock.setblocking(False)
        return sock

    def _open_back(self) -> socket.socket:
        back = self._socket()
        self._loop.add_reader(back.fileno(), self._drain(back, lambda data: self._to_client(data)))
        return back

    def _drain(self, sock: socket.socket, forward: Callable[[bytes], None]) -> Callable[[], None]:
        def read() -> None:
            while True:
                try:
                    data, _ = sock.recvfrom(65535)
                except BlockingIOError:
                    return
                forward(data)
        return read

    def _to_client(self, data: bytes) -> None:
        if self.client is not None:
            self.front.sendto(data, self.client)

    def _from_client(self) -> None:
        while True:
            try:
                data, self.client = self.front.recvfrom(65535)
            except BlockingIOError:
                return
            self.last_from_client = data
            if self.held is not None:
                self.held.append(data)
            else:
                self.back.sendto(data, self._server)

    def hold(self) -> None:
        self.held = []

    def release(self) -> None:
        held, self.held = self.held or [], None
        for data in held:
            self.back.sendto(data, self._server)

    def rebind(self) -> None:
        self._loop.remove_reader(self.back.fileno())
        self.back.close()
        self.back = self._open_back()

    def close(self) -> None:
        for sock in (self.front, self.back):
            self._loop.remove_reader(sock.fileno())
            sock.close()


async def _round_trip(session: WebTransportSession, tag: bytes) -> None:
    stream = await session.create_bidirectional_stream()
    await stream.write_all(tag, end_stream=True)
    assert await asyncio.wait_for(stream.read(), 10) == tag


async def test_a_datagram_that_cannot_decrypt_does_not_move_the_peer_but_a_rebinding_does(
        server_config: ServerConfig, certificate: SelfSignedCertificate) -> None:
    async with running_server(server_config, {"/e": echo_handler}) as (server, _):
        relay = Relay(asyncio.get_running_loop(), server.local_address)
        spoofer = Relay._socket("127.0.0.2")
        try:
            config = ClientConfig(server_certificate_hashes=[certificate.sha256])
            async with WebTransportClient(config=config) as client:
                session = await client.connect(f"https://127.0.0.1:{relay.front.getsockname()[1]}/e")
                (connection,) = server.connections
                await _round_trip(session, b"a")
                assert connection.remote_address == relay.back.getsockname()
                real = relay.last_from_client
                garbled = real[:30] + bytes(b ^ 0xFF for b in real[30:])  # same header: routed, never decrypts
                relay.hold()  # nothing real reaches the server between the garbled datagram and the check
                received = server.get_stats()["datagrams_received"]
                spoofer.sendto(garbled, server.local_address)
                await eventually(lambda: server.get_stats()["datagrams_received"] > received)
                assert connection.remote_address == relay.back.getsockname()
                relay.release()
                await _round_trip(session, b"b")
                relay.rebind()  # a real move: authenticated packets from a new port
                await _round_trip(session, b"c")
                assert connection.remote_address == relay.back.getsockname()
        finally:
            spoofer.close()
            relay.close()
