"""A delayed ACK leaves in the next packet that carries data, not 1 ms later on its own.

Both QUIC libraries hold an ACK for its delay (1 ms) even when a packet leaves sooner, so
the answer to a request went without the request's ACK and an ACK-only packet followed
(``AioquicFamilyMethods._ack_with_data``). A transmit pass with nothing queued must still
leave the ACK delayed, or every received packet would be answered by an ACK-only one.
"""

from __future__ import annotations

import pytest

from pywebtransport._protocol import quic as seam

from .harness import CLIENT_ADDR, SERVER_ADDR, Pair


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _request(pair: Pair, payload: bytes) -> int:
    """Open a session stream on the client and deliver its one packet to the server, at one instant."""
    stream_id = pair.client.open_stream(pair.open_session(), is_unidirectional=False)
    pair.client.send_stream_data(stream_id, payload)
    sent = pair.client.datagrams_to_send(pair.now)
    assert len(sent) == 1
    pair.server.receive_datagram(sent[0][0], CLIENT_ADDR, pair.now)
    return stream_id


def test_the_answer_carries_the_ack_of_the_request(backend: str) -> None:
    pair = Pair(backend=backend)
    stream_id = _request(pair, b"ping")
    assert pair.server.quic.ack_pending
    pair.server.send_stream_data(stream_id, b"pong")
    answer = pair.server.datagrams_to_send(pair.now)
    assert len(answer) == 1  # the answer only: no ACK-only packet beside it
    assert not pair.server.quic.ack_pending  # the ACK left in it
    pair.client.receive_datagram(answer[0][0], SERVER_ADDR, pair.now)
    loss = pair.client.quic._loss  # noqa: SLF001 - the client's own view: nothing unacknowledged
    assert loss.bytes_in_flight == 0


def test_a_pass_with_nothing_queued_keeps_the_ack_delayed(backend: str) -> None:
    pair = Pair(backend=backend)
    _request(pair, b"ping")
    assert pair.server.datagrams_to_send(pair.now) == []  # no ACK-only packet before the delay
    assert pair.server.quic.ack_pending
    timer = pair.server.quic.get_timer()
    assert timer is not None and timer > pair.now  # the ACK's own delay, as the library set it


def test_a_datagram_carries_the_ack_too(backend: str) -> None:
    pair = Pair(backend=backend)
    _request(pair, b"ping")
    pair.server.quic.send_datagram_frame(b"\x00datagram")
    assert len(pair.server.datagrams_to_send(pair.now)) == 1
    assert not pair.server.quic.ack_pending
