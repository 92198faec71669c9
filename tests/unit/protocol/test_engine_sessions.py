"""Engine conversations in memory: handshake, sessions, streams, datagrams, close, drain."""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.settings import DIALECT_DRAFT02, DIALECT_DRAFT15
from pywebtransport._wire import buffer, frames
from pywebtransport.exceptions import DatagramTooLargeError, SessionError, StreamClosedError
from pywebtransport.types import SessionState

from .harness import Pair, draft02_only


def test_handshake_exchanges_settings_and_records_the_dialect() -> None:
    pair = Pair()
    pair.run()
    server_ready = pair.one("server", ev.H3Ready)
    client_ready = pair.one("client", ev.H3Ready)
    assert server_ready.dialect == DIALECT_DRAFT15
    assert client_ready.settings[c.SETTINGS_ENABLE_CONNECT_PROTOCOL] == 1
    assert c.SETTINGS_ENABLE_CONNECT_PROTOCOL not in server_ready.settings  # only servers send it
    for setting in (c.SETTINGS_ENABLE_WEBTRANSPORT, c.SETTINGS_H3_DATAGRAM, c.SETTINGS_H3_DATAGRAM_DRAFT04,
                    c.SETTINGS_WT_ENABLED):
        assert client_ready.settings[setting] == 1
    assert pair.client.dialect == DIALECT_DRAFT15


def test_a_draft02_peer_is_recognised_and_gets_no_session_flow_control() -> None:
    pair = Pair(tweak_client=draft02_only)
    sid = pair.open_session()
    assert pair.server.dialect == DIALECT_DRAFT02
    assert pair.server.session(sid).flow_control is False
    # The client heard draft-15 from the server, but flow control needs both ends to speak it.
    assert pair.client.dialect == DIALECT_DRAFT15
    assert pair.client.session(sid).flow_control is False


def test_session_request_carries_path_authority_origin_and_headers() -> None:
    pair = Pair()
    pair.run()
    sid = pair.client.open_session(authority="localhost:4433", path="/chat?room=1", origin="https://a.test",
                                   headers={"X-Token": "abc"})
    pair.run()
    request = pair.one("server", ev.SessionRequested)
    assert request.session_id == sid == 0
    assert request.path == "/chat?room=1"
    assert request.authority == "localhost:4433"
    assert request.origin == "https://a.test"
    assert request.protocol in ("webtransport", "webtransport-h3")
    assert request.headers["x-token"] == "abc"
    assert request.headers["sec-webtransport-http3-draft02"] == "1"
    assert pair.server.session(sid).state is SessionState.CONNECTING


def test_accepted_session_is_established_on_both_sides() -> None:
    pair = Pair()
    sid = pair.open_session()
    assert pair.client.session(sid).state is SessionState.CONNECTED
    assert pair.server.session(sid).state is SessionState.CONNECTED


def test_rejected_session_reports_the_status_to_the_client() -> None:
    pair = Pair()
    sid = pair.open_session(accept=False)
    pair.server.reject_session(sid, 404)
    pair.run()
    rejected = pair.one("client", ev.SessionRejected)
    assert rejected.session_id == sid and rejected.status_code == 404
    assert pair.client.session(sid).state is SessionState.CLOSED
    assert not pair.take("client", ev.SessionEstablished)


def test_a_rejected_session_leaves_no_close_to_confirm_at_either_end() -> None:
    """The refusal ended the session at both ends: a connection closed afterwards has nothing
    to wait for. The client waited the whole close-confirm grace (0.25 s) for a FIN that had
    come with the response and been taken with the finished stream."""
    pair = Pair()
    sid = pair.open_session(accept=False)
    pair.server.reject_session(sid, 403)
    pair.run()
    assert pair.one("client", ev.SessionRejected).status_code == 403
    for engine in (pair.client, pair.server):
        assert engine.unconfirmed_closes() == []
        assert engine.session_close_settled(sid) and engine.session_close_confirmed(sid)


def test_reject_requires_an_error_status() -> None:
    pair = Pair()
    sid = pair.open_session(accept=False)
    with pytest.raises(ValueError, match="3xx-5xx"):
        pair.server.reject_session(sid, 200)


def test_bidirectional_stream_echo_both_directions() -> None:
    pair = Pair()
    sid = pair.open_session()
    # client-initiated
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"hello", end_stream=True)
    pair.run()
    opened = pair.one("server", ev.StreamOpened)
    assert (opened.session_id, opened.stream_id, opened.is_unidirectional) == (sid, stream_id, False)
    assert pair.stream_payload("server", stream_id) == (b"hello", True)
    pair.server.send_stream_data(stream_id, b"HELLO", end_stream=True)
    pair.run()
    assert pair.stream_payload("client", stream_id) == (b"HELLO", True)
    # server-initiated
    server_stream = pair.server.open_stream(sid, is_unidirectional=False)
    pair.server.send_stream_data(server_stream, b"ping")
    pair.run()
    assert pair.one("client", ev.StreamOpened).stream_id == server_stream
    assert pair.stream_payload("client", server_stream) == (b"ping", False)
    pair.client.send_stream_data(server_stream, b"pong", end_stream=True)
    pair.run()
    assert pair.stream_payload("server", server_stream) == (b"pong", True)


def test_unidirectional_streams_both_directions() -> None:
    pair = Pair()
    sid = pair.open_session()
    up = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(up, b"x" * 5000, end_stream=True)
    down = pair.server.open_stream(sid, is_unidirectional=True)
    pair.server.send_stream_data(down, b"y" * 7000, end_stream=True)
    pair.run()
    assert pair.one("server", ev.StreamOpened).is_unidirectional
    assert pair.one("client", ev.StreamOpened).is_unidirectional
    assert pair.stream_payload("server", up) == (b"x" * 5000, True)
    assert pair.stream_payload("client", down) == (b"y" * 7000, True)
    with pytest.raises(StreamClosedError):
        pair.client.send_stream_data(down, b"not allowed")


def test_large_stream_payload_arrives_intact() -> None:
    pair = Pair()
    sid = pair.open_session()
    payload = bytes(range(256)) * 4096  # 1 MiB
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, payload, end_stream=True)
    received = bytearray()
    fin = False
    for _ in range(200):
        pair.run()
        for event in pair.take("server", ev.StreamDataReceived):
            received += event.data
            fin = fin or event.end_stream
            pair.server.consume_stream_data(stream_id, len(event.data))
        if fin:
            break
    assert fin and bytes(received) == payload


def test_datagrams_both_ways_with_quarter_stream_id() -> None:
    pair = Pair()
    sid = pair.open_session()
    assert pair.client.send_datagram(sid, b"up")
    assert pair.server.send_datagram(sid, b"down")
    pair.run()
    assert [(e.session_id, e.data) for e in pair.take("server", ev.DatagramReceived)] == [(sid, b"up")]
    assert [(e.session_id, e.data) for e in pair.take("client", ev.DatagramReceived)] == [(sid, b"down")]
    assert pair.client.session(sid).datagrams_sent == 1
    assert pair.server.session(sid).datagram_bytes_received == 2


def test_oversize_datagram_is_refused_before_aioquic_sees_it() -> None:
    pair = Pair()
    sid = pair.open_session()
    limit = pair.client.max_datagram_size(sid)
    assert 1000 < limit < 1400
    with pytest.raises(DatagramTooLargeError) as info:
        pair.client.send_datagram(sid, b"z" * (limit + 1))
    assert info.value.limit == limit
    assert pair.client.quic.pending_datagrams == 0
    assert pair.client.send_datagram(sid, b"z" * limit)  # the largest one still goes through
    pair.run()
    assert pair.one("server", ev.DatagramReceived).data == b"z" * limit


def test_datagram_size_limit_follows_the_peers_transport_parameter() -> None:
    pair = Pair(server_quic={"max_datagram_frame_size": 100})
    sid = pair.open_session()
    # 100 bytes for the frame, minus the frame type + length (3) and the 1-byte quarter stream id
    assert pair.client.max_datagram_size(sid) == 100 - 3 - 1


def test_close_with_code_and_reason_reaches_the_peer_and_resets_streams() -> None:
    pair = Pair()
    sid = pair.open_session()
    stream_id = pair.server.open_stream(sid, is_unidirectional=False)
    pair.server.send_stream_data(stream_id, b"data")
    pair.run()
    pair.take("client")
    pair.client.close_session(sid, 4242, "bye now")
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert (closed.error_code, closed.reason, closed.by_peer) == (4242, "bye now", True)
    local = pair.one("client", ev.SessionClosed)
    assert local.by_peer is False
    resets = pair.take("server", ev.StreamReset) + pair.take("server", ev.StreamStopSending)
    assert all(e.http_error_code == c.WT_SESSION_GONE for e in resets)
    assert pair.server.session(sid).state is SessionState.CLOSED


def test_server_close_reaches_the_client() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.server.close_session(sid, 7, "server says bye")
    pair.run()
    closed = pair.one("client", ev.SessionClosed)
    assert (closed.error_code, closed.reason) == (7, "server says bye")


def test_close_reason_over_1024_bytes_is_refused_locally() -> None:
    pair = Pair()
    sid = pair.open_session()
    with pytest.raises(ValueError):
        pair.client.close_session(sid, 1, "x" * 1025)
    assert pair.client.session(sid).state is SessionState.CONNECTED


def test_drain_moves_the_peer_to_draining() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.server.drain_session(sid)
    pair.run()
    assert pair.one("client", ev.SessionDraining).session_id == sid
    assert pair.client.session(sid).state is SessionState.DRAINING
    # a draining session still carries data
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"last words", end_stream=True)
    pair.run()
    assert pair.stream_payload("server", stream_id) == (b"last words", True)


def test_several_sessions_on_one_connection_are_independent() -> None:
    pair = Pair()
    first = pair.open_session("/a")
    second = pair.open_session("/b")
    assert first != second
    s1 = pair.client.open_stream(first, is_unidirectional=True)
    s2 = pair.client.open_stream(second, is_unidirectional=True)
    pair.client.send_stream_data(s1, b"one", end_stream=True)
    pair.client.send_stream_data(s2, b"two", end_stream=True)
    pair.run()
    by_session = {e.session_id: e.stream_id for e in pair.take("server", ev.StreamOpened)}
    assert by_session == {first: s1, second: s2}
    pair.client.close_session(first, 1, "")
    pair.run()
    assert pair.server.session(first).state is SessionState.CLOSED
    assert pair.server.session(second).state is SessionState.CONNECTED


def test_connect_stream_fin_without_capsule_closes_with_code_zero() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.client.quic.send_stream_data(sid, b"", end_stream=True)
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert (closed.error_code, closed.reason, closed.by_peer) == (0, "", True)


def test_operations_on_a_closed_session_raise() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.client.close_session(sid)
    with pytest.raises(SessionError):
        pair.client.open_stream(sid, is_unidirectional=False)
    with pytest.raises(SessionError):
        pair.client.send_datagram(sid, b"x")


def test_stream_reset_and_stop_sending_carry_application_codes() -> None:
    pair = Pair()
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"abc")
    pair.run()
    pair.take("server")
    pair.client.reset_stream(stream_id, 123)
    pair.run()
    reset = pair.one("server", ev.StreamReset)
    assert (reset.stream_id, reset.error_code) == (stream_id, 123)
    assert reset.http_error_code == c.WT_APP_ERROR_FIRST + 123 + 123 // 0x1E
    other = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(other, b"more")
    pair.run()
    pair.take("server")
    pair.server.stop_stream(other, 0xFFFFFFFF)
    pair.run()
    stop = pair.one("client", ev.StreamStopSending)
    assert (stop.stream_id, stop.error_code) == (other, 0xFFFFFFFF)
    with pytest.raises(StreamClosedError):
        pair.client.send_stream_data(other, b"after stop")


def test_engine_close_ends_every_session_and_the_connection() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.client.close(c.H3_NO_ERROR, "done")
    pair.run(horizon=5.0)
    assert pair.one("client", ev.SessionClosed).session_id == sid
    assert pair.one("server", ev.SessionClosed).by_peer is True
    terminated = pair.one("server", ev.ConnectionTerminated)
    assert terminated.by_peer and terminated.reason == "done"


def test_goaway_stops_new_sessions_but_keeps_established_ones() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.server.send_goaway()
    pair.run()
    goaway = pair.one("client", ev.GoawayReceived)
    assert goaway.last_id == sid + 4  # the first request id the server will not process
    with pytest.raises(SessionError, match="GOAWAY"):
        pair.client.open_session(authority="localhost", path="/late")
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"still fine", end_stream=True)
    pair.run()
    assert pair.stream_payload("server", stream_id) == (b"still fine", True)


@pytest.mark.parametrize("sender", ["server", "client"])
def test_a_goaway_tells_every_established_session_to_wind_down(sender: str) -> None:
    # Draft-15 §4.7: a GOAWAY "is also a signal to applications to initiate shutdown for all
    # WebTransport sessions". It had reached no application (found by a bug hunt).
    pair = Pair()
    first, second = pair.open_session(), pair.open_session()
    getattr(pair, sender).send_goaway()
    pair.run()
    receiver = "client" if sender == "server" else "server"
    assert sorted(e.session_id for e in pair.take(receiver, ev.SessionDraining)) == [first, second]
    engine = getattr(pair, receiver)
    assert {engine.session(first).state, engine.session(second).state} == {SessionState.DRAINING}
    stream_id = pair.client.open_stream(first, is_unidirectional=True)  # draining sessions carry on
    pair.client.send_stream_data(stream_id, b"still fine", end_stream=True)
    pair.run()
    assert pair.stream_payload("server", stream_id) == (b"still fine", True)


def test_a_connect_a_goaway_leaves_unprocessed_fails_at_once_as_safe_to_retry() -> None:
    from .harness import record_aborts

    pair = Pair()
    first = pair.open_session()
    aborts = record_aborts(pair.client)
    late = pair.client.open_session(authority="localhost", path="/late")
    # A GOAWAY naming the late request, written under the server engine: a server that neither
    # answers the request nor resets it (RFC 9114 §5.2 says it SHOULD reset it). The client
    # waited out its whole connect timeout (found by a bug hunt).
    pair.server.quic.send_stream_data(3, frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(late)))
    pair.run()
    rejected = pair.one("client", ev.SessionRejected)
    assert rejected.session_id == late and "safe to retry" in rejected.reason
    assert ("reset", late, c.H3_REQUEST_CANCELLED) in aborts
    assert pair.one("client", ev.SessionDraining).session_id == first  # below the GOAWAY's id: processed


def test_requests_after_goaway_are_rejected_unprocessed() -> None:
    from .harness import RawPeer, record_aborts

    pair = Pair()
    pair.open_session()
    aborts = record_aborts(pair.server)
    pair.server.send_goaway()
    late = RawPeer(pair).connect_request(b"/late")
    pair.run()
    assert not pair.take("server", ev.SessionRequested)
    assert aborts == [("stop", late, c.H3_REQUEST_REJECTED), ("reset", late, c.H3_REQUEST_REJECTED)]


@pytest.mark.parametrize("code", [256, 0xFFFFFFFF])
def test_stream_codes_over_8_bits_go_to_a_draft02_peer_as_255(code: int) -> None:
    # Draft-02 §4.3 limits stream codes to 8 bits; a larger one was mapped past the range a
    # draft-02 peer decodes, and Firefox read 256 as 0 (found by a browser bug hunt). Browsers
    # clamp theirs to 255, and so do we, towards draft-02 peers only.
    from .harness import draft02_only

    pair = Pair(tweak_client=draft02_only)
    sid = pair.open_session()
    stopped = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stopped, b"abc")
    pair.run()
    pair.take("server")
    pair.server.stop_stream(stopped, code)
    pair.server.reset_stream(stopped, code)
    pair.run()
    stop = pair.one("client", ev.StreamStopSending)
    reset = pair.one("client", ev.StreamReset)
    assert (stop.error_code, reset.error_code) == (255, 255)
    assert reset.http_error_code == 0x52E4A40FA9E2  # draft-02 §4.3: the last code of its range
    with pytest.raises(ValueError, match="code must be in"):
        pair.server.reset_stream(stopped, 2**32)  # out of range is refused as on any peer


def test_finished_streams_do_not_accumulate_in_the_engine() -> None:
    pair = Pair()
    sid = pair.open_session()
    for _ in range(20):
        for _ in range(40):
            stream_id = pair.client.open_stream(sid, is_unidirectional=False)
            pair.client.send_stream_data(stream_id, b"x", end_stream=True)
        pair.run()
        for event in pair.take("server", ev.StreamDataReceived):
            pair.server.consume_stream_data(event.stream_id, len(event.data))
            if event.end_stream:
                pair.server.send_stream_data(event.stream_id, b"y", end_stream=True)
        pair.run()
        pair.take("client")
    # 800 streams came and went; only a bounded number of records may remain.
    assert pair.client.stream_record_count < 300 and pair.server.stream_record_count < 300
    late = pair.client.open_stream(sid, is_unidirectional=True)  # and everything still works
    pair.client.send_stream_data(late, b"still", end_stream=True)
    pair.run()
    assert pair.stream_payload("server", late) == (b"still", True)
