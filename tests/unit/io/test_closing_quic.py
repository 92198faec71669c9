"""What the endpoint's closing periods are built from, on each QUIC backend: the datagrams
that carried our CONNECTION_CLOSE (sent again verbatim, a peer that lost the first copy
understands the second), when the period ends, and a ConnectionTerminated reported as soon
as the close is known, once, instead of three PTOs later (RFC 9000 §10.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pywebtransport._protocol import quic as seam
from pywebtransport.utils import generate_self_signed_cert

CLIENT_ADDR = ("10.0.0.1", 50000)  # labels only: nothing is sent anywhere
SERVER_ADDR = ("10.0.0.2", 4433)


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    out: Path = tmp_path_factory.mktemp("closing-cert")
    cert = generate_self_signed_cert("localhost", output_dir=out)
    return str(cert.cert_path), str(cert.key_path)


@pytest.fixture(params=seam.available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class QuicPair:
    """A client and a server QUIC connection of one backend, exchanging datagrams in memory."""

    def __init__(self, backend: str, cert_files: tuple[str, str]) -> None:
        self.now = 100.0
        self.client = seam.create_quic_connection(backend, is_client=True, verify_peer=False, server_name="localhost")
        self.server = seam.create_quic_connection(
            backend, is_client=False, certfile=cert_files[0], keyfile=cert_files[1],
            original_destination_connection_id=self.client.original_destination_connection_id)
        self.client.connect(SERVER_ADDR, now=self.now)
        self.client_events: list[seam.QuicEvent] = []
        self.server_events: list[seam.QuicEvent] = []
        self.exchange()
        assert self.client.handshake_complete and self.server.handshake_complete

    def exchange(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            moved = False
            for data, _ in self.client.datagrams_to_send(self.now):
                self.server.receive_datagram(data, CLIENT_ADDR, self.now)
                moved = True
            for data, _ in self.server.datagrams_to_send(self.now):
                self.client.receive_datagram(data, SERVER_ADDR, self.now)
                moved = True
            self.drain()
            self.now += 0.001
            if not moved:
                return

    def drain(self) -> None:
        self.client_events.extend(iter(self.client.next_event, None))
        self.server_events.extend(iter(self.server.next_event, None))

    def terminations(self, side: str) -> list[seam.ConnectionTerminated]:
        events = self.client_events if side == "client" else self.server_events
        return [e for e in events if isinstance(e, seam.ConnectionTerminated)]


@pytest.fixture
def pair(backend: str, cert_files: tuple[str, str]) -> QuicPair:
    return QuicPair(backend, cert_files)


def test_the_close_is_reported_at_once_and_its_datagrams_are_kept(pair: QuicPair) -> None:
    assert not pair.server.is_closing and pair.server.closing_deadline is None
    pair.server.close(error_code=0x100, reason_phrase="bye")
    assert pair.server.is_closing
    [terminated] = [e for e in iter(pair.server.next_event, None) if isinstance(e, seam.ConnectionTerminated)]
    assert (terminated.error_code, terminated.reason_phrase, terminated.by_peer) == (0x100, "bye", False)
    sent = pair.server.datagrams_to_send(pair.now)
    assert sent and pair.server.close_datagrams == tuple(data for data, _ in sent)
    deadline = pair.server.closing_deadline
    assert deadline is not None and deadline > pair.now  # three PTOs from now


def test_the_peer_sees_the_close_at_once_without_a_timer_and_only_once(pair: QuicPair) -> None:
    pair.server.close(error_code=0x100, reason_phrase="bye")
    for data, _ in pair.server.datagrams_to_send(pair.now):
        pair.client.receive_datagram(data, SERVER_ADDR, pair.now)
    pair.drain()
    [terminated] = pair.terminations("client")  # before any timer ran
    assert (terminated.error_code, terminated.reason_phrase, terminated.by_peer) == (0x100, "bye", True)
    assert pair.client.is_closing and pair.client.close_datagrams == ()  # draining: it sends nothing
    deadline = pair.client.closing_deadline
    assert deadline is not None and deadline > pair.now
    assert pair.client.datagrams_to_send(pair.now) == []
    pair.client.handle_timer(deadline)  # the draining period ends: the library's own event is not repeated
    pair.drain()
    assert len(pair.terminations("client")) == 1
    assert pair.client.closing_deadline is None


def test_a_close_sent_again_verbatim_closes_a_peer_that_lost_the_first(pair: QuicPair) -> None:
    pair.server.close(error_code=0x100, reason_phrase="bye")
    pair.server.datagrams_to_send(pair.now)  # lost on the way
    pair.client.send_ping(1)
    late = pair.client.datagrams_to_send(pair.now)
    assert late
    for data, _ in late:
        pair.server.receive_datagram(data, CLIENT_ADDR, pair.now)  # a closing QUIC answers nothing itself...
    pair.drain()
    assert pair.terminations("client") == []
    for data in pair.server.close_datagrams:  # ...the endpoint answers with the kept datagrams
        pair.client.receive_datagram(data, SERVER_ADDR, pair.now + 0.01)
    pair.drain()
    [terminated] = pair.terminations("client")
    assert (terminated.error_code, terminated.reason_phrase) == (0x100, "bye")


def test_an_idle_timeout_has_no_closing_period(pair: QuicPair) -> None:
    timer = pair.client.get_timer()
    while timer is not None and not pair.client.is_closing:
        pair.client.handle_timer(timer)  # nothing arrives: loss probes, then the idle timeout
        pair.client.datagrams_to_send(timer)
        timer = pair.client.get_timer()
    pair.drain()
    [terminated] = pair.terminations("client")
    assert terminated.idle_timeout and not terminated.by_peer
    assert pair.client.closing_deadline is None and pair.client.close_datagrams == ()


def test_every_internal_the_closing_period_reads_exists(pair: QuicPair) -> None:
    assert seam.missing_attributes(pair.client) == []
    assert seam.missing_attributes(pair.server) == []
