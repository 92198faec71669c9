"""QUIC's closing and draining periods in the endpoint (RFC 9000 §10.2): a retired connection
keeps its routes, answers late packets with its CONNECTION_CLOSE at a falling rate, sends
nothing when draining, never amplifies towards an unvalidated peer, and is forgotten when
its period ends."""

from __future__ import annotations

import time

import pytest

from pywebtransport._io.endpoint import MAX_CLOSING_PERIOD, ClosingConnection
from pywebtransport.types import Address
from tests.unit.io.fakes import FAKE_FD, Factory, FakeConnection, FakeLoop, FakeSocket, make_endpoint
from tests.unit.io.quic_bytes import long_packet, short_packet

PEER: Address = ("127.0.0.1", 50000)
MOVED_PEER: Address = ("127.0.0.1", 50002)
CID = bytes.fromhex("0011223344556677")
ISSUED = bytes.fromhex("c1c2c3c4c5c6c7c8")
CLOSE = b"\x40close-packet"


def later(seconds: float = 60.0) -> float:
    return time.monotonic() + seconds


def retired(*, close_datagrams: tuple[bytes, ...] = (CLOSE,), validated: bool = True,
            until: float | None = None) -> tuple[object, FakeLoop, FakeSocket, FakeConnection, ClosingConnection]:
    """An endpoint with one connection routed by two cids, then retired."""
    endpoint, loop, sock = make_endpoint(Factory())
    connection = FakeConnection()
    endpoint.register_cid(CID, connection)
    endpoint.register_cid(ISSUED, connection)
    closing = endpoint.retire(connection, close_datagrams=close_datagrams, until=later() if until is None else until,
                              validated=validated, peer=PEER)
    assert closing is not None
    return endpoint, loop, sock, connection, closing


def test_late_packets_are_answered_with_the_close_after_the_1st_2nd_4th_and_8th() -> None:
    endpoint, loop, sock, connection, closing = retired()
    answered_after: list[int] = []
    for n in range(1, 11):
        sent = len(sock.sent)
        sock.inbox.append((short_packet(CID if n % 2 else ISSUED), PEER))  # every cid of it still routes
        loop.wake_up()
        if len(sock.sent) > sent:
            answered_after.append(n)
    assert answered_after == [1, 2, 4, 8]
    assert sock.sent == [(CLOSE, PEER)] * 4  # the same datagram again (RFC 9000 §10.2.1)
    assert connection.received == []  # the connection itself is gone
    assert (closing.received, closing.answers) == (10, 4)


def test_every_datagram_of_the_close_is_sent_again_to_where_the_peer_now_is() -> None:
    coalesced = (b"\xc0initial-close", b"\xe0handshake-close")
    _, loop, sock, _, _ = retired(close_datagrams=coalesced)
    sock.inbox.append((short_packet(CID), MOVED_PEER))
    loop.wake_up()
    assert sock.sent == [(coalesced[0], MOVED_PEER), (coalesced[1], MOVED_PEER)]


def test_a_draining_connection_sends_nothing_and_swallows_packets() -> None:
    endpoint, loop, sock, connection, closing = retired(close_datagrams=())
    assert closing.draining
    sock.inbox.extend((short_packet(CID), PEER) for _ in range(20))
    loop.wake_up()
    assert sock.sent == [] and connection.received == []
    assert closing.received == 20


def test_an_unvalidated_peer_gets_at_most_three_times_what_it_sent() -> None:
    close = b"\xc0" + bytes(199)  # 200 bytes
    _, loop, sock, _, closing = retired(close_datagrams=(close,), validated=False)
    answered_after: list[int] = []
    for n in range(1, 9):  # 40-byte packets: 120 bytes of budget each
        sent = len(sock.sent)
        sock.inbox.append((short_packet(CID, size=40), PEER))
        loop.wake_up()
        if len(sock.sent) > sent:
            answered_after.append(n)
        assert sum(len(data) for data, _ in sock.sent) <= 3 * 40 * n
    assert answered_after == [2, 4, 8]  # the answer due after the 1st would have amplified
    assert closing.answers == 3


def test_a_retired_connection_is_forgotten_when_its_period_ends() -> None:
    endpoint, loop, sock, _, closing = retired()
    assert endpoint.closing_count == 1 and endpoint.connection_count == 0  # closing ones do not count
    [timer] = loop.live_timers()
    loop.fire(timer)
    loop.run_soon()
    assert endpoint.closing_count == 0 and closing.until is None
    assert loop.live_timers() == []
    sock.inbox.extend([(short_packet(CID), PEER), (short_packet(ISSUED), PEER)])
    loop.wake_up()
    assert sock.sent == [] and closing.received == 0  # nothing routes there any more


async def test_wait_quiet_returns_once_no_connection_is_closing() -> None:
    endpoint, loop, _, _, _ = retired()
    assert not await endpoint.wait_quiet(0.01)
    [timer] = loop.live_timers()
    loop.fire(timer)
    assert await endpoint.wait_quiet(0.01)


def test_the_period_is_capped() -> None:
    _, loop, _, _, closing = retired(until=later(10_000))
    [timer] = loop.live_timers()
    assert timer.delay is not None and timer.delay <= MAX_CLOSING_PERIOD
    assert closing.until is not None and closing.until <= time.monotonic() + MAX_CLOSING_PERIOD


@pytest.mark.parametrize("until", [None, 0.0])
def test_without_a_period_the_connection_is_forgotten_at_once(until: float | None) -> None:
    endpoint, loop, sock = make_endpoint(Factory())
    connection = FakeConnection()
    endpoint.register_cid(CID, connection)
    assert endpoint.retire(connection, close_datagrams=(CLOSE,), until=until, peer=PEER) is None
    assert endpoint.closing_count == 0 and endpoint.connection_count == 0 and loop.live_timers() == []
    sock.inbox.append((short_packet(CID), PEER))
    loop.wake_up()
    assert sock.sent == []


def test_a_client_socket_stays_open_for_the_closing_period_then_closes() -> None:
    endpoint, loop, sock = make_endpoint()
    client = FakeConnection("client")
    endpoint.attach_client(client)
    closing = endpoint.retire(client, close_datagrams=(CLOSE,), until=later(), peer=PEER, close_endpoint=True)
    assert closing is not None and not sock.closed
    sock.inbox.append((b"\x40anything from the server", PEER))  # a client socket routes everything to it
    loop.wake_up()
    assert sock.sent == [(CLOSE, PEER)] and client.received == []
    [timer] = loop.live_timers()
    loop.fire(timer)
    assert sock.closed and loop.readers == {}


def test_a_client_socket_without_a_period_closes_at_once() -> None:
    endpoint, _, sock = make_endpoint()
    client = FakeConnection("client")
    endpoint.attach_client(client)
    assert endpoint.retire(client, until=None, peer=PEER, close_endpoint=True) is None
    assert sock.closed


def test_closing_the_endpoint_ends_every_closing_period() -> None:
    endpoint, loop, sock, _, closing = retired()
    endpoint.close()
    assert endpoint.closing_count == 0 and closing.until is None
    assert loop.live_timers() == [] and sock.closed


def test_a_new_initial_for_a_closing_connections_cid_does_not_open_a_connection() -> None:
    factory = Factory()
    endpoint, loop, sock = make_endpoint(factory)
    sock.inbox.append((long_packet("initial", dcid=CID, scid=b"\xa1" * 4), PEER))
    loop.readers[FAKE_FD]()
    connection = factory.made[0]
    endpoint.retire(connection, close_datagrams=(CLOSE,), until=later(), peer=PEER)
    sock.inbox.append((long_packet("initial", dcid=CID, scid=b"\xa1" * 4), PEER))  # a retransmitted Initial
    loop.wake_up()
    assert len(factory.calls) == 1  # answered with the close, not a second connection
    assert sock.sent == [(CLOSE, PEER)]
