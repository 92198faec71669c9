"""A client endpoint's socket is connected to its one peer: datagrams still flow both ways in
every UDP mode, and an ICMP port unreachable reaches the client connection at once."""

from __future__ import annotations

import asyncio
import builtins
import select
import socket
from types import ModuleType
from typing import cast

import pytest

from pywebtransport._io import UdpEndpoint, UdpMode
from pywebtransport.types import Address
from tests.unit.io.fakes import FakeConnection

FAMILIES = pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
                                   ids=["ipv4", "ipv6"])
MODES = pytest.mark.parametrize("mode", [UdpMode.READER, UdpMode.TRANSPORT, UdpMode.MMSG])


class RecordingClient(FakeConnection):
    """A client driver whose socket errors resolve ``refused``."""

    def __init__(self) -> None:
        super().__init__("client")
        self.errors: list[OSError] = []
        self.refused: asyncio.Future[OSError] = asyncio.get_running_loop().create_future()
        self.got_datagram: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def error_received(self, exc: OSError) -> None:
        self.errors.append(exc)
        if not self.refused.done():
            self.refused.set_result(exc)

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        super().datagram_received(data, addr, now)
        if not self.got_datagram.done():
            self.got_datagram.set_result(data)


def closed_port(family: socket.AddressFamily, host: str) -> int:
    """A UDP port on ``host`` that nothing listens on (bound once, then released)."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


@MODES
@FAMILIES
async def test_an_icmp_port_unreachable_reaches_the_client_connection_at_once(
        mode: UdpMode, family: socket.AddressFamily, host: str) -> None:
    remote = (host, closed_port(family, host))
    endpoint = await UdpEndpoint.open(local_addr=(host, 0), remote_addr=remote, mode=mode)
    client = RecordingClient()
    endpoint.attach_client(client)
    try:
        client.outbox.append((b"\xc0" + b"\x00" * 1199, remote))  # anything: nobody reads it
        endpoint.schedule_flush(client)
        exc = await asyncio.wait_for(client.refused, 5)
        assert isinstance(exc, builtins.ConnectionRefusedError)
        assert endpoint.unreachable >= 1
    finally:
        endpoint.close()


class _Ponger(asyncio.DatagramProtocol):
    """The peer: answers a datagram with b"pong" and remembers who sent it."""

    def __init__(self) -> None:
        self.got: asyncio.Future[tuple[bytes, tuple[str | int, ...]]] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not self.got.done():
            self.got.set_result((data, addr))
        self.transport.sendto(b"pong", addr)


@MODES
@FAMILIES
async def test_a_connected_endpoint_exchanges_datagrams_with_its_peer(
        mode: UdpMode, family: socket.AddressFamily, host: str) -> None:
    transport, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        _Ponger, local_addr=(host, 0), family=family)
    remote: Address = (host, transport.get_extra_info("sockname")[1])
    endpoint = await UdpEndpoint.open(local_addr=(host, 0), remote_addr=remote, mode=mode)
    client = RecordingClient()
    endpoint.attach_client(client)
    try:
        client.outbox.append((b"ping", remote))
        endpoint.schedule_flush(client)
        data, sender = await asyncio.wait_for(peer.got, 5)
        assert data == b"ping" and sender[1] == endpoint.local_address[1]
        assert await asyncio.wait_for(client.got_datagram, 5) == b"pong"
        assert client.received[0][1] == remote and client.errors == []
    finally:
        endpoint.close()
        transport.close()


async def test_a_refusal_on_a_server_socket_is_not_blamed_on_anyone() -> None:
    """An unconnected (server) socket serves many peers: an error there is only logged."""
    endpoint = await UdpEndpoint.open(local_addr=("127.0.0.1", 0), mode=UdpMode.READER)
    client = RecordingClient()
    endpoint.attach_client(client)
    try:
        endpoint.error_received(ConnectionRefusedError(111, "refused"))
        assert client.errors == [] and endpoint.unreachable == 0
    finally:
        endpoint.close()


@pytest.mark.parametrize("flight", [1, 3], ids=["one-datagram", "three-datagrams"])
@FAMILIES
def test_each_mmsg_variant_raises_connection_refused_on_a_connected_socket(
        mmsg: ModuleType, family: socket.AddressFamily, host: str, flight: int) -> None:
    """Each datagram to a closed port draws an ICMP error; one is still pending after a
    whole flight (a send that meets an earlier one skips that datagram), so recv reports it."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, 0))
        remote = (host, closed_port(family, host))
        sock.connect(remote)
        batch = mmsg.BatchSocket(sock)
        sent = batch.send([(bytes([i]) * (1200 - i), remote) for i in range(flight)])
        assert 1 <= sent <= flight
        readable, _, _ = select.select([sock], [], [], 5.0)  # the ICMP error wakes the reader
        assert readable == [sock]
        with pytest.raises(builtins.ConnectionRefusedError):
            batch.recv()
        assert batch.recv() == []  # the error was reported once; nothing else is waiting
    finally:
        sock.close()


class CountingClient(FakeConnection):
    """A client driver that resolves ``all_in`` once ``expected`` datagrams arrived."""

    def __init__(self, expected: int) -> None:
        super().__init__("client")
        self.expected = expected
        self.all_in: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        super().datagram_received(data, addr, now)
        if len(self.received) >= self.expected and not self.all_in.done():
            self.all_in.set_result(None)


async def test_a_client_socket_starts_with_a_small_batch_and_grows_it_for_a_burst() -> None:
    """A client's socket hears from one server: its batched reads start at 8 datagrams, not
    the server's 64 (each slot is a receive buffer in mmsg mode). A burst arrives whole, and
    the read it fills moves the socket to the server's batch size."""
    server = await UdpEndpoint.open(local_addr=("127.0.0.1", 0), mode=UdpMode.MMSG)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        client_endpoint = await UdpEndpoint.open(local_addr=("127.0.0.1", 0), remote_addr=peer.getsockname(),
                                                 mode=UdpMode.MMSG)
        client = CountingClient(expected=40)
        client_endpoint.attach_client(client)
        try:
            assert server.receive_batch == 64
            assert client_endpoint.receive_batch == 8
            peer.sendto(b"one", client_endpoint.local_address)
            client.expected = 1
            await asyncio.wait_for(client.all_in, 10)
            assert client_endpoint.receive_batch == 8  # one datagram at a time: still small
            client.all_in, client.expected = asyncio.get_running_loop().create_future(), 41
            for i in range(40):  # all waiting before the loop next reads the socket
                peer.sendto(i.to_bytes(2, "big"), client_endpoint.local_address)
            await asyncio.wait_for(client.all_in, 10)
            assert [int.from_bytes(d, "big") for d, _ in client.received[1:]] == list(range(40))
            assert client_endpoint.receive_batch == 64
        finally:
            client_endpoint.close()
            server.close()


async def test_an_endpoint_that_reads_one_datagram_at_a_time_has_no_receive_batch() -> None:
    endpoint = await UdpEndpoint.open(local_addr=("127.0.0.1", 0), mode=UdpMode.READER)
    try:
        assert endpoint.receive_batch is None
    finally:
        endpoint.close()
