"""Both ``_mmsg`` variants over real loopback sockets: a batch of N datagrams sent arrives as
N, with contents, order and sender address, on IPv4 and IPv6, with and without UDP GSO."""

from __future__ import annotations

import select
import socket
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

Received = list[tuple[bytes, tuple[str, int]]]


def _udp(family: socket.AddressFamily, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((host, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return sock


@pytest.fixture(params=[(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")], ids=["ipv4", "ipv6"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[socket.socket, socket.socket]]:
    family, host = request.param
    sender, receiver = _udp(family, host), _udp(family, host)
    yield sender, receiver
    sender.close()
    receiver.close()


def _address(sock: socket.socket) -> tuple[str, int]:
    name = sock.getsockname()
    return (name[0], name[1])


def receive(batch: object, sock: socket.socket, count: int, timeout: float = 5.0) -> Received:
    """Call ``batch.recv()`` whenever ``sock`` is readable until ``count`` datagrams came."""
    received: Received = []
    while len(received) < count:
        readable, _, _ = select.select([sock], [], [], timeout)
        assert readable, f"only {len(received)} of {count} datagrams arrived within {timeout}s"
        received.extend(batch.recv())  # type: ignore[attr-defined]
    return received


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "no-gso"])
def test_batch_of_n_datagrams_arrives_as_n_with_the_sender_address(
        mmsg: ModuleType, pair: tuple[socket.socket, socket.socket], gso: bool) -> None:
    sender, receiver = pair
    out = mmsg.BatchSocket(sender, gso=gso)
    into = mmsg.BatchSocket(receiver, batch=16)
    destination = _address(receiver)
    # Equal sizes (a GSO run), then a shorter tail, then assorted sizes.
    payloads = [bytes([i]) * 1200 for i in range(40)] + [b"tail"] + [bytes([i]) * (100 + i) for i in range(19)]
    assert out.send([(p, destination) for p in payloads]) == 60
    assert into.batch == 16 and out.batch == 64  # one recv() reads at most this many
    received = receive(into, receiver, 60)
    assert [d for d, _ in received] == payloads
    assert {a for _, a in received} == {_address(sender)}
    assert into.recv() == []  # nothing more waiting: an empty list, not an error
    if not gso:
        assert out.gso is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_NO_CHECK is a Linux socket option")
def test_a_socket_refusing_gso_turns_it_off_and_still_delivers_everything(mmsg: ModuleType) -> None:
    sender, receiver = _udp(socket.AF_INET, "127.0.0.1"), _udp(socket.AF_INET, "127.0.0.1")
    try:
        # Linux refuses UDP GSO (EINVAL) on a socket sending without checksums.
        sender.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_NO_CHECK", 11), 1)
        out = mmsg.BatchSocket(sender)
        payloads = [bytes([i]) * 1350 for i in range(10)] + [b"short"]
        assert out.send([(p, _address(receiver)) for p in payloads]) == 11
        assert out.gso is False
        assert [d for d, _ in receive(mmsg.BatchSocket(receiver), receiver, 11)] == payloads
    finally:
        sender.close()
        receiver.close()


def test_datagrams_to_several_destinations_each_arrive_in_order(mmsg: ModuleType) -> None:
    sender = _udp(socket.AF_INET, "127.0.0.1")
    receivers = [_udp(socket.AF_INET, "127.0.0.1") for _ in range(3)]
    try:
        out = mmsg.BatchSocket(sender)
        batch = [(f"{i}:{n}".encode() * 50, _address(r)) for n in range(10) for i, r in enumerate(receivers)]
        assert out.send(batch) == 30
        for i, receiver in enumerate(receivers):
            got = receive(mmsg.BatchSocket(receiver), receiver, 10)
            assert [d for d, _ in got] == [f"{i}:{n}".encode() * 50 for n in range(10)]
    finally:
        sender.close()
        for receiver in receivers:
            receiver.close()


def test_a_refused_datagram_is_skipped_and_the_rest_are_sent(mmsg: ModuleType,
                                                              pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    host, port = _address(receiver)
    batch = [(b"a" * 500, (host, port)), (b"b" * 500, (host, 0)), (b"c" * 500, (host, port))]  # port 0: EINVAL
    assert mmsg.BatchSocket(sender).send(batch) == 2
    got = receive(mmsg.BatchSocket(receiver), receiver, 2)
    assert [d[:1] for d, _ in got] == [b"a", b"c"]


def test_a_host_name_destination_is_still_sent(mmsg: ModuleType) -> None:
    sender, receiver = _udp(socket.AF_INET, "127.0.0.1"), _udp(socket.AF_INET, "127.0.0.1")
    try:
        port = _address(receiver)[1]
        assert mmsg.BatchSocket(sender).send([(b"named", ("localhost", port)), (b"numeric", ("127.0.0.1", port))]) == 2
        got = receive(mmsg.BatchSocket(receiver), receiver, 2)
        assert sorted(d for d, _ in got) == [b"named", b"numeric"]
    finally:
        sender.close()
        receiver.close()


def test_datagrams_larger_than_a_receive_slot_are_received_after_one_lossy_read(
        mmsg: ModuleType, pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    out, into = mmsg.BatchSocket(sender), mmsg.BatchSocket(receiver)
    big = [bytes([n]) * 9000 for n in range(3)]
    assert out.send([(b, _address(receiver)) for b in big]) == 3
    readable, _, _ = select.select([receiver], [], [], 5.0)
    assert readable
    first = into.recv()
    # The compiled one starts with 2 KiB slots: what did not fit is dropped and counted once.
    assert [d for d, _ in first] == [b for b in big if len(first) == 3]
    assert len(first) + into.truncated == 3
    lost = into.truncated
    assert out.send([(b, _address(receiver)) for b in big]) == 3
    assert [d for d, _ in receive(into, receiver, 3)] == big
    assert into.truncated == lost


def test_batch_must_be_positive(mmsg: ModuleType) -> None:
    sock = _udp(socket.AF_INET, "127.0.0.1")
    try:
        with pytest.raises(ValueError, match="batch"):
            mmsg.BatchSocket(sock, batch=0)
    finally:
        sock.close()
