"""UdpEndpoint against a fake loop and socket: routing, Version Negotiation, the 1200-byte
Initial rule, garbage, one transmit pass per wake-up, timers, forget() and close()."""

from __future__ import annotations

import logging

import pytest

from pywebtransport._io.packets import SUPPORTED_VERSIONS
from pywebtransport.types import Address
from tests.unit.io.fakes import FAKE_FD, Factory, FakeConnection, make_endpoint
from tests.unit.io.quic_bytes import (
    V2,
    long_packet,
    parse_version_negotiation,
    short_packet,
    unknown_version_packet,
)

PEER: Address = ("127.0.0.1", 50000)
OTHER_PEER: Address = ("127.0.0.1", 50001)
CLIENT_DCID = bytes.fromhex("0011223344556677")
CLIENT_SCID = bytes.fromhex("a1a2a3a4")


def test_full_size_initial_opens_a_connection_and_later_packets_reach_it() -> None:
    factory = Factory()
    endpoint, loop, sock = make_endpoint(factory)
    first = long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID, size=1200)
    again = long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID, size=1250)
    sock.inbox.extend([(first, PEER), (again, PEER)])
    loop.wake_up()
    assert factory.calls == [(CLIENT_DCID, PEER)]  # the retransmitted Initial reuses it
    assert factory.made[0].received == [(first, PEER), (again, PEER)]
    assert endpoint.connection_count == 1
    assert endpoint.datagrams_in == 2


def test_v2_initial_opens_a_connection() -> None:
    factory = Factory()
    _, loop, sock = make_endpoint(factory)
    sock.inbox.append((long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID, version=V2), PEER))
    loop.wake_up()
    assert factory.calls == [(CLIENT_DCID, PEER)]


def test_cids_a_connection_issues_later_route_to_it_until_retired() -> None:
    factory = Factory()
    endpoint, loop, sock = make_endpoint(factory)
    issued = bytes.fromhex("c1c2c3c4c5c6c7c8")

    def issue_on_first_datagram(data: bytes, addr: Address) -> None:
        # What WebTransportConnection does on ConnectionIdIssued from its engine.
        endpoint.register_cid(issued, factory.made[0])

    sock.inbox.append((long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID), PEER))
    loop.readers[FAKE_FD]()
    connection = factory.made[0]
    connection.on_datagram = issue_on_first_datagram
    sock.inbox.append((short_packet(CLIENT_DCID + b"-"), PEER))  # any packet: triggers the issue
    loop.wake_up()
    assert len(connection.received) == 2

    one_rtt = short_packet(issued)
    sock.inbox.append((one_rtt, OTHER_PEER))  # a new path: routing is by cid, not address
    loop.wake_up()
    assert connection.received[-1] == (one_rtt, OTHER_PEER)
    assert len(factory.calls) == 1

    endpoint.unregister_cid(issued)
    sock.inbox.append((short_packet(issued), PEER))
    loop.wake_up()
    assert len(connection.received) == 3  # a retired cid routes nowhere
    assert sock.sent == []


def test_unknown_version_gets_version_negotiation_and_no_connection() -> None:
    factory = Factory()
    _, loop, sock = make_endpoint(factory)
    sock.inbox.append((unknown_version_packet(dcid=CLIENT_DCID, scid=CLIENT_SCID, size=1200), PEER))
    loop.wake_up()
    assert factory.calls == []
    assert len(sock.sent) == 1
    packet, addr = sock.sent[0]
    assert addr == PEER
    dcid, scid, versions = parse_version_negotiation(packet)
    assert (dcid, scid) == (CLIENT_SCID, CLIENT_DCID)  # RFC 9000 §17.2.1: the cids swap
    assert versions == list(SUPPORTED_VERSIONS)


def test_small_unknown_version_datagram_is_not_answered() -> None:
    _, loop, sock = make_endpoint(Factory())
    sock.inbox.append((unknown_version_packet(dcid=CLIENT_DCID, scid=CLIENT_SCID, size=1199), PEER))
    loop.wake_up()
    assert sock.sent == []  # RFC 9000 §6: no amplification from small datagrams


def test_version_negotiation_packet_is_never_answered() -> None:
    factory = Factory()
    _, loop, sock = make_endpoint(factory)
    vn = long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID)
    vn = vn[:1] + bytes(4) + vn[5:]  # version 0
    sock.inbox.append((vn, PEER))
    loop.wake_up()
    assert sock.sent == [] and factory.calls == []


def test_initial_under_1200_bytes_is_dropped_without_a_connection() -> None:
    factory = Factory()
    endpoint, loop, sock = make_endpoint(factory)
    sock.inbox.append((long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID, size=1199), PEER))
    loop.wake_up()
    assert factory.calls == []
    assert endpoint.connection_count == 0
    assert sock.sent == []


@pytest.mark.parametrize("kind", ["handshake", "0-rtt", "retry"])
def test_full_size_non_initial_for_an_unknown_cid_opens_nothing(kind: str) -> None:
    factory = Factory()
    _, loop, sock = make_endpoint(factory)
    sock.inbox.append((long_packet(kind, dcid=CLIENT_DCID, scid=CLIENT_SCID, size=1300), PEER))
    sock.inbox.append((short_packet(CLIENT_DCID, size=1300), PEER))
    loop.wake_up()
    assert factory.calls == []
    assert sock.sent == []


def test_refused_connection_is_not_routed() -> None:
    factory = Factory(refuse=True)
    endpoint, loop, sock = make_endpoint(factory)
    initial = long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID)
    sock.inbox.extend([(initial, PEER), (initial, PEER)])
    loop.wake_up()
    assert len(factory.calls) == 2  # asked again: nothing was registered
    assert endpoint.connection_count == 0


def test_a_declined_initial_is_answered_with_the_refusal_at_once() -> None:
    asked: list[tuple[int, bytes, bytes]] = []

    def refuse(version: int, dcid: bytes, scid: bytes) -> bytes:
        asked.append((version, dcid, scid))
        return b"refused:" + scid

    endpoint, loop, sock = make_endpoint(Factory(refuse=True), refuse=refuse)
    sock.inbox.append((long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID), PEER))
    loop.wake_up()
    assert asked == [(1, CLIENT_DCID, CLIENT_SCID)]
    assert sock.sent == [(b"refused:" + CLIENT_SCID, PEER)]
    assert endpoint.refused == 1 and endpoint.connection_count == 0


def test_a_declined_small_or_non_initial_packet_gets_no_refusal() -> None:
    endpoint, loop, sock = make_endpoint(Factory(refuse=True), refuse=lambda *_: b"refused")
    sock.inbox.extend([(long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID, size=600), PEER),
                       (long_packet("handshake", dcid=CLIENT_DCID, scid=CLIENT_SCID), PEER)])
    loop.wake_up()
    assert sock.sent == [] and endpoint.refused == 0


GARBAGE = [
    b"",
    b"\x00",
    b"\xff" * 3,
    bytes(1500),  # short header without the fixed bit
    b"\xc0\x00\x00\x00\x01\x30" + bytes(1300),  # v1 dcid length 48 > 20
    b"\xc0\x00\x00\x00\x01\x08" + bytes(3),  # truncated dcid
    long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID, size=1300)[:1250],  # Length runs past the end
    b"GET / HTTP/1.1\r\n\r\n" * 80,
]


def test_garbage_datagrams_are_dropped_without_raising() -> None:
    factory = Factory()
    endpoint, loop, sock = make_endpoint(factory)
    sock.inbox.extend((g, PEER) for g in GARBAGE)
    loop.wake_up()
    assert endpoint.datagrams_in == len(GARBAGE)
    assert factory.calls == [] and sock.sent == []
    assert sock.inbox == type(sock.inbox)()  # all of them were read in that wake-up


def test_a_wake_up_makes_one_transmit_pass_for_many_connections() -> None:
    endpoint, loop, sock = make_endpoint(Factory())
    connections = [FakeConnection(str(i)) for i in range(10)]
    for i, connection in enumerate(connections):
        endpoint.register_cid(bytes([i]) * 8, connection)

        def reply(data: bytes, addr: Address, connection: FakeConnection = connection) -> None:
            connection.outbox.append((b"ack:" + data[1:9], addr))

        connection.on_datagram = reply
    for _ in range(3):
        for i in range(10):
            sock.inbox.append((short_packet(bytes([i]) * 8), PEER))
    assert len(loop.readers) == 1
    loop.readers[FAKE_FD]()
    assert len(loop.soon) == 1  # 30 datagrams, 10 connections: one flush queued
    assert all(len(c.received) == 3 and c.transmits == 0 for c in connections)
    assert loop.run_soon() == 1  # the tasks the datagrams woke get their turn first
    assert endpoint.flushes == 0 and all(c.transmits == 0 for c in connections)
    assert loop.run_soon() == 1
    assert endpoint.flushes == 1
    assert [c.transmits for c in connections] == [1] * 10
    assert len(sock.sent) == 30 and endpoint.datagrams_out == 30
    assert loop.soon == type(loop.soon)()


def test_a_connection_answered_within_the_turn_after_its_datagram_is_flushed_then() -> None:
    endpoint, loop, sock = make_endpoint(Factory())
    answered, quiet = FakeConnection("answered"), FakeConnection("quiet")
    endpoint.register_cid(b"\x01" * 8, answered)
    endpoint.register_cid(b"\x02" * 8, quiet)

    def task_step() -> None:  # the task the datagram woke answers it
        answered.outbox.append((b"answer", PEER))
        endpoint.schedule_flush(answered)

    answered.on_datagram = lambda data, addr: loop.call_soon(task_step)
    sock.inbox.extend([(short_packet(b"\x01" * 8), PEER), (short_packet(b"\x02" * 8), PEER)])
    loop.readers[FAKE_FD]()
    assert loop.run_soon() == 2
    # the answer left in the first pass; the connection nothing was written to waits a turn
    assert (answered.transmits, quiet.transmits) == (1, 0)
    assert sock.sent == [(b"answer", PEER)] and endpoint.flushes == 1
    assert loop.run_soon() == 1
    assert (answered.transmits, quiet.transmits) == (1, 1)
    assert loop.soon == type(loop.soon)()  # one turn, never more


def test_a_connection_that_keeps_receiving_still_transmits_every_other_turn() -> None:
    endpoint, loop, sock = make_endpoint(Factory())
    connection = FakeConnection()
    endpoint.register_cid(CLIENT_DCID, connection)
    for _ in range(6):
        sock.inbox.append((short_packet(CLIENT_DCID), PEER))
        loop.readers[FAKE_FD]()
        loop.run_soon()
    assert connection.transmits == 3


def test_close_transmits_what_a_received_datagram_left_waiting() -> None:
    endpoint, loop, sock = make_endpoint(Factory())
    connection = FakeConnection()
    endpoint.register_cid(CLIENT_DCID, connection)
    connection.on_datagram = lambda data, addr: connection.outbox.append((b"ack", addr))
    sock.inbox.append((short_packet(CLIENT_DCID), PEER))
    loop.readers[FAKE_FD]()
    endpoint.close()
    assert sock.sent == [(b"ack", PEER)]


def test_one_wake_up_reads_a_bounded_batch() -> None:
    endpoint, loop, sock = make_endpoint(Factory())
    connection = FakeConnection()
    endpoint.register_cid(CLIENT_DCID, connection)
    sock.inbox.extend((short_packet(CLIENT_DCID), PEER) for _ in range(100))
    loop.wake_up()
    assert len(connection.received) == 64  # the rest waits for the next readable event
    loop.wake_up()
    assert len(connection.received) == 100


def test_writes_from_many_connections_between_wake_ups_share_one_flush() -> None:
    endpoint, loop, sock = make_endpoint()
    connections = [FakeConnection(str(i)) for i in range(5)]
    for connection in connections:
        connection.outbox.append((b"x", PEER))
        endpoint.schedule_flush(connection)
        endpoint.schedule_flush(connection)
    assert loop.run_soon() == 1
    assert [c.transmits for c in connections] == [1] * 5
    assert len(sock.sent) == 5


def test_client_endpoint_hands_every_datagram_to_its_connection() -> None:
    endpoint, loop, sock = make_endpoint()
    client = FakeConnection("client")
    endpoint.attach_client(client)
    sock.inbox.extend([(b"\x00", PEER), (short_packet(CLIENT_DCID), PEER)])
    loop.wake_up()
    assert [d for d, _ in client.received] == [b"\x00", short_packet(CLIENT_DCID)]


def test_timer_is_armed_after_transmit_and_fires_into_the_connection() -> None:
    endpoint, loop, sock = make_endpoint()
    connection = FakeConnection()
    connection.timer = 0.0  # already due
    endpoint.transmit(connection)
    [timer] = loop.live_timers()
    assert timer.delay == 0.0
    connection.timer = None
    loop.fire(timer)
    assert len(connection.timer_calls) == 1
    assert loop.run_soon() == 1  # the timer's work is flushed once
    assert connection.transmits == 2
    assert loop.live_timers() == []


def test_a_deadline_pushed_back_keeps_the_armed_timer_which_then_rearms_without_firing() -> None:
    endpoint, loop, sock = make_endpoint()
    connection = FakeConnection()
    connection.timer = 1e12
    endpoint.transmit(connection)
    [timer] = loop.live_timers()
    for later in (1e12 + 1, 1e12 + 2, 1e12 + 3):  # QUIC pushes its loss and idle timers back per packet
        connection.timer = later
        endpoint.transmit(connection)
    assert loop.live_timers() == [timer] and len(loop.timers) == 1  # no handle made, none cancelled
    loop.fire(timer)  # the old deadline: not due any more
    assert connection.timer_calls == []
    [rearmed] = loop.live_timers()
    assert rearmed is not timer
    loop.fire(rearmed)  # the current deadline: due
    assert len(connection.timer_calls) == 1


def test_a_deadline_brought_forward_replaces_the_armed_timer() -> None:
    endpoint, loop, sock = make_endpoint()
    connection = FakeConnection()
    connection.timer = 1e12
    endpoint.transmit(connection)
    [first] = loop.live_timers()
    connection.timer = 0.0
    endpoint.transmit(connection)
    assert first.cancelled
    [sooner] = loop.live_timers()
    assert sooner.delay == 0.0
    loop.fire(sooner)
    assert len(connection.timer_calls) == 1


def test_a_timer_that_went_away_cancels_the_armed_one() -> None:
    endpoint, loop, sock = make_endpoint()
    connection = FakeConnection()
    connection.timer = 1e12
    endpoint.transmit(connection)
    [armed] = loop.live_timers()
    connection.timer = None
    endpoint.transmit(connection)
    assert armed.cancelled and loop.live_timers() == []


def test_forget_drops_routes_timer_and_pending_flush_of_a_closed_connection() -> None:
    factory = Factory()
    endpoint, loop, sock = make_endpoint(factory)
    sock.inbox.append((long_packet("initial", dcid=CLIENT_DCID, scid=CLIENT_SCID), PEER))
    loop.readers[FAKE_FD]()
    connection = factory.made[0]
    extra = bytes.fromhex("e1e2e3e4e5e6e7e8")
    endpoint.register_cid(extra, connection)
    connection.timer = 1e12
    connection.outbox.append((b"late", PEER))
    endpoint.transmit(connection)
    assert len(loop.live_timers()) == 1 and endpoint.connection_count == 1
    connection.outbox.append((b"never sent", PEER))
    endpoint.schedule_flush(connection)

    endpoint.forget(connection)
    assert loop.live_timers() == []
    assert endpoint.connection_count == 0
    loop.run_soon()
    assert [d for d, _ in sock.sent] == [b"late"]
    received = len(connection.received)
    sock.inbox.extend([(short_packet(extra), PEER), (short_packet(CLIENT_DCID), PEER)])
    loop.wake_up()
    assert len(connection.received) == received
    assert len(factory.calls) == 1


def test_a_failing_connection_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    endpoint, loop, sock = make_endpoint()
    broken, healthy = FakeConnection("broken"), FakeConnection("healthy")

    def explode(data: bytes, addr: Address) -> None:
        raise RuntimeError("boom")

    broken.on_datagram = explode
    endpoint.register_cid(b"b" * 8, broken)
    endpoint.register_cid(b"h" * 8, healthy)
    sock.inbox.extend([(short_packet(b"b" * 8), PEER), (short_packet(b"h" * 8), PEER)])
    with caplog.at_level(logging.ERROR, logger="pywebtransport._io.endpoint"):
        loop.wake_up()
    assert len(healthy.received) == 1
    assert "boom" in caplog.text


def test_close_flushes_pending_output_then_releases_the_socket() -> None:
    endpoint, loop, sock = make_endpoint()
    connection = FakeConnection()
    connection.outbox.append((b"bye", PEER))
    endpoint.schedule_flush(connection)
    endpoint.close()
    assert [d for d, _ in sock.sent] == [b"bye"]
    assert sock.closed and loop.readers == {}


def test_transmit_if_pending_makes_a_pass_only_for_a_connection_that_has_one_due() -> None:
    endpoint, loop, sock = make_endpoint(Factory())
    connection = FakeConnection()
    endpoint.register_cid(CLIENT_DCID, connection)
    endpoint.transmit_if_pending(connection)
    assert connection.transmits == 0  # nothing given to it since its last pass
    connection.outbox.append((b"written", PEER))
    endpoint.schedule_flush(connection)
    endpoint.transmit_if_pending(connection)
    assert connection.transmits == 1 and sock.sent == [(b"written", PEER)]
    loop.run_soon()
    assert connection.transmits == 1  # the queued pass found it done
    sock.inbox.append((short_packet(CLIENT_DCID), PEER))
    loop.readers[FAKE_FD]()
    endpoint.transmit_if_pending(connection)  # a datagram came: its pass is due too
    assert connection.transmits == 2
    endpoint.transmit_if_pending(connection)
    assert connection.transmits == 2
