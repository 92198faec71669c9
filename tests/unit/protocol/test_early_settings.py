"""A server's SETTINGS leave with its handshake flight (0.5-RTT), so a client has them, and
can send its CONNECT, as soon as its own handshake is complete: one round trip earlier than
when the server waits for the client's Finished. A server that asks for a client
certificate keeps them until the handshake is complete.
"""

from __future__ import annotations

import pytest

from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam

from .harness import CLIENT_ADDR, SERVER_ADDR, Pair


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _round_trip(pair: Pair) -> None:
    """The client's packets to the server, then the server's answer to the client."""
    for data, _ in pair.client.datagrams_to_send(pair.now):
        pair.server.receive_datagram(data, CLIENT_ADDR, pair.now)
    for data, _ in pair.server.datagrams_to_send(pair.now):
        pair.client.receive_datagram(data, SERVER_ADDR, pair.now)
    pair.now += 0.001


def _client_has_settings(pair: Pair) -> bool:
    while (event := pair.client.next_event()) is not None:
        if isinstance(event, ev.H3Ready):
            return True
    return False


def test_the_client_has_the_servers_settings_with_the_servers_handshake_flight(backend: str) -> None:
    pair = Pair(backend=backend)
    for _ in range(3):  # qh3 answers this client's first Initial with a HelloRetryRequest: two
        _round_trip(pair)
        if pair.client.quic.handshake_complete:
            break
    assert pair.client.quic.handshake_complete
    assert _client_has_settings(pair)  # in the same flight as the server's Finished
    assert not pair.server.quic.handshake_complete  # sent before the client's Finished came
    # The CONNECT goes with the client's Finished: the session is up one round trip later.
    sid = pair.client.open_session(authority="localhost:4433", path="/echo", origin="https://example.test")
    _round_trip(pair)
    requested = [e for e in iter(pair.server.next_event, None) if isinstance(e, ev.SessionRequested)]
    assert [e.session_id for e in requested] == [sid]


def test_a_server_asking_for_a_client_certificate_sends_its_settings_after_the_handshake() -> None:
    pair = Pair(backend="aioquic", server_quic={"request_client_certificate": True})
    _round_trip(pair)
    assert not _client_has_settings(pair)
    pair.run()
    assert pair.one("client", ev.H3Ready)


def test_a_session_asked_for_before_the_handshake_is_requested_with_the_clients_finished(backend: str) -> None:
    """What ``WebTransportClient.connect`` does: the request is made right after the first
    Initial; the engine holds it until the server's SETTINGS and sends it in that same pass."""
    pair = Pair(backend=backend)
    sid = pair.client.open_session(authority="localhost:4433", path="/echo", origin="https://example.test")
    for _ in range(3):
        _round_trip(pair)
        if pair.client.quic.handshake_complete:
            break
    assert pair.client.quic.handshake_complete and not pair.server.quic.handshake_complete
    for data, _ in pair.client.datagrams_to_send(pair.now):  # our Finished, SETTINGS and CONNECT
        pair.server.receive_datagram(data, CLIENT_ADDR, pair.now)
    assert pair.server.quic.handshake_complete
    requested = [e for e in iter(pair.server.next_event, None) if isinstance(e, ev.SessionRequested)]
    assert [e.session_id for e in requested] == [sid]
