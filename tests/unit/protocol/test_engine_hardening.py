"""Regression tests for the engine's hardening against hostile and unusual peers (issue #10).

Each test plays a conversation in memory (two engines, or one engine and hand-made bytes)
and asserts the exact code or outcome the peer gets.
"""

from __future__ import annotations

import pylsqpack
import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig, WebTransportEngine
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam
from pywebtransport._protocol.budget import SharedBudgets
from pywebtransport._protocol.session import Session
from pywebtransport._protocol.settings import DIALECT_DRAFT13
from pywebtransport._wire import buffer, capsules, frames
from pywebtransport.exceptions import DatagramError, LocalProtocolError
from pywebtransport.types import CloseCause, SessionState

from .harness import (
    CLIENT_ADDR,
    SERVER_ADDR,
    STATIC_ACCEPT_ANY,
    Pair,
    RawPeer,
    assert_client_connection_error,
    assert_server_connection_error,
    needs_per_stream_max_streams,
    no_h3,
    pretend_peer_sent,
    qpack_block,
    quic_stream_limits,
    record_aborts,
    record_received,
    response_status,
    with_settings,
    without_settings,
)

QPACK_ZEROS = {c.SETTINGS_QPACK_MAX_TABLE_CAPACITY: 0, c.SETTINGS_QPACK_BLOCKED_STREAMS: 0}
#: A draft-15 endpoint that does not opt into session flow control (no WT_INITIAL_*).
DRAFT15_NO_FLOW = {**QPACK_ZEROS, c.SETTINGS_WT_ENABLED: 1, c.SETTINGS_H3_DATAGRAM: 1}
CONTROL = frames.encode_uni_stream_header(c.STREAM_TYPE_CONTROL)
SETTINGS = frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings({c.SETTINGS_ENABLE_WEBTRANSPORT: 1,
                                                                         c.SETTINGS_H3_DATAGRAM: 1}))


def session(engine: WebTransportEngine, session_id: int) -> Session:
    found = engine.session(session_id)
    assert found is not None, f"no session {session_id}"
    return found


def raw_pair(**kwargs: object) -> tuple[Pair, RawPeer]:
    pair = Pair(tweak_client=no_h3, **kwargs)  # type: ignore[arg-type]
    pair.run()
    return pair, RawPeer(pair)


def connect_headers(path: bytes = b"/x", *, extra: list[tuple[bytes, bytes]] | None = None,
                    before: list[tuple[bytes, bytes]] | None = None) -> list[tuple[bytes, bytes]]:
    """A well-formed extended CONNECT, with fields put before (``before``) or after it."""
    return [*(before or []), (b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"https"),
            (b":authority", b"localhost"), (b":path", path), *(extra or [])]


def send_request(raw: RawPeer, headers: list[tuple[bytes, bytes]], stream_id: int | None = None) -> int:
    if stream_id is None:
        stream_id = raw.quic.get_next_available_stream_id(is_unidirectional=False)
    raw.send(stream_id, raw.headers_frame(stream_id, headers))
    return stream_id


def reserve_bidi(raw: RawPeer) -> int:
    """Take the next bidi stream id without sending a byte on it (aioquic refuses to write
    to a lower id once a higher one is open), so later streams can overtake its request."""
    stream_id = raw.quic.get_next_available_stream_id(is_unidirectional=False)
    raw.quic.send_stream_data(stream_id, b"")
    return stream_id


def send_capsules_raw(pair: Pair, session_id: int, payload: bytes, *, fin: bool = False) -> None:
    """Capsule bytes in one DATA frame on the CONNECT stream, behind the client engine's back."""
    pair.client.quic.send_stream_data(session_id, frames.encode_frame(c.FRAME_DATA, payload), end_stream=fin)


def capsules_in(data: bytes) -> list[tuple[int, capsules.CapsuleValue]]:
    """Every capsule in the DATA frames of a CONNECT stream's bytes."""
    parser = capsules.CapsuleParser()
    found: list[tuple[int, capsules.CapsuleValue]] = []
    for frame_type, payload in frames.FrameParser().feed(bytes(data)):
        if frame_type == c.FRAME_DATA:
            found += parser.feed(payload)
    return found


def echo_both_ways(pair: Pair, sid: int) -> None:
    """A bidirectional stream carries bytes each way, and a unidirectional one each way."""
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"up" * 3000, end_stream=True)
    pair.run()
    assert pair.one("server", ev.StreamOpened).stream_id == stream_id
    assert pair.stream_payload("server", stream_id) == (b"up" * 3000, True)
    pair.server.send_stream_data(stream_id, b"down" * 2000, end_stream=True)
    down = pair.server.open_stream(sid, is_unidirectional=True)
    pair.server.send_stream_data(down, b"uni", end_stream=True)
    pair.run()
    assert pair.stream_payload("client", stream_id) == (b"down" * 2000, True)
    assert pair.one("client", ev.StreamOpened).stream_id == down
    assert pair.stream_payload("client", down) == (b"uni", True)


# ---------------------------------------------------------------- 1. flow control needs both ends


def test_client_without_initial_limits_gets_a_session_without_flow_control_and_bytes_flow() -> None:
    pair = Pair(tweak_client=with_settings(DRAFT15_NO_FLOW))
    sid = pair.open_session()
    assert session(pair.server, sid).flow_control is False
    assert session(pair.client, sid).flow_control is False
    echo_both_ways(pair, sid)


def test_server_without_initial_limits_gives_the_client_a_session_without_flow_control() -> None:
    pair = Pair(tweak_server=with_settings({**DRAFT15_NO_FLOW, c.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1}))
    sid = pair.open_session()
    assert session(pair.client, sid).flow_control is False
    assert session(pair.server, sid).flow_control is False
    echo_both_ways(pair, sid)


# ---------------------------------------------------------------- 2. the upgrade token per dialect


def test_draft13_server_gets_the_webtransport_protocol_token() -> None:
    draft13 = {**QPACK_ZEROS, c.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1, c.SETTINGS_H3_DATAGRAM: 1,
               c.SETTINGS_WT_MAX_SESSIONS: 4, c.SETTINGS_WT_INITIAL_MAX_DATA: 1 << 20,
               c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 10, c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 10}
    pair = Pair(tweak_server=with_settings(draft13))
    pair.open_session(accept=False)  # asserts one SessionRequested on the server
    assert pair.client.dialect is DIALECT_DRAFT13
    assert session(pair.server, 0).headers[":protocol"] == "webtransport"


def test_draft15_server_gets_the_webtransport_h3_protocol_token() -> None:
    pair = Pair()
    pair.run()
    pair.client.open_session(authority="localhost", path="/x")
    pair.run()
    assert pair.one("server", ev.SessionRequested).protocol == "webtransport-h3"


# ---------------------------------------------------------------- 3. one session without flow control


def test_second_session_without_flow_control_is_rejected_and_the_first_carries_on() -> None:
    pair = Pair(tweak_client=with_settings(DRAFT15_NO_FLOW))
    aborts = record_aborts(pair.server)
    pair.run()
    first = pair.client.open_session(authority="localhost", path="/one")
    second = pair.client.open_session(authority="localhost", path="/two")
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == first
    assert aborts == [("stop", second, c.H3_REQUEST_REJECTED), ("reset", second, c.H3_REQUEST_REJECTED)]
    assert pair.one("client", ev.SessionRejected).session_id == second
    pair.server.accept_session(first)
    pair.run()
    assert pair.one("client", ev.SessionEstablished).session_id == first
    assert session(pair.client, first).state is SessionState.CONNECTED
    echo_both_ways(pair, first)


# ---------------------------------------------------------------- 4. streams that beat their CONNECT


def test_uni_and_bidi_streams_before_their_connect_are_delivered_after_acceptance() -> None:
    pair, raw = raw_pair()
    aborts = record_aborts(pair.server)
    raw.control()
    sid = reserve_bidi(raw)
    bidi = sid + 4
    raw.send(bidi, frames.encode_bidi_stream_header(sid) + b"early-bidi")
    uni = raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + b"early-uni", fin=True)
    pair.run()
    assert not pair.take("server", ev.StreamOpened)
    send_request(raw, connect_headers(), sid)
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == sid
    assert not pair.take("server", ev.StreamOpened)
    pair.server.accept_session(sid)
    pair.run()
    opened = {e.stream_id: e.is_unidirectional for e in pair.take("server", ev.StreamOpened)}
    assert opened == {bidi: False, uni: True}
    assert pair.stream_payload("server", bidi) == (b"early-bidi", False)
    assert pair.stream_payload("server", uni) == (b"early-uni", True)
    assert aborts == []


def test_a_stop_sending_on_a_stream_that_waits_for_its_session_is_reported_after_the_stream() -> None:
    # It was reported while the stream was still buffered, before any StreamOpened named it,
    # and the application, which learns of the stream later, never saw the code (found by
    # fuzzing).
    pair, raw = raw_pair()
    raw.control()
    sid = raw.connect_request()
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == sid
    bidi = raw.bidi(frames.encode_bidi_stream_header(sid) + b"early")
    pair.run()
    pair.client.quic.stop_stream(bidi, c.WT_APP_ERROR_FIRST + 9)  # application code 9
    pair.run()
    assert not [e for e in pair.take("server") if getattr(e, "stream_id", None) == bidi]
    pair.server.accept_session(sid)
    pair.run()
    events = [e for e in pair.take("server") if getattr(e, "stream_id", None) == bidi]
    assert [type(e) for e in events] == [ev.StreamOpened, ev.StreamStopSending, ev.StreamDataReceived]
    assert events[1].error_code == 9 and events[2].data == b"early"


@pytest.mark.parametrize("backend", seam.BACKENDS)
def test_datagrams_for_sessions_not_yet_established_are_bounded_and_charged(backend: str) -> None:
    # 100 CONNECTs held for SETTINGS that never come, 70 datagrams of 1150 bytes each: every
    # session's ring was bounded, the rings together were not, and nothing was charged to
    # the server's receive budget: 7.4 MB per connection (found by fuzzing).
    budgets = SharedBudgets.of()
    config = EngineConfig(max_buffered_bytes=1 << 20)
    pair = Pair(backend=backend, tweak_client=no_h3, server_budgets=budgets, server_config=config)
    pair.run()
    raw = RawPeer(pair)
    sessions = [raw.connect_request(b"/x") for _ in range(100)]  # no control stream: no SETTINGS
    pair.run()
    payload = b"x" * 1150
    for sid in sessions:
        for _ in range(70):
            pair.client.quic.send_datagram_frame(buffer.encode_varint(sid // 4) + payload)
        pair.run()
    held = pair.server.early_datagram_bytes
    assert 0 < held <= config.max_buffered_bytes
    assert budgets.receive is not None and budgets.receive.used == held  # charged, and only that
    raw.control()  # SETTINGS at last: the requests go to the application, then are refused
    pair.run()
    for request in pair.take("server", ev.SessionRequested):
        pair.server.reject_session(request.session_id, 404)
    pair.run()
    assert pair.server.early_datagram_bytes == 0 and budgets.receive.used == 0  # all given back


# ---------------------------------------------------------------- 5. the peer resets a CONNECT stream


def test_peer_reset_connect_stream_closes_our_half_and_ends_the_session() -> None:
    pair = Pair()
    sid = pair.open_session()
    aborts = record_aborts(pair.server)
    pair.client.quic.reset_stream(sid, c.H3_REQUEST_CANCELLED)  # RESET_STREAM only, no STOP_SENDING
    pair.run()
    assert ("reset", sid, c.H3_REQUEST_CANCELLED) in aborts
    closed = pair.one("server", ev.SessionClosed)
    assert closed.session_id == sid and closed.by_peer
    assert session(pair.server, sid).state is SessionState.CLOSED


@pytest.mark.parametrize(("abort", "code", "cause"), [
    pytest.param("reset", c.H3_REQUEST_CANCELLED, CloseCause.PEER_RESET, id="reset"),
    pytest.param("reset", c.WT_SESSION_GONE, CloseCause.PEER_RESET, id="reset-session-gone"),
    pytest.param("stop", c.H3_REQUEST_CANCELLED, CloseCause.PEER_RESET, id="stop"),
    pytest.param("stop", c.WT_SESSION_GONE, CloseCause.PEER_CLOSE, id="stop-session-gone"),
])
def test_an_abrupt_end_of_the_connect_stream_is_no_clean_close(abort: str, code: int, cause: CloseCause) -> None:
    # Draft-15 §6 equates only a *clean* end of the CONNECT stream (FIN) with WT_CLOSE_SESSION
    # code 0; a reset is an abrupt end, which had read as a clean close (PROTOCOL.md said so).
    # A STOP_SENDING with WT_SESSION_GONE is what §6 lets a peer closing the session send.
    pair = Pair()
    sid = pair.open_session()
    getattr(pair.client.quic, f"{abort}_stream")(sid, code)
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert (closed.session_id, closed.error_code, closed.cause, closed.by_peer) == (sid, 0, cause, True)


@pytest.mark.parametrize(("code", "named"), [
    pytest.param(c.H3_REQUEST_CANCELLED, "H3_REQUEST_CANCELLED (0x10c)", id="h3-code"),
    pytest.param(c.WT_APP_ERROR_FIRST + 7, "application error 7 (0x52e4a40fa8e2)", id="application-code"),
    pytest.param(0x1F * 3 + 0x21, "0x7e", id="unknown-code"),
])
def test_peer_reset_connect_stream_names_its_code_in_the_close_reason(code: int, named: str) -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.client.quic.reset_stream(sid, code)
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert closed.reason == f"the peer reset the CONNECT stream with {named}"


def test_150_reset_sessions_do_not_exhaust_quic_stream_credit() -> None:
    pair = Pair(tweak_server=quic_stream_limits(bidi=16))
    pair.run()
    for _ in range(150):
        sid = pair.open_session()
        pair.client.quic.reset_stream(sid, c.H3_REQUEST_CANCELLED)
        pair.run()
        assert pair.one("server", ev.SessionClosed).session_id == sid
        pair.take("client")
    sid = pair.open_session()  # asserts SessionEstablished on both sides
    assert session(pair.client, sid).state is SessionState.CONNECTED


# ---------------------------------------------------------------- 6. ending a session with many finished streams


@pytest.mark.parametrize("count", [128, 200, 257])
def test_ending_a_session_with_many_finished_streams_emits_one_session_closed(count: int) -> None:
    pair = Pair()
    sid = pair.open_session()
    for start in range(0, count, 50):
        for _ in range(min(50, count - start)):
            stream_id = pair.client.open_stream(sid, is_unidirectional=True)
            pair.client.send_stream_data(stream_id, b"z", end_stream=True)
        pair.run()
    assert len(pair.take("server", ev.StreamOpened)) == count
    pair.client.close_session(sid, 7, "done")
    pair.run()
    assert pair.one("client", ev.SessionClosed).error_code == 7
    assert pair.one("server", ev.SessionClosed).error_code == 7
    assert not pair.take("client", ev.ProtocolViolation)
    assert not pair.take("server", ev.ProtocolViolation)


# ---------------------------------------------------------------- 7. streams of refused or unknown sessions


def test_early_streams_of_a_request_refused_with_400_are_reset_with_session_gone() -> None:
    pair, raw = raw_pair()
    aborts = record_aborts(pair.server)
    received = record_received(pair.client)
    raw.control()
    sid = reserve_bidi(raw)
    bidi = sid + 4
    raw.send(bidi, frames.encode_bidi_stream_header(sid) + b"b")
    uni = raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + b"u")
    pair.run()
    send_request(raw, [h for h in connect_headers() if h[0] != b":path"], sid)
    pair.run()
    assert response_status(bytes(received[sid])) == 400
    assert ("stop", uni, c.WT_SESSION_GONE) in aborts
    assert ("stop", bidi, c.WT_SESSION_GONE) in aborts and ("reset", bidi, c.WT_SESSION_GONE) in aborts
    assert not pair.take("server", ev.StreamOpened)


def test_early_streams_of_a_request_refused_after_goaway_are_reset_with_session_gone() -> None:
    pair, raw = raw_pair()
    raw.control()
    first = send_request(raw, connect_headers(b"/first"))
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == first
    pair.server.send_goaway()
    pair.run()
    aborts = record_aborts(pair.server)
    late = raw.quic.get_next_available_stream_id(is_unidirectional=False)
    uni = raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, late) + b"u")
    pair.run()
    send_request(raw, connect_headers(b"/late"), late)
    pair.run()
    assert not pair.take("server", ev.SessionRequested)
    assert ("stop", uni, c.WT_SESSION_GONE) in aborts
    assert ("reset", late, c.H3_REQUEST_REJECTED) in aborts


def test_goaway_before_any_request_names_stream_0() -> None:
    pair = Pair()
    pair.run()
    pair.server.send_goaway()
    pair.run()
    assert not pair.take("client", ev.ProtocolViolation)
    assert pair.one("client", ev.GoawayReceived).last_id == 0
    assert pair.server.goaway_sent == 0


@pytest.mark.parametrize("is_unidirectional", [True, False])
def test_client_refuses_a_server_stream_for_a_session_it_never_opened(is_unidirectional: bool) -> None:
    pair = Pair()
    pair.run()
    aborts = record_aborts(pair.client)
    quic = pair.server.quic
    stream_id = quic.get_next_available_stream_id(is_unidirectional=is_unidirectional)
    preamble = (frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, 0) if is_unidirectional
                else frames.encode_bidi_stream_header(0))
    quic.send_stream_data(stream_id, preamble + b"who?")
    pair.run()
    assert not pair.take("client", ev.StreamOpened)
    expected = [("stop", stream_id, c.WT_SESSION_GONE)]
    if not is_unidirectional:
        expected.append(("reset", stream_id, c.WT_SESSION_GONE))
    assert aborts == expected


# ---------------------------------------------------------------- 8. SETTINGS checks


def test_server_refuses_connect_from_a_client_without_webtransport_settings() -> None:
    pair, raw = raw_pair()
    received = record_received(pair.client)
    raw.control(settings=dict(QPACK_ZEROS))
    sid = send_request(raw, connect_headers())
    pair.run()
    assert not pair.take("server", ev.SessionRequested)
    assert response_status(bytes(received[sid])) == 400


@pytest.mark.parametrize(("missing", "named"), [
    ((c.SETTINGS_ENABLE_CONNECT_PROTOCOL,), "SETTINGS_ENABLE_CONNECT_PROTOCOL"),
    ((c.SETTINGS_H3_DATAGRAM, c.SETTINGS_H3_DATAGRAM_DRAFT04), "SETTINGS_H3_DATAGRAM"),
])
def test_client_sends_no_connect_to_a_server_missing_a_setting(missing: tuple[int, ...], named: str) -> None:
    pair = Pair(tweak_server=without_settings(*missing))
    received = record_received(pair.server)
    pair.run()
    sid = pair.client.open_session(authority="localhost", path="/x")
    pair.run()
    rejected = pair.one("client", ev.SessionRejected)
    assert rejected.session_id == sid and named in rejected.reason
    assert not pair.take("server", ev.SessionRequested)
    assert not received.get(sid)  # not one byte of a request


def test_send_datagram_raises_when_the_peer_did_not_enable_http_datagrams() -> None:
    pair = Pair()
    sid = pair.open_session()
    assert pair.client.send_datagram(sid, b"fine")
    pretend_peer_sent(pair.client, {c.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1, c.SETTINGS_WT_ENABLED: 1})
    with pytest.raises(DatagramError):
        pair.client.send_datagram(sid, b"not allowed")


def test_wt_enabled_2_is_a_settings_error() -> None:
    pair, raw = raw_pair()
    raw.control(settings={c.SETTINGS_WT_ENABLED: 2, c.SETTINGS_H3_DATAGRAM: 1})
    assert_server_connection_error(pair, c.H3_SETTINGS_ERROR)


# ---------------------------------------------------------------- 9. header validation through the engine


@pytest.mark.parametrize("headers", [
    pytest.param(connect_headers(extra=[(b"origin", b"https://a.test\r\nx-evil: 1")]), id="crlf-in-origin"),
    pytest.param(connect_headers(extra=[(b"origin", b"https://a.test\nx")]), id="lf-in-origin"),
    pytest.param(connect_headers(before=[(b":status", b"200")]), id="status-in-request"),
    pytest.param(connect_headers(before=[(b"x-early", b"1")]), id="pseudo-after-regular"),
    pytest.param(connect_headers(extra=[(b"connection", b"keep-alive")]), id="connection-header"),
])
def test_malformed_request_headers_get_400_and_no_session(headers: list[tuple[bytes, bytes]]) -> None:
    pair, raw = raw_pair()
    received = record_received(pair.client)
    raw.control()
    sid = send_request(raw, headers)
    pair.run()
    assert not pair.take("server", ev.SessionRequested)
    assert not pair.take("server", ev.ProtocolViolation)
    assert response_status(bytes(received[sid])) == 400


def test_65000_one_byte_static_references_get_431_fast() -> None:
    pair, raw = raw_pair()
    received = record_received(pair.client)
    raw.control()
    sid = raw.quic.get_next_available_stream_id(is_unidirectional=False)
    block = qpack_block([*connect_headers(), *[STATIC_ACCEPT_ANY] * 65_000])
    assert len(block) < 65_200  # one byte per repeated field line
    raw.send(sid, frames.encode_frame(c.FRAME_HEADERS, block))
    pair.run()
    assert not pair.take("server", ev.SessionRequested)
    assert not pair.take("server", ev.ProtocolViolation)
    assert response_status(bytes(received[sid])) == 431


@pytest.mark.parametrize("response", [
    pytest.param([(b"content-type", b"text/plain")], id="no-status"),
    pytest.param([(b":status", b"200"), (b"x-bad", b"a\rb")], id="cr-in-value"),
])
def test_malformed_response_fails_only_that_session(response: list[tuple[bytes, bytes]]) -> None:
    pair = Pair()
    sid = pair.open_session(accept=False)
    _, block = pylsqpack.Encoder().encode(sid, response)
    pair.server.quic.send_stream_data(sid, frames.encode_frame(c.FRAME_HEADERS, block))
    pair.run()
    rejected = pair.one("client", ev.SessionRejected)
    assert rejected.session_id == sid
    assert not pair.take("client", ev.SessionEstablished)
    assert not pair.take("client", ev.ProtocolViolation)
    assert not pair.client.is_closed
    pair.take("server")
    again = pair.open_session("/again")  # asserts SessionEstablished on both sides
    assert session(pair.client, again).state is SessionState.CONNECTED


# ---------------------------------------------------------------- 10. framing


def test_headers_cut_by_fin_is_a_frame_error() -> None:
    pair, raw = raw_pair()
    raw.control()
    raw.bidi(frames.encode_frame_header(c.FRAME_HEADERS, 40) + b"\x00\x00\xd1", fin=True)
    assert_server_connection_error(pair, c.H3_FRAME_ERROR)


def test_fin_inside_a_capsule_aborts_the_session_with_message_error() -> None:
    pair = Pair()
    sid = pair.open_session()
    aborts = record_aborts(pair.server)
    send_capsules_raw(pair, sid, capsules.encode_close_session(3, "cut short")[:5], fin=True)
    pair.run()
    assert pair.one("server", ev.SessionClosed).error_code == c.H3_MESSAGE_ERROR
    assert ("reset", sid, c.H3_MESSAGE_ERROR) in aborts
    assert not pair.take("server", ev.ProtocolViolation)


def test_push_promise_from_a_client_is_frame_unexpected() -> None:
    pair, raw = raw_pair()
    raw.control()
    raw.bidi(frames.encode_frame(c.FRAME_PUSH_PROMISE, buffer.encode_varint(0) + b"\x00\x00"))
    assert_server_connection_error(pair, c.H3_FRAME_UNEXPECTED)


def test_client_initiated_push_stream_is_stream_creation_error() -> None:
    pair, raw = raw_pair()
    raw.control()
    raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_PUSH) + buffer.encode_varint(0))
    assert_server_connection_error(pair, c.H3_STREAM_CREATION_ERROR)


def test_goaway_with_trailing_bytes_is_a_frame_error() -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + SETTINGS + frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(0) + b"\x00"))
    assert_server_connection_error(pair, c.H3_FRAME_ERROR)


def test_goaway_id_that_grows_is_an_id_error() -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + SETTINGS + frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(4))
            + frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(8)))
    assert_server_connection_error(pair, c.H3_ID_ERROR)


def test_goaway_id_that_grows_at_the_client_is_an_id_error() -> None:
    pair = Pair(tweak_server=no_h3)
    pair.run()
    raw = RawPeer(pair, from_server=True)
    settings = frames.encode_settings({c.SETTINGS_WT_ENABLED: 1, c.SETTINGS_H3_DATAGRAM: 1,
                                       c.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1})
    raw.uni(CONTROL + frames.encode_frame(c.FRAME_SETTINGS, settings)
            + frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(4))
            + frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(8)))
    assert_client_connection_error(pair, c.H3_ID_ERROR)


def test_max_push_id_received_by_a_client_is_frame_unexpected() -> None:
    pair = Pair(tweak_server=no_h3)
    pair.run()
    raw = RawPeer(pair, from_server=True)
    settings = frames.encode_settings({c.SETTINGS_WT_ENABLED: 1, c.SETTINGS_H3_DATAGRAM: 1,
                                       c.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1})
    raw.uni(CONTROL + frames.encode_frame(c.FRAME_SETTINGS, settings)
            + frames.encode_frame(c.FRAME_MAX_PUSH_ID, buffer.encode_varint(10)))
    assert_client_connection_error(pair, c.H3_FRAME_UNEXPECTED)


def test_webtransport_stream_frame_type_on_the_control_stream_is_a_frame_error() -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + SETTINGS + buffer.encode_varint(c.FRAME_WEBTRANSPORT_STREAM) + buffer.encode_varint(0))
    assert_server_connection_error(pair, c.H3_FRAME_ERROR)


# ---------------------------------------------------------------- 11. WebTransport details


@pytest.mark.parametrize("trailing", [
    pytest.param(capsules.encode_drain_session(), id="known-capsule"),
    pytest.param(capsules.encode_capsule(0x29 * 3 + 0x17, b"after the close"), id="grease-capsule"),
    pytest.param(b"\x00", id="partial-capsule"),
])
def test_data_after_close_session_resets_the_connect_stream_with_message_error(trailing: bytes) -> None:
    pair = Pair()
    sid = pair.open_session()
    aborts = record_aborts(pair.server)
    send_capsules_raw(pair, sid, capsules.encode_close_session(5, "bye") + trailing)
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert (closed.error_code, closed.reason) == (5, "bye")
    assert ("reset", sid, c.H3_MESSAGE_ERROR) in aborts


@pytest.mark.parametrize("capsule", [
    pytest.param(capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_DATA, 1000), id="max-data-decreases"),
    pytest.param(capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_STREAMS_UNI, 1), id="max-streams-decreases"),
])
def test_bad_flow_control_capsules_close_the_session_with_flow_control_error(capsule: bytes) -> None:
    pair = Pair()
    sid = pair.open_session()
    assert session(pair.server, sid).flow_control
    aborts = record_aborts(pair.server)
    send_capsules_raw(pair, sid, capsule)
    pair.run()
    assert pair.one("server", ev.SessionClosed).error_code == c.WT_FLOW_CONTROL_ERROR
    assert ("reset", sid, c.WT_FLOW_CONTROL_ERROR) in aborts
    assert not pair.take("server", ev.ProtocolViolation)


@pytest.mark.parametrize("capsule_type", [c.CapsuleType.WT_MAX_STREAMS_BIDI, c.CapsuleType.WT_MAX_STREAMS_UNI],
                         ids=["bidi", "uni"])
def test_max_streams_over_2_60_closes_the_session_with_datagram_error(capsule_type: int) -> None:
    """Draft-15 §5.6.2: a Maximum Streams above 2^60 is an H3_DATAGRAM_ERROR, not a flow-control error."""
    pair = Pair()
    sid = pair.open_session()
    assert session(pair.server, sid).flow_control
    aborts = record_aborts(pair.server)
    send_capsules_raw(pair, sid, capsules.encode_varint_capsule(capsule_type, (1 << 60) + 1))
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert closed.error_code == c.H3_DATAGRAM_ERROR and "exceeds 2^60" in closed.reason
    assert ("reset", sid, c.H3_DATAGRAM_ERROR) in aborts
    assert not pair.take("server", ev.ProtocolViolation)


def test_max_streams_of_exactly_2_60_is_accepted() -> None:
    """Draft-15 §5.6.2: 2^60 itself is the largest allowed Maximum Streams."""
    pair = Pair()
    sid = pair.open_session()
    send_capsules_raw(pair, sid, capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_STREAMS_BIDI, 1 << 60))
    pair.run()
    assert not pair.take("server", ev.SessionClosed)
    assert session(pair.server, sid).is_open


def test_datagram_quarter_stream_id_over_2_60_is_a_datagram_error() -> None:
    pair = Pair()
    pair.open_session()
    pair.client.quic.send_datagram_frame(buffer.encode_varint(1 << 60) + b"far")
    assert_server_connection_error(pair, c.H3_DATAGRAM_ERROR)


def test_reset_code_outside_the_application_range_has_no_application_code() -> None:
    pair = Pair()
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"some")
    pair.run()
    pair.take("server")
    pair.client.quic.reset_stream(stream_id, c.H3_REQUEST_CANCELLED)
    pair.run()
    reset = pair.one("server", ev.StreamReset)
    assert (reset.stream_id, reset.error_code, reset.http_error_code) == (stream_id, None, c.H3_REQUEST_CANCELLED)


def test_bytes_after_stop_sending_count_against_credit_and_do_not_starve_the_sender() -> None:
    pair = Pair(server_config=EngineConfig(initial_max_data=1000))
    sid = pair.open_session()
    stopped = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stopped, b"s")
    pair.run()
    assert pair.one("server", ev.StreamOpened).stream_id == stopped
    pair.take("server", ev.StreamDataReceived)
    pair.server.consume_stream_data(stopped, 1)
    pair.server.stop_stream(stopped, 9)
    pair.client.send_stream_data(stopped, b"s" * 999)  # in flight when the STOP_SENDING leaves
    pair.run()
    other = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(other, b"o" * 3000, end_stream=True)
    got, fin = bytearray(), False
    for _ in range(20):
        pair.run()
        data, fin = pair.stream_payload("server", other)
        got += data
        pair.server.consume_stream_data(other, len(data))
        if fin:
            break
    assert (len(got), fin) == (3000, True)
    assert session(pair.server, sid).state is SessionState.CONNECTED


def test_data_blocked_is_answered_with_max_data() -> None:
    pair = Pair(server_config=EngineConfig(initial_max_data=5000))
    received = record_received(pair.client)
    sid = pair.open_session()
    send_capsules_raw(pair, sid, capsules.encode_varint_capsule(c.WT_CAPSULE_DATA_BLOCKED, 5000))
    pair.run()
    assert pair.one("server", ev.SessionBlocked).kind == ev.CreditKind.DATA
    assert (c.WT_CAPSULE_MAX_DATA, 5000) in capsules_in(bytes(received[sid]))


def test_connect_finished_before_acceptance_is_answered_with_request_cancelled() -> None:
    pair = Pair()
    sid = pair.open_session(accept=False)
    aborts = record_aborts(pair.server)
    pair.client.quic.send_stream_data(sid, b"", end_stream=True)
    pair.run()
    assert ("reset", sid, c.H3_REQUEST_CANCELLED) in aborts
    assert pair.one("server", ev.SessionClosed).session_id == sid
    assert pair.one("client", ev.SessionRejected).session_id == sid


# ---------------------------------------------------------------- 12. nothing leaks per stream


def assert_bounded(pair: Pair) -> None:
    for engine in (pair.server, pair.client):
        assert engine.stream_record_count < 200
        assert engine.quic.consumed_records < 200
        assert engine.session_count <= engine.config.max_sessions


def test_3000_fin_only_uni_streams_leave_nothing_behind() -> None:
    pair, raw = raw_pair()
    raw.control()
    for _ in range(30):
        for _ in range(100):
            last = raw.uni(b"", fin=True)
        pair.run()
    assert pair.server.quic.is_stream_discarded(last)  # all 3,000 arrived and were finished
    assert_bounded(pair)
    assert not pair.take("server", ev.ProtocolViolation)


def test_3000_unknown_type_uni_streams_leave_nothing_behind() -> None:
    pair, raw = raw_pair()
    raw.control()
    for _ in range(30):
        for _ in range(100):
            last = raw.uni(buffer.encode_varint(0x21) + b"?")
        pair.run()
    assert pair.server.quic.is_stream_discarded(last)  # all 3,000 arrived and were finished
    assert_bounded(pair)
    assert not pair.take("server", ev.ProtocolViolation)


def test_500_refused_requests_leave_nothing_behind() -> None:
    pair, raw = raw_pair()
    received = record_received(pair.client)
    raw.control()
    for _ in range(10):
        for _ in range(50):
            last = send_request(raw, [h for h in connect_headers() if h[0] != b":path"])
        pair.run()
    assert response_status(bytes(received[last])) == 400
    assert pair.server.quic.is_stream_discarded(last)
    assert_bounded(pair)
    assert not pair.take("server", ev.SessionRequested)
    assert not pair.take("server", ev.ProtocolViolation)


def test_300_closed_sessions_leave_nothing_behind() -> None:
    pair = Pair()
    for index in range(300):
        sid = pair.open_session()
        stream_id = pair.client.open_stream(sid, is_unidirectional=False)
        pair.client.send_stream_data(stream_id, b"hi", end_stream=True)
        pair.run()
        (pair.client if index % 2 else pair.server).close_session(sid, 0, "")
        pair.run()
        pair.take("server")
        pair.take("client")
    assert_bounded(pair)


# ---------------------------------------------------------------- 13. deadlines


def test_request_without_complete_headers_is_reset_after_request_timeout() -> None:
    pair, raw = raw_pair(server_config=EngineConfig(request_timeout=5.0))
    aborts = record_aborts(pair.server)
    raw.control()
    pair.run()
    started = pair.now
    stream_id = raw.bidi(frames.encode_frame_header(c.FRAME_HEADERS, 50) + b"\x00\x00")
    pair.run()
    timer = pair.server.get_timer()
    assert timer is not None and started + 5.0 <= timer <= started + 5.05
    assert aborts == []
    pair.run(horizon=6.0)
    assert aborts == [("stop", stream_id, c.H3_REQUEST_INCOMPLETE), ("reset", stream_id, c.H3_REQUEST_INCOMPLETE)]
    assert not pair.take("server", ev.ProtocolViolation)


def test_bidi_stream_stalled_inside_its_first_varint_is_refused_after_request_timeout() -> None:
    # 0x40 starts a two-byte varint (the WebTransport signal 0x41, or a frame type) and nothing follows.
    pair, raw = raw_pair(server_config=EngineConfig(request_timeout=5.0))
    aborts = record_aborts(pair.server)
    raw.control()
    pair.run()
    started = pair.now
    stream_id = raw.bidi(b"\x40")
    pair.run()
    timer = pair.server.get_timer()
    assert timer is not None and started + 5.0 <= timer <= started + 5.05
    pair.run(horizon=4.0)
    assert aborts == []
    pair.run(horizon=6.0)
    assert aborts == [("stop", stream_id, c.H3_REQUEST_INCOMPLETE), ("reset", stream_id, c.H3_REQUEST_INCOMPLETE)]
    assert not pair.server.is_closed and not pair.take("server", ev.ProtocolViolation)


def test_uni_stream_that_never_completes_its_type_is_refused_after_request_timeout() -> None:
    pair, raw = raw_pair(server_config=EngineConfig(request_timeout=5.0))
    aborts = record_aborts(pair.server)
    raw.control()
    pair.run()
    stream_id = raw.uni(b"\x40")
    pair.run(horizon=6.0)
    # Only STOP_SENDING: the server cannot reset a stream it does not send on.
    assert aborts == [("stop", stream_id, c.H3_STREAM_CREATION_ERROR)]
    assert not pair.server.is_closed and not pair.take("server", ev.ProtocolViolation)


def test_a_stream_that_completes_its_opening_in_time_is_left_alone() -> None:
    pair, raw = raw_pair(server_config=EngineConfig(request_timeout=5.0, early_stream_timeout=60.0))
    aborts = record_aborts(pair.server)
    raw.control()
    pair.run()
    header = frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, 0)  # type 0x54: two bytes
    stream_id = raw.uni(header[:1])
    pair.run(horizon=3.0)
    raw.send(stream_id, header[1:] + b"payload")  # the header completes: an early stream for session 0
    pair.run(horizon=8.0)
    assert aborts == []
    assert pair.server.early_stream_count == 1
    assert pair.server.get_timer() is None or pair.server.get_timer() > pair.now + 50


@pytest.mark.parametrize("ahead", [0, 4, 400], ids=["itself", "the-next-stream", "far-ahead"])
def test_bidi_stream_naming_itself_or_a_later_stream_as_session_is_refused_at_once(ahead: int) -> None:
    # The CONNECT stream of a session comes before its streams: no such session can ever arrive.
    pair, raw = raw_pair()
    aborts = record_aborts(pair.server)
    raw.control()
    pair.run()
    stream_id = raw.quic.get_next_available_stream_id(is_unidirectional=False)
    assert raw.bidi(frames.encode_bidi_stream_header(stream_id + ahead) + b"payload") == stream_id
    pair.run()
    assert aborts == [("stop", stream_id, c.WT_SESSION_GONE), ("reset", stream_id, c.WT_SESSION_GONE)]
    assert pair.server.early_stream_count == 0
    assert not pair.server.is_closed and not pair.take("server", ev.ProtocolViolation)


def test_early_stream_whose_session_never_comes_is_rejected_after_early_stream_timeout() -> None:
    pair, raw = raw_pair(server_config=EngineConfig(early_stream_timeout=3.0))
    aborts = record_aborts(pair.server)
    raw.control()
    pair.run()
    started = pair.now
    stream_id = raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, 0) + b"waiting")
    pair.run()
    assert pair.server.early_stream_count == 1
    timer = pair.server.get_timer()
    assert timer is not None and started + 3.0 <= timer <= started + 3.05
    pair.run(horizon=4.0)
    assert aborts == [("stop", stream_id, c.WT_BUFFERED_STREAM_REJECTED)]
    assert pair.server.early_stream_count == 0


def test_peer_that_never_sends_settings_gets_missing_settings() -> None:
    pair = Pair(tweak_client=no_h3, server_config=EngineConfig(settings_timeout=2.0))
    started = pair.now
    pair.run()
    timer = pair.server.get_timer()
    assert timer is not None and started + 2.0 <= timer <= started + 2.05
    assert not pair.server.is_closed
    pair.run(horizon=3.0)
    assert pair.one("server", ev.ProtocolViolation).error_code == c.H3_MISSING_SETTINGS
    assert pair.one("client", ev.ConnectionTerminated).error_code == c.H3_MISSING_SETTINGS


# ---------------------------------------------------------------- 14. QUIC MAX_STREAMS exhaustion


@needs_per_stream_max_streams
def test_open_stream_without_quic_credit_raises_and_credit_returns_later() -> None:
    pair = Pair(tweak_server=quic_stream_limits(bidi=4))
    sid = pair.open_session()
    opened = []
    while pair.client.can_open_stream(sid, is_unidirectional=False):
        opened.append(pair.client.open_stream(sid, is_unidirectional=False))
    assert len(opened) == 3  # the CONNECT stream holds the fourth
    next_id = pair.client.quic.next_stream_id(is_unidirectional=False)
    records = pair.client.stream_record_count
    with pytest.raises(LocalProtocolError):
        pair.client.open_stream(sid, is_unidirectional=False)
    assert pair.client.quic.next_stream_id(is_unidirectional=False) == next_id
    assert pair.client.stream_record_count == records
    pair.client.watch_stream_credit(sid, is_unidirectional=False)
    pair.run()
    assert not pair.take("client", ev.StreamCreditAvailable)
    for stream_id in opened:
        pair.client.send_stream_data(stream_id, b"q", end_stream=True)
    pair.run()
    for stream_id in opened:
        pair.server.send_stream_data(stream_id, b"a", end_stream=True)
    pair.run()
    credit = pair.one("client", ev.StreamCreditAvailable)
    assert (credit.session_id, credit.is_unidirectional) == (sid, False)
    assert pair.client.can_open_stream(sid, is_unidirectional=False)



def test_a_session_with_nothing_arriving_is_closed_after_session_idle_timeout() -> None:
    pair = Pair(server_config=EngineConfig(session_idle_timeout=5.0))
    sid = pair.open_session()
    deadline = pair.server.get_timer()
    assert deadline is not None and deadline <= pair.now + 5.0 + 0.05
    pair.client.send_datagram(sid, b"still here")  # activity pushes the deadline back
    pair.run(horizon=3.0)
    assert pair.server.session(sid).is_open
    pair.run(horizon=6.0)
    closed = pair.one("server", ev.SessionClosed)
    assert (closed.error_code, closed.reason, closed.by_peer) == (0, "session idle timeout", False)
    assert pair.one("client", ev.SessionClosed).by_peer


def test_close_is_confirmed_once_the_peer_ends_its_side_of_the_connect_stream() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.server.close_session(sid, 9, "bye")
    assert not pair.server.session_close_confirmed(sid)
    pair.run()
    assert pair.one("client", ev.SessionClosed).error_code == 9
    assert pair.server.session_close_confirmed(sid)


def test_a_close_is_settled_by_the_peers_fin_before_our_fin_is_acknowledged() -> None:
    """The peer answers our WT_CLOSE_SESSION with its FIN before its (delayed) ACK: the
    session is over at both ends, so a connection close has nothing left to wait for."""
    pair = Pair()
    sid = pair.open_session()
    pair.server.quic.ack_with_data = False  # a peer that holds its ACK for the delay, FIN or not
    pair.client.close_session(sid, 7, "done")
    assert pair.client.unconfirmed_closes() == [sid]
    for data, _ in pair.client.datagrams_to_send(pair.now):
        pair.server.receive_datagram(data, CLIENT_ADDR, pair.now)
    for data, _ in pair.server.datagrams_to_send(pair.now):  # its FIN, with no ACK yet (1 ms ACK delay)
        pair.client.receive_datagram(data, SERVER_ADDR, pair.now)
    assert not pair.client.stream_send_acknowledged(sid)
    assert pair.client.session_close_settled(sid)
    assert pair.client.unconfirmed_closes() == []


def test_a_close_the_peer_has_not_answered_stays_unsettled_until_acknowledged() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.client.close_session(sid, 7, "done")
    for _ in pair.client.datagrams_to_send(pair.now):  # lost
        pass
    assert not pair.client.session_close_settled(sid)
    assert pair.client.unconfirmed_closes() == [sid]
    pair.run(horizon=2.0)  # retransmitted and answered
    assert pair.client.session_close_settled(sid)
    assert pair.client.unconfirmed_closes() == []
