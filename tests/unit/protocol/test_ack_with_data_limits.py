"""Where a delayed ACK must not be made due with the data (``AioquicFamilyMethods._acked_pass``).

Found by review of the first version, which made the ACK due whenever data was queued:
- data held by pacing: the ACK stayed due at ``now``, so ``get_timer()`` said ``now`` and the
  endpoint re-armed its timer with a delay of 0 until the clock moved (a busy loop on a coarse
  clock, Windows before Python 3.13), and once it moved the answer left before qh3's pacer
  allowed it. The ACK now keeps its own delay when nothing was built;
- data blocked by flow control or the congestion window: each request answered while blocked
  sent its own ACK-only packet (8 for 8 requests within one ACK delay, where the library sends
  one). After one such ACK no more are forced until data flows;
- a transmit time before the last receive (two clocks in a sans-I/O caller): the ACK's delay
  came out negative and encoding it raised out of ``datagrams_to_send``.
Each case runs with the behaviour on and off (``ack_with_data``): off is the library alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from pywebtransport._protocol import quic as seam

from .harness import CLIENT_ADDR, Pair

REQUESTS = 8


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _stream(backend: str, ack_with_data: bool, **pair_options: Any) -> tuple[Pair, int]:
    """A session with one bidirectional stream the client opened; the server's ACKs as asked."""
    pair = Pair(backend=backend, **pair_options)
    sid = pair.open_session()
    pair.server.quic.ack_with_data = ack_with_data
    return pair, pair.client.open_stream(sid, is_unidirectional=False)


def _requests_while_blocked(pair: Pair, stream_id: int) -> int:
    """REQUESTS requests arrive 0.1 ms apart (all within the 1 ms ACK delay); the server
    answers each on the blocked stream. Returns the datagrams the server sends until the
    ACK delay of the first has passed."""
    sent = 0
    start = pair.now
    for index in range(REQUESTS):
        pair.now += 0.0001
        pair.client.send_stream_data(stream_id, b"request %d" % index)
        for data, _ in pair.client.datagrams_to_send(pair.now):
            pair.server.receive_datagram(data, CLIENT_ADDR, pair.now)
        pair.server.send_stream_data(stream_id, b"answer")
        sent += len(pair.server.datagrams_to_send(pair.now))
    pair.now = start + 0.003
    pair.server.handle_timer(pair.now)
    sent += len(pair.server.datagrams_to_send(pair.now))
    return sent


@pytest.mark.parametrize("ack_with_data", [False, True])
def test_flow_control_blocked_answers_send_no_ack_per_request(backend: str, ack_with_data: bool) -> None:
    pair, stream_id = _stream(backend, ack_with_data, client_quic={"max_stream_data": 16384})
    pair.client.send_stream_data(stream_id, b"hello")
    pair.run()
    pair.server.send_stream_data(stream_id, b"y" * 100_000)  # beyond the client's stream window
    pair.run()  # all the window allows is delivered and acknowledged
    assert pair.server.quic.send_buffered(stream_id) > 0  # the rest waits for MAX_STREAM_DATA
    assert pair.server.quic._loss.bytes_in_flight == 0  # noqa: SLF001
    sent = _requests_while_blocked(pair, stream_id)
    # The library alone: at most 2 (an answer that still fits, the ACK at its delay); a forced
    # ACK that left alone adds at most one, however many requests came.
    assert sent <= 3, f"{sent} datagrams for {REQUESTS} requests within one ACK delay"


@pytest.mark.parametrize("ack_with_data", [False, True])
def test_window_blocked_answers_send_no_ack_per_request(backend: str, ack_with_data: bool) -> None:
    pair, stream_id = _stream(backend, ack_with_data)
    pair.client.send_stream_data(stream_id, b"hello")
    pair.run()
    loss = pair.server.quic._loss  # noqa: SLF001
    pair.server.send_stream_data(stream_id, b"y" * 200_000)
    for _ in range(200):  # fill the congestion window; its packets are never delivered
        pair.server.datagrams_to_send(pair.now)
        if loss.bytes_in_flight + 1200 > loss.congestion_window:
            break
        pair.now += 0.0002
    assert loss.bytes_in_flight + 1200 > loss.congestion_window
    sent = _requests_while_blocked(pair, stream_id)
    # The library alone: at most 2 (an answer that still fits, the ACK at its delay); a forced
    # ACK that left alone adds at most one, however many requests came.
    assert sent <= 3, f"{sent} datagrams for {REQUESTS} requests within one ACK delay"


def _paced_answer(backend: str, ack_with_data: bool) -> tuple[Pair, float]:
    """The server has just sent a burst (its pacer is empty), a request arrives at that same
    instant and the application answers it; returns the pair and the pacing time of the answer."""
    pair, stream_id = _stream(backend, ack_with_data)
    pair.client.send_stream_data(stream_id, b"hello")
    pair.run()
    pair.server.send_stream_data(stream_id, b"y" * 60000)  # a burst: the pacer runs dry
    assert pair.server.datagrams_to_send(pair.now)
    pacing_at = pair.server.quic._pacing_at  # noqa: SLF001
    assert pacing_at is not None and pacing_at > pair.now  # pacing holds the rest
    pair.client.send_stream_data(stream_id, b"request")
    for data, _ in pair.client.datagrams_to_send(pair.now):
        pair.server.receive_datagram(data, CLIENT_ADDR, pair.now)
    pair.server.send_stream_data(stream_id, b"answer")
    assert pair.server.datagrams_to_send(pair.now) == []  # paced: nothing leaves yet
    pacing_at = pair.server.quic._pacing_at  # noqa: SLF001
    assert pacing_at is not None and pacing_at > pair.now
    return pair, pacing_at


@pytest.mark.parametrize("ack_with_data", [False, True])
def test_a_paced_pass_leaves_no_timer_due_at_the_same_instant(backend: str, ack_with_data: bool) -> None:
    pair, _ = _paced_answer(backend, ack_with_data)
    # What the endpoint does at a clock that has not moved: the timer is due, so handle it
    # and transmit again. That must make progress (send, or push the timer past now).
    for _ in range(20):
        timer = pair.server.get_timer()
        assert timer is not None
        if timer > pair.now:
            break
        pair.server.handle_timer(pair.now)
        if pair.server.datagrams_to_send(pair.now):
            break
    else:
        pytest.fail(f"timer stays due at now={pair.now} and every pass sends nothing: the endpoint re-arms "
                    "it with delay 0 until the clock ticks (a busy loop on a coarse clock)")


@pytest.mark.parametrize("ack_with_data", [False, True])
def test_pacing_still_applies_to_the_answer(ack_with_data: bool) -> None:
    pytest.importorskip("qh3")
    pair, pacing_at = _paced_answer("qh3", ack_with_data)
    soon = pair.now + 1e-6  # the next wake-up, 1 us later: well before the pacer allows a packet
    assert soon < pacing_at
    timer = pair.server.get_timer()
    assert timer is not None
    if timer <= soon:
        pair.server.handle_timer(soon)
    sent = pair.server.datagrams_to_send(soon)
    assert sent == [], f"{len(sent)} packet(s) left {pacing_at - soon:.6f} s before the pacer allowed"


@pytest.mark.parametrize("ack_with_data", [False, True])
def test_a_transmit_time_just_before_the_receive_does_not_raise(backend: str, ack_with_data: bool) -> None:
    pair, stream_id = _stream(backend, ack_with_data)
    pair.client.send_stream_data(stream_id, b"ping")
    for data, _ in pair.client.datagrams_to_send(pair.now):
        pair.server.receive_datagram(data, CLIENT_ADDR, pair.now)
    pair.server.send_stream_data(stream_id, b"pong")
    sent = pair.server.datagrams_to_send(pair.now - 0.0005)
    assert len(sent) == 1
