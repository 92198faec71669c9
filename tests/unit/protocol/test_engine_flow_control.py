"""Session flow control (drafts 07+): WT_MAX_DATA / WT_MAX_STREAMS both ways."""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam
from pywebtransport._wire import flow
from pywebtransport.exceptions import LocalProtocolError
from pywebtransport.types import SessionState

from .harness import Pair


def test_sender_stops_at_the_peers_max_data_and_resumes_on_credit() -> None:
    pair = Pair(server_config=EngineConfig(initial_max_data=1000, flow_control_auto_extend=False))
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"a" * 3000, end_stream=True)
    pair.run()
    data, fin = pair.stream_payload("server", stream_id)
    assert data == b"a" * 1000 and not fin
    assert pair.client.stream_send_buffered(stream_id) >= 2000
    blocked = pair.one("server", ev.SessionBlocked)
    assert (blocked.kind, blocked.limit) == ("data", 1000)
    pair.server.grant_data_credit(sid, 10_000)
    pair.run()
    assert pair.one("client", ev.SessionCreditUpdated).limit == 10_000
    data, fin = pair.stream_payload("server", stream_id)
    assert data == b"a" * 2000 and fin


def test_receive_window_auto_extends_as_the_application_consumes() -> None:
    pair = Pair(server_config=EngineConfig(initial_max_data=1000))
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"b" * 5000, end_stream=True)
    total = 0
    for _ in range(50):
        pair.run()
        for event in pair.take("server", ev.StreamDataReceived):
            total += len(event.data)
            pair.server.consume_stream_data(stream_id, len(event.data))
        if total == 5000:
            break
    assert total == 5000
    assert pair.server.session(sid).flow.recv_data.limit > 1000


def test_stream_credit_limits_opening_and_grant_releases_it() -> None:
    pair = Pair(server_config=EngineConfig(initial_max_streams_bidi=2, flow_control_auto_extend=False))
    sid = pair.open_session()
    pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.open_stream(sid, is_unidirectional=False)
    assert not pair.client.can_open_stream(sid, is_unidirectional=False)
    assert pair.client.can_open_stream(sid, is_unidirectional=True)
    with pytest.raises(LocalProtocolError):  # our own misuse, not the peer's fault
        pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.watch_stream_credit(sid, is_unidirectional=False)  # tells the peer WT_STREAMS_BLOCKED
    pair.run()
    assert pair.one("server", ev.SessionBlocked).kind == "streams_bidi"
    pair.server.grant_streams_credit(sid, 3, is_unidirectional=False)
    pair.run()
    update = pair.one("client", ev.SessionCreditUpdated)
    assert (update.kind, update.limit) == ("streams_bidi", 3)
    assert pair.client.can_open_stream(sid, is_unidirectional=False)
    assert pair.one("client", ev.StreamCreditAvailable) == ev.StreamCreditAvailable(sid, False)


def test_closed_peer_streams_return_stream_credit_automatically() -> None:
    pair = Pair(server_config=EngineConfig(initial_max_streams_uni=2))
    sid = pair.open_session()
    for _ in range(6):
        for _ in range(20):
            if pair.client.can_open_stream(sid, is_unidirectional=True):
                break
            pair.run()
        stream_id = pair.client.open_stream(sid, is_unidirectional=True)
        pair.client.send_stream_data(stream_id, b"x", end_stream=True)
        pair.run()
    assert len(pair.take("server", ev.StreamOpened)) == 6


def test_a_peer_ignoring_max_data_gets_wt_flow_control_error() -> None:
    pair = Pair(server_config=EngineConfig(initial_max_data=100, flow_control_auto_extend=False))
    sid = pair.open_session()
    pair.client.session(sid).flow.send_data = flow.SendCredit(10**9)  # a misbehaving client
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"c" * 500)
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert closed.error_code == c.WT_FLOW_CONTROL_ERROR
    assert pair.server.session(sid).state is SessionState.CLOSED
    assert pair.one("client", ev.SessionClosed).by_peer


def test_a_peer_opening_too_many_streams_gets_wt_flow_control_error() -> None:
    pair = Pair(server_config=EngineConfig(initial_max_streams_uni=1, flow_control_auto_extend=False))
    sid = pair.open_session()
    pair.client.session(sid).flow.send_streams[True] = flow.SendCredit(100)
    for _ in range(2):
        pair.client.open_stream(sid, is_unidirectional=True)
    pair.run()
    assert pair.one("server", ev.SessionClosed).error_code == c.WT_FLOW_CONTROL_ERROR


def test_flow_control_is_off_towards_draft02_peers() -> None:
    from .harness import draft02_only

    pair = Pair(client_config=EngineConfig(initial_max_data=10), tweak_client=draft02_only)
    sid = pair.open_session()
    stream_id = pair.server.open_stream(sid, is_unidirectional=True)
    pair.server.send_stream_data(stream_id, b"d" * 100_000, end_stream=True)
    received = 0
    for _ in range(50):
        pair.run()
        for event in pair.take("client", ev.StreamDataReceived):
            received += len(event.data)
            pair.client.consume_stream_data(stream_id, len(event.data))
        if received == 100_000:
            break
    assert received == 100_000


@pytest.mark.parametrize("backend", seam.BACKENDS)
def test_bytes_read_after_their_finished_stream_was_forgotten_still_return_session_credit(backend: str) -> None:
    # A stream whose FIN came is forgotten once QUIC lets go of it, which can be before the
    # application reads its bytes: those reads found no record, gave the session no credit
    # back, and 2,000 streams of 1,000 bytes stalled after 165 KB for good (found by a bug
    # hunt). Every byte must arrive, and the receiver's count of consumed bytes must be exact.
    window, count, size = 65536, 600, 1000
    pair = Pair(backend=backend, server_config=EngineConfig(initial_max_data=window))
    sid = pair.open_session()
    opened = delivered = 0
    for _ in range(400):
        while opened < count and pair.client.can_open_stream(sid, is_unidirectional=True):
            stream_id = pair.client.open_stream(sid, is_unidirectional=True)
            pair.client.send_stream_data(stream_id, b"x" * size, end_stream=True)
            opened += 1
        pair.run(max_rounds=10)
        for event in pair.take("server", ev.StreamDataReceived):  # read after the batch: records may be gone
            pair.server.consume_stream_data(event.stream_id, len(event.data))
            delivered += len(event.data)
        if delivered == count * size:
            break
    assert delivered == count * size
    server_flow = pair.server.session(sid).flow
    assert server_flow is not None and server_flow.recv_data.limit >= count * size  # all of it given back
