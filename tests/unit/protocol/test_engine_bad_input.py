"""Every row of PROTOCOL.md's bad-input table, fed to the server engine byte by byte."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.settings import DIALECT_DRAFT02, UNKNOWN_SETTINGS_KEPT
from pywebtransport._wire import buffer, capsules, frames
from pywebtransport.types import SessionState

from .harness import (
    Pair,
    RawPeer,
    assert_server_connection_error,
    no_h3,
    record_aborts,
    record_received,
    response_status,
)

RawPairFactory = Callable[..., tuple[Pair, RawPeer]]


@pytest.fixture(params=[False, True], ids=["whole", "byte-by-byte"])
def raw_pair(request: pytest.FixtureRequest) -> RawPairFactory:
    """A factory for a started pair whose client writes raw bytes: whole, or one byte per
    QUIC write with the pair run in between (issue #11), so every row is fed both ways."""
    chunked = bool(request.param)

    def make(**kwargs: object) -> tuple[Pair, RawPeer]:
        pair = Pair(tweak_client=no_h3, **kwargs)  # type: ignore[arg-type]
        pair.run()
        return pair, RawPeer(pair, chunked=chunked)

    return make


CONTROL = frames.encode_uni_stream_header(c.STREAM_TYPE_CONTROL)
SETTINGS = frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings({c.SETTINGS_ENABLE_WEBTRANSPORT: 1}))


def test_garbled_settings_payload_is_a_frame_error(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + frames.encode_frame(c.FRAME_SETTINGS, b"\x40"))  # a truncated varint
    assert_server_connection_error(pair, c.H3_FRAME_ERROR)


def test_first_control_frame_not_settings_is_missing_settings(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + frames.encode_frame(c.FRAME_GOAWAY, buffer.encode_varint(0)))
    assert_server_connection_error(pair, c.H3_MISSING_SETTINGS)


@pytest.mark.parametrize("first_type", [0x21, 0x1F * 9 + 0x21, 0x3FFF, 0x3FFF_FFFF])
def test_first_control_frame_of_an_unknown_type_is_missing_settings(first_type: int,
                                                                    raw_pair: RawPairFactory) -> None:
    # RFC 9114 §6.2.1: "If the first frame of the control stream is any other frame type, this
    # MUST be treated as a connection error of type H3_MISSING_SETTINGS". Unknown and
    # reserved (GREASE) types, which the frame parser skips, had been let through.
    pair, raw = raw_pair()
    raw.uni(CONTROL + frames.encode_frame(first_type, b"grease") + SETTINGS)
    assert_server_connection_error(pair, c.H3_MISSING_SETTINGS)


def test_second_settings_frame_is_frame_unexpected(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + SETTINGS + SETTINGS)
    assert_server_connection_error(pair, c.H3_FRAME_UNEXPECTED)


def test_duplicate_setting_identifier_is_a_settings_error(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    pair_bytes = buffer.encode_varint(0x33) + buffer.encode_varint(1)
    payload = pair_bytes + pair_bytes
    raw.uni(CONTROL + frames.encode_frame(c.FRAME_SETTINGS, payload))
    assert_server_connection_error(pair, c.H3_SETTINGS_ERROR)


@pytest.mark.parametrize("frame_type", [c.FRAME_DATA, c.FRAME_HEADERS, 0x02, 0x06, 0x08, 0x09])
def test_request_or_http2_frames_on_the_control_stream_are_frame_unexpected(frame_type: int,
                                                                          raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + SETTINGS + frames.encode_frame(frame_type, b"\x00"))
    assert_server_connection_error(pair, c.H3_FRAME_UNEXPECTED)


@pytest.mark.parametrize(("frame_type", "named"), [
    pytest.param(c.FRAME_HEADERS, "frame HEADERS (0x1) is not allowed", id="known"),
    pytest.param(0x02, "frame 0x2 is not allowed", id="http2-reserved"),
])
def test_violation_reason_names_the_frame_type(frame_type: int, named: str, raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + SETTINGS + frames.encode_frame(frame_type, b"\x00"))
    pair.run(horizon=2.0)
    violation = pair.one("server", ev.ProtocolViolation)
    assert named in violation.reason
    assert violation.error_code is c.H3ErrorCode.H3_FRAME_UNEXPECTED


def test_closing_the_control_stream_is_closed_critical_stream(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + SETTINGS, fin=True)
    assert_server_connection_error(pair, c.H3_CLOSED_CRITICAL_STREAM)


@pytest.mark.parametrize("stream_type", [c.STREAM_TYPE_QPACK_ENCODER, c.STREAM_TYPE_QPACK_DECODER])
def test_closing_a_qpack_stream_is_closed_critical_stream(stream_type: int, raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.uni(CONTROL + SETTINGS)
    raw.uni(frames.encode_uni_stream_header(stream_type), fin=True)
    assert_server_connection_error(pair, c.H3_CLOSED_CRITICAL_STREAM)


CRITICAL_TYPES = [c.STREAM_TYPE_CONTROL, c.STREAM_TYPE_QPACK_ENCODER, c.STREAM_TYPE_QPACK_DECODER]


@pytest.mark.parametrize("stream_type", CRITICAL_TYPES)
def test_a_second_critical_stream_is_stream_creation_error(stream_type: int, raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.control()
    raw.uni(frames.encode_uni_stream_header(stream_type))
    assert_server_connection_error(pair, c.H3_STREAM_CREATION_ERROR)


#: The server's control, QPACK encoder and QPACK decoder streams: the first three
#: server-initiated unidirectional streams, opened in that order when its handshake ends.
SERVER_CRITICAL_IDS = {"control": 3, "qpack-encoder": 7, "qpack-decoder": 11}


@pytest.mark.parametrize("stream_id", list(SERVER_CRITICAL_IDS.values()), ids=list(SERVER_CRITICAL_IDS))
def test_stop_sending_on_our_critical_stream_is_closed_critical_stream(stream_id: int,
                                                                       raw_pair: RawPairFactory) -> None:
    # RFC 9114 §6.2.1: the receiver MUST NOT ask to close the control stream; RFC 9204 §4.2
    # says the same of the QPACK streams. The server had ignored it and kept going, and a
    # graceful shutdown's GOAWAY then failed on the stopped stream (found by a bug hunt).
    pair, raw = raw_pair()
    raw.control()
    pair.run()
    pair.client.quic.stop_stream(stream_id, c.H3_NO_ERROR)
    assert_server_connection_error(pair, c.H3_CLOSED_CRITICAL_STREAM)


def test_unknown_uni_stream_type_is_stopped_alone(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    aborts = record_aborts(pair.server)
    raw.control()
    stream_id = raw.uni(buffer.encode_varint(0x1F * 7 + 0x21) + b"whatever")
    pair.run()
    assert not pair.take("server", ev.ProtocolViolation)
    assert aborts == [("stop", stream_id, c.H3_STREAM_CREATION_ERROR)]
    sid = raw.connect_request(b"/still-works")
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == sid


def test_unknown_frames_and_settings_are_ignored(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    settings = frames.encode_settings({c.SETTINGS_ENABLE_WEBTRANSPORT: 1, 0x1F * 3 + 0x21: 77})
    raw.uni(CONTROL + frames.encode_frame(c.FRAME_SETTINGS, settings) + frames.encode_frame(0x21, b"grease"))
    pair.run()
    assert not pair.take("server", ev.ProtocolViolation)
    assert pair.one("server", ev.H3Ready).settings[0x1F * 3 + 0x21] == 77


def test_a_settings_frame_of_thousands_of_unknown_ids_keeps_a_few_and_every_known_one() -> None:
    # RFC 9114 §7.2.4.1: unknown settings are ignored. All of them had been kept for the
    # connection's life: 200,000 GREASE ids in one SETTINGS frame pinned 17 MB (a bug hunt).
    pair = Pair(tweak_client=no_h3)
    pair.run()
    raw = RawPeer(pair)
    settings = {0x1F * n + 0x21: n for n in range(1, 20_001)}
    settings[c.SETTINGS_ENABLE_WEBTRANSPORT] = 1  # a known setting after all of them
    raw.uni(CONTROL + frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings(settings)))
    pair.run()
    ready = pair.one("server", ev.H3Ready)
    assert ready.dialect is DIALECT_DRAFT02
    assert len(ready.settings) == 1 + UNKNOWN_SETTINGS_KEPT
    assert pair.server.peer_settings is not None and pair.server.peer_settings.raw == ready.settings


def test_answers_over_the_peers_field_section_limit_warn_once_per_connection(
        caplog: pytest.LogCaptureFixture) -> None:
    # A client announcing SETTINGS_MAX_FIELD_SECTION_SIZE = 0 got one WARNING logged per
    # request it made, as fast as it sent them (found by a bug hunt).
    pair = Pair(tweak_client=no_h3)
    pair.run()
    raw = RawPeer(pair)
    raw.control({c.SETTINGS_ENABLE_WEBTRANSPORT: 1, c.SETTINGS_H3_DATAGRAM: 1, c.SETTINGS_MAX_FIELD_SECTION_SIZE: 0})
    received = record_received(pair.client)
    get = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", b"/")]
    with caplog.at_level(logging.DEBUG, logger="pywebtransport._protocol.h3"):
        streams = []
        for _ in range(5):
            stream_id = raw.quic.get_next_available_stream_id(is_unidirectional=False)
            raw.send(stream_id, raw.headers_frame(stream_id, get), fin=True)
            streams.append(stream_id)
            pair.run()
    assert [response_status(received[s]) for s in streams] == [405] * 5  # every one answered
    said = [r for r in caplog.records if "SETTINGS_MAX_FIELD_SECTION_SIZE" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING] + [logging.DEBUG] * 4


@pytest.mark.parametrize(("request_headers", "status", "stop_code"), [
    pytest.param([(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", b"/")],
                 405, c.H3_NO_ERROR, id="get"),
    pytest.param([(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
                  (b":authority", b"localhost"), (b":path", b"/")], 501, c.H3_NO_ERROR, id="other-protocol"),
    pytest.param([(b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"http"),
                  (b":authority", b"localhost"), (b":path", b"/")], 400, c.H3_MESSAGE_ERROR, id="malformed"),
])
def test_a_declined_request_is_answered_then_stopped_with_the_code_its_form_deserves(
        request_headers: list[tuple[bytes, bytes]], status: int, stop_code: int) -> None:
    # RFC 9114 §4.1: H3_NO_ERROR SHOULD be used to ask a client to stop sending a request that
    # needs no more of it; §4.1.2: a malformed one is H3_MESSAGE_ERROR.
    pair = Pair(tweak_client=no_h3)
    pair.run()
    raw = RawPeer(pair)
    raw.control()
    aborts = record_aborts(pair.server)
    received = record_received(pair.client)
    stream_id = raw.quic.get_next_available_stream_id(is_unidirectional=False)
    raw.send(stream_id, raw.headers_frame(stream_id, request_headers))  # no FIN: a body might follow
    pair.run()
    assert response_status(received[stream_id]) == status
    assert aborts == [("stop", stream_id, stop_code)]


def test_an_empty_request_header_section_is_a_400_on_its_stream_not_a_connection_error() -> None:
    # b"\x00\x00" encodes no fields (RFC 9204 §4.5.1); pylsqpack's decoder refused it, and the
    # whole connection closed with QPACK_DECOMPRESSION_FAILED (found by fuzzing). A request
    # without pseudo-headers is malformed: a stream error (RFC 9114 §4.1.2).
    pair = Pair(tweak_client=no_h3)
    pair.run()
    raw = RawPeer(pair)
    raw.control()
    received = record_received(pair.client)
    stream_id = raw.bidi(frames.encode_frame(c.FRAME_HEADERS, b"\x00\x00"))
    pair.run()
    assert not pair.take("server", ev.ProtocolViolation) and not pair.server.is_closed
    assert response_status(received[stream_id]) == 400
    sid = raw.connect_request(b"/after")  # the connection serves on
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == sid


def test_an_empty_response_header_section_fails_its_session_only() -> None:
    pair = Pair(tweak_server=no_h3)
    pair.run()
    server = RawPeer(pair, from_server=True)
    server.control({c.SETTINGS_ENABLE_WEBTRANSPORT: 1, c.SETTINGS_H3_DATAGRAM: 1,
                    c.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1})
    pair.run()
    sid = pair.client.open_session(authority="localhost", path="/x")
    pair.run()
    server.send(sid, frames.encode_frame(c.FRAME_HEADERS, b"\x00\x00"))
    pair.run()
    assert not pair.take("client", ev.ProtocolViolation) and not pair.client.is_closed
    rejected = pair.one("client", ev.SessionRejected)
    assert rejected.session_id == sid and "malformed response" in rejected.reason


def test_malformed_qpack_block_is_decompression_failed(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.control()
    raw.bidi(frames.encode_frame(c.FRAME_HEADERS, b"\xff\xff\xff\xff\xff"))
    assert_server_connection_error(pair, c.QPACK_DECOMPRESSION_FAILED)


@pytest.mark.parametrize("missing", [b":path", b":authority", b":scheme"])
def test_connect_without_required_pseudo_headers_gets_400(missing: bytes, raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    received = record_received(pair.client)
    raw.control()
    stream_id = raw.connect_request(drop=missing)
    pair.run()
    assert not pair.take("server", ev.SessionRequested)
    assert not pair.take("server", ev.ProtocolViolation)
    assert response_status(received[stream_id]) == 400


def test_webtransport_stream_naming_a_non_client_bidi_session_is_id_error(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair()
    raw.control()
    raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, 2) + b"x")
    assert_server_connection_error(pair, c.H3_ID_ERROR)


def test_webtransport_stream_for_a_gone_session_is_refused_with_session_gone() -> None:
    pair = Pair()
    sid = pair.open_session()
    pair.client.close_session(sid, 0, "")
    pair.run()
    raw = RawPeer(pair)
    aborts = record_aborts(pair.server)
    stream_id = raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + b"late")
    pair.run()
    assert not pair.take("server", ev.StreamOpened)
    assert aborts == [("stop", stream_id, c.WT_SESSION_GONE)]


def test_malformed_datagram_is_h3_datagram_error() -> None:
    pair = Pair()
    pair.open_session()
    pair.client.quic.send_datagram_frame(b"\x40")  # a 2-byte varint cut after one byte
    assert_server_connection_error(pair, c.H3_DATAGRAM_ERROR)


def test_datagram_for_an_unknown_session_is_dropped_silently() -> None:
    pair = Pair()
    pair.open_session()
    pair.client.quic.send_datagram_frame(buffer.encode_varint(400 // 4) + b"nobody")
    pair.run()
    assert not pair.take("server", ev.DatagramReceived)
    assert not pair.take("server", ev.ProtocolViolation)


def test_close_reason_over_1024_bytes_is_a_message_error_on_the_session() -> None:
    pair = Pair()
    sid = pair.open_session()
    bad = capsules.encode_capsule(c.WT_CAPSULE_CLOSE_SESSION, b"\x00\x00\x00\x01" + b"r" * 1025)
    pair.client.quic.send_stream_data(sid, frames.encode_frame(c.FRAME_DATA, bad))
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert closed.error_code == c.H3_MESSAGE_ERROR
    assert not pair.take("server", ev.ProtocolViolation)  # a session error, not a connection error


def test_close_reason_that_is_not_utf8_is_a_message_error() -> None:
    pair = Pair()
    sid = pair.open_session()
    bad = capsules.encode_capsule(c.WT_CAPSULE_CLOSE_SESSION, b"\x00\x00\x00\x01\xff\xfe")
    pair.client.quic.send_stream_data(sid, frames.encode_frame(c.FRAME_DATA, bad))
    pair.run()
    assert pair.one("server", ev.SessionClosed).error_code == c.H3_MESSAGE_ERROR


def test_grease_and_unknown_capsules_are_skipped() -> None:
    pair = Pair()
    sid = pair.open_session()
    grease = capsules.encode_capsule(0x29 * 5 + 0x17, b"g" * 40) + capsules.encode_capsule(0x7777, b"")
    pair.client.quic.send_stream_data(sid, frames.encode_frame(c.FRAME_DATA, grease))
    pair.run()
    assert pair.server.session(sid).state is SessionState.CONNECTED
    assert not pair.take("server", ev.SessionClosed)


def test_capsule_split_across_data_frames_and_several_in_one_frame() -> None:
    pair = Pair()
    sid = pair.open_session()
    close = capsules.encode_close_session(9, "split")
    stream = frames.encode_frame(c.FRAME_DATA, capsules.encode_capsule(0x29 + 0x17, b"") + close[:3])
    stream += frames.encode_frame(c.FRAME_DATA, close[3:])
    pair.client.quic.send_stream_data(sid, stream)
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert (closed.error_code, closed.reason) == (9, "split")


def test_header_block_over_the_limit_is_refused_on_its_stream_only(raw_pair: RawPairFactory) -> None:
    pair, raw = raw_pair(server_config=EngineConfig(max_header_block_size=200))
    aborts = record_aborts(pair.server)
    raw.control()
    stream_id = raw.bidi(frames.encode_frame_header(c.FRAME_HEADERS, 5000) + b"\x00" * 100)
    pair.run()
    assert not pair.take("server", ev.ProtocolViolation)
    assert aborts == [("stop", stream_id, c.H3_EXCESSIVE_LOAD), ("reset", stream_id, c.H3_EXCESSIVE_LOAD)]


def test_capsule_over_the_limit_is_refused() -> None:
    pair = Pair(server_config=EngineConfig(max_capsule_size=64))
    sid = pair.open_session()
    big = buffer.encode_varint(c.WT_CAPSULE_CLOSE_SESSION) + buffer.encode_varint(10_000)
    pair.client.quic.send_stream_data(sid, frames.encode_frame(c.FRAME_DATA, big))
    pair.run()
    assert pair.one("server", ev.SessionClosed).error_code == c.H3_EXCESSIVE_LOAD


def test_buffered_early_streams_are_bounded_and_the_excess_rejected() -> None:
    pair = Pair(server_config=EngineConfig(max_buffered_streams=3))
    aborts = record_aborts(pair.server)
    pair.run()
    sid = pair.client.open_session(authority="localhost", path="/early")
    raw = RawPeer(pair)
    ids = [raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + f"s{i}".encode(), fin=True)
           for i in range(5)]
    pair.run()
    pair.one("server", ev.SessionRequested)
    assert not pair.take("server", ev.StreamOpened)  # buffered: the session is not accepted yet
    pair.server.accept_session(sid)
    pair.run()
    opened = [e.stream_id for e in pair.take("server", ev.StreamOpened)]
    assert opened == ids[:3]
    assert aborts == [("stop", stream_id, c.WT_BUFFERED_STREAM_REJECTED) for stream_id in ids[3:]]
    payloads = {e.stream_id: e.data for e in pair.take("server", ev.StreamDataReceived)}
    assert payloads == {ids[0]: b"s0", ids[1]: b"s1", ids[2]: b"s2"}


def test_client_buffers_server_streams_and_datagrams_that_beat_the_response() -> None:
    pair = Pair()
    pair.run()
    sid = pair.client.open_session(authority="localhost", path="/early")
    pair.run()
    pair.one("server", ev.SessionRequested)
    server_quic = pair.server.quic
    stream_id = server_quic.get_next_available_stream_id(is_unidirectional=True)
    server_quic.send_stream_data(stream_id, frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + b"early",
                                 end_stream=True)
    server_quic.send_datagram_frame(buffer.encode_varint(sid // 4) + b"early-dgram")
    pair.run()
    assert not pair.take("client", ev.StreamOpened)
    assert not pair.take("client", ev.DatagramReceived)
    pair.server.accept_session(sid)
    pair.run()
    assert pair.one("client", ev.SessionEstablished).session_id == sid
    assert pair.one("client", ev.StreamOpened).stream_id == stream_id
    assert pair.stream_payload("client", stream_id) == (b"early", True)
    assert pair.one("client", ev.DatagramReceived).data == b"early-dgram"
