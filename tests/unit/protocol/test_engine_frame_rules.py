"""HTTP/3 frame rules a fuzzing pass found answered wrongly: push-id frames on the control
stream (RFC 9114 §7.1, §7.2.3, §7.2.7), HEADERS after a CONNECT stream's header section
(§4.4) and interim responses (§4.1, §4.5). Every case is fed whole and byte by byte. And the
peer's SETTINGS_MAX_FIELD_SECTION_SIZE, which a client honours before it sends (§4.2.2)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._wire import buffer, capsules, frames

from .harness import (
    Pair,
    RawPeer,
    assert_client_connection_error,
    assert_server_connection_error,
    no_h3,
    record_aborts,
)

RawPairFactory = Callable[[], tuple[Pair, RawPeer]]

CONTROL = frames.encode_uni_stream_header(c.STREAM_TYPE_CONTROL)
SETTINGS = frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings({c.SETTINGS_ENABLE_WEBTRANSPORT: 1,
                                                                         c.SETTINGS_H3_DATAGRAM: 1}))
#: What a WebTransport server must announce before a client sends its CONNECT (draft-15 §3.1).
SERVER_SETTINGS = frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings({
    c.SETTINGS_WT_ENABLED: 1, c.SETTINGS_H3_DATAGRAM: 1, c.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1}))
CONNECT_HEADERS = [(b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"https"),
                   (b":authority", b"localhost"), (b":path", b"/x")]


@pytest.fixture(params=[False, True], ids=["whole", "byte-by-byte"])
def chunked(request: pytest.FixtureRequest) -> bool:
    """Whether raw bytes go out whole or one byte per QUIC write, the pair run in between."""
    return bool(request.param)


@pytest.fixture
def raw_client(chunked: bool) -> RawPairFactory:
    """A started pair whose client side writes raw HTTP/3 bytes to the server engine."""

    def make() -> tuple[Pair, RawPeer]:
        pair = Pair(tweak_client=no_h3)
        pair.run()
        return pair, RawPeer(pair, chunked=chunked)

    return make


@pytest.fixture
def raw_server(chunked: bool) -> RawPairFactory:
    """A started pair whose server side writes raw HTTP/3 bytes to the client engine."""

    def make() -> tuple[Pair, RawPeer]:
        pair = Pair(tweak_server=no_h3)
        pair.run()
        return pair, RawPeer(pair, chunked=chunked, from_server=True)

    return make


def varint_frame(frame_type: int, value: int) -> bytes:
    return frames.encode_frame(frame_type, buffer.encode_varint(value))


def capsule_data(payload: bytes) -> bytes:
    return frames.encode_frame(c.FRAME_DATA, payload)


# -- control stream: MAX_PUSH_ID and CANCEL_PUSH

def test_max_push_id_smaller_than_a_previous_one_is_an_id_error(raw_client: RawPairFactory) -> None:
    pair, raw = raw_client()
    raw.uni(CONTROL + SETTINGS + varint_frame(c.FRAME_MAX_PUSH_ID, 10) + varint_frame(c.FRAME_MAX_PUSH_ID, 5))
    assert_server_connection_error(pair, c.H3_ID_ERROR)


def test_max_push_id_that_repeats_or_grows_is_accepted_and_remembered(raw_client: RawPairFactory) -> None:
    pair, raw = raw_client()
    control = raw.uni(CONTROL + SETTINGS + varint_frame(c.FRAME_MAX_PUSH_ID, 5)
                      + varint_frame(c.FRAME_MAX_PUSH_ID, 5) + varint_frame(c.FRAME_MAX_PUSH_ID, 10))
    pair.run()
    assert not pair.take("server", ev.ProtocolViolation)
    raw.send(control, varint_frame(c.FRAME_MAX_PUSH_ID, 9))  # below the 10, not only below the first 5
    assert_server_connection_error(pair, c.H3_ID_ERROR)


def test_cancel_push_at_a_server_that_never_pushed_is_an_id_error(raw_client: RawPairFactory) -> None:
    pair, raw = raw_client()
    raw.uni(CONTROL + SETTINGS + varint_frame(c.FRAME_MAX_PUSH_ID, 10) + varint_frame(c.FRAME_CANCEL_PUSH, 5))
    assert_server_connection_error(pair, c.H3_ID_ERROR)


def test_cancel_push_at_a_client_that_allowed_no_push_is_an_id_error(raw_server: RawPairFactory) -> None:
    pair, raw = raw_server()
    raw.uni(CONTROL + SERVER_SETTINGS + varint_frame(c.FRAME_CANCEL_PUSH, 0))
    assert_client_connection_error(pair, c.H3_ID_ERROR)


@pytest.mark.parametrize("frame", [
    pytest.param(frames.encode_frame(c.FRAME_CANCEL_PUSH, buffer.encode_varint(5) + b"zz"), id="cancel-push-trailing"),
    pytest.param(frames.encode_frame(c.FRAME_CANCEL_PUSH, b""), id="cancel-push-empty"),
    pytest.param(frames.encode_frame(c.FRAME_MAX_PUSH_ID, b""), id="max-push-id-empty"),
    pytest.param(frames.encode_frame(c.FRAME_MAX_PUSH_ID, buffer.encode_varint(5) + b"\x00"),
                 id="max-push-id-trailing"),
    pytest.param(frames.encode_frame(c.FRAME_MAX_PUSH_ID, b"\x40"), id="max-push-id-cut-varint"),
])
def test_push_id_frame_whose_payload_is_not_exactly_one_varint_is_a_frame_error(
        frame: bytes, raw_client: RawPairFactory) -> None:
    pair, raw = raw_client()
    raw.uni(CONTROL + SETTINGS + frame)
    assert_server_connection_error(pair, c.H3_FRAME_ERROR)


# -- HEADERS after the CONNECT stream's header section

def connect_and_accept(pair: Pair, raw: RawPeer) -> int:
    raw.control()
    sid = raw.connect_request()
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == sid
    pair.server.accept_session(sid)
    pair.run()
    pair.one("server", ev.SessionEstablished)
    return sid


def test_headers_after_the_response_on_a_connect_stream_is_frame_unexpected(raw_client: RawPairFactory) -> None:
    pair, raw = raw_client()
    sid = connect_and_accept(pair, raw)
    raw.send(sid, raw.headers_frame(sid, [(b"x-trailer", b"1")])
             + capsule_data(capsules.encode_drain_session()))
    assert_server_connection_error(pair, c.H3_FRAME_UNEXPECTED)
    assert not pair.take("server", ev.SessionDraining)


def test_second_headers_before_the_response_is_frame_unexpected(raw_client: RawPairFactory) -> None:
    pair, raw = raw_client()
    raw.control()
    sid = raw.connect_request()
    raw.send(sid, raw.headers_frame(sid, [*CONNECT_HEADERS[:-1], (b":path", b"/other")]))
    assert_server_connection_error(pair, c.H3_FRAME_UNEXPECTED)


def client_connect(pair: Pair, raw: RawPeer) -> int:
    """The raw server announces WebTransport; the client engine sends its CONNECT."""
    raw.uni(CONTROL + SERVER_SETTINGS)
    pair.run()
    sid = pair.client.open_session(authority="localhost:4433", path="/x")
    pair.run()
    return sid


def status_frame(raw: RawPeer, sid: int, status: bytes) -> bytes:
    return raw.headers_frame(sid, [(b":status", status)])


def test_headers_after_the_2xx_response_at_a_client_is_frame_unexpected(raw_server: RawPairFactory) -> None:
    pair, raw = raw_server()
    sid = client_connect(pair, raw)
    raw.send(sid, status_frame(raw, sid, b"200") + raw.headers_frame(sid, [(b"x", b"y")])
             + capsule_data(capsules.encode_drain_session()))
    assert_client_connection_error(pair, c.H3_FRAME_UNEXPECTED)
    assert not pair.take("client", ev.SessionDraining)


# -- interim responses at the client

@pytest.mark.parametrize("interim", [b"100", b"103", b"199"])
def test_interim_responses_are_skipped_until_the_final_one(interim: bytes, raw_server: RawPairFactory) -> None:
    pair, raw = raw_server()
    sid = client_connect(pair, raw)
    raw.send(sid, status_frame(raw, sid, interim) + status_frame(raw, sid, b"103") + status_frame(raw, sid, b"200"))
    pair.run()
    assert not pair.take("client", ev.SessionRejected)
    assert pair.one("client", ev.SessionEstablished).session_id == sid
    assert not pair.take("client", ev.ProtocolViolation)


def test_interim_response_then_a_rejection_reports_the_final_status(raw_server: RawPairFactory) -> None:
    pair, raw = raw_server()
    sid = client_connect(pair, raw)
    raw.send(sid, status_frame(raw, sid, b"103") + status_frame(raw, sid, b"404"))
    pair.run()
    rejected = pair.one("client", ev.SessionRejected)
    assert (rejected.session_id, rejected.status_code) == (sid, 404)


def test_data_after_an_interim_response_is_frame_unexpected(raw_server: RawPairFactory) -> None:
    pair, raw = raw_server()
    sid = client_connect(pair, raw)
    raw.send(sid, status_frame(raw, sid, b"103") + capsule_data(capsules.encode_drain_session()))
    assert_client_connection_error(pair, c.H3_FRAME_UNEXPECTED)


def test_status_101_is_a_malformed_response(raw_server: RawPairFactory) -> None:
    pair, raw = raw_server()
    sid = client_connect(pair, raw)
    aborts = record_aborts(pair.client)
    raw.send(sid, status_frame(raw, sid, b"101"))
    pair.run()
    rejected = pair.one("client", ev.SessionRejected)
    assert rejected.status_code == 0 and "101" in rejected.reason
    assert ("reset", sid, c.H3_MESSAGE_ERROR) in aborts
    assert not pair.take("client", ev.ProtocolViolation)


# -- the server's SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2)

def test_a_request_over_the_servers_field_section_limit_is_not_sent() -> None:
    pair = Pair(server_config=EngineConfig(max_field_section_size=1000))
    pair.open_session()  # an ordinary request fits
    sid = pair.client.open_session(authority="localhost:4433", path="/echo", headers={"x-big": "a" * 1000})
    pair.run()
    rejected = pair.one("client", ev.SessionRejected)
    assert (rejected.session_id, rejected.status_code) == (sid, 0)
    assert "at most 1000" in rejected.reason and "SETTINGS_MAX_FIELD_SECTION_SIZE" in rejected.reason
    assert not pair.take("server", ev.SessionRequested)
    assert not pair.take("server", ev.ProtocolViolation) and not pair.server.is_closed


def test_without_a_field_section_limit_a_large_request_is_sent() -> None:
    pair = Pair()
    sid = pair.client.open_session(authority="localhost:4433", path="/echo", headers={"x-big": "a" * 1000})
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == sid
    assert not pair.take("client", ev.SessionRejected)


def test_an_answer_over_the_clients_field_section_limit_is_sent_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    # No answer fits in 40 bytes (":status: 200" alone counts 42): the server still answers, and says so.
    pair = Pair(client_config=EngineConfig(max_field_section_size=40))
    pair.run()
    sid = pair.client.open_session(authority="localhost:4433", path="/echo")
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == sid
    with caplog.at_level("WARNING", logger="pywebtransport._protocol.h3"):
        pair.server.accept_session(sid)
        pair.run()
    assert any(f"stream {sid}: sending a" in r.getMessage() and "is 40" in r.getMessage() for r in caplog.records)
    assert pair.one("client", ev.SessionRejected).session_id == sid  # the client holds to its own limit
