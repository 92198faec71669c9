"""Garbage into a live server engine: it must never raise, hang or grow without bound.

Whatever the bytes, the engine either carries on or closes the connection with one of the
codes in PROTOCOL.md's bad-input table.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._wire import buffer, frames

from ..unit.protocol.harness import Pair, RawPeer, no_h3

ALLOWED_CLOSE_CODES = {
    c.H3_FRAME_ERROR, c.H3_MISSING_SETTINGS, c.H3_FRAME_UNEXPECTED, c.H3_SETTINGS_ERROR,
    c.H3_CLOSED_CRITICAL_STREAM, c.H3_STREAM_CREATION_ERROR, c.QPACK_DECOMPRESSION_FAILED,
    c.QPACK_ENCODER_STREAM_ERROR, c.QPACK_DECODER_STREAM_ERROR, c.H3_ID_ERROR, c.H3_DATAGRAM_ERROR,
    c.H3_EXCESSIVE_LOAD, c.H3_MESSAGE_ERROR,
}

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_sane(pair: Pair) -> None:
    pair.run(horizon=1.0)
    for violation in pair.take("server", ev.ProtocolViolation):
        assert violation.error_code in ALLOWED_CLOSE_CODES, hex(violation.error_code)
    engine = pair.server
    assert engine.early_stream_count <= engine.config.max_buffered_streams
    for stream in engine.stream_records():
        assert len(stream.preamble) <= 16
        if stream.parser is not None:
            assert stream.parser.buffered <= engine.config.max_frame_size + 16


@FUZZ
@given(garbage=st.binary(max_size=300), fin=st.booleans())
def test_garbage_on_the_control_stream(garbage: bytes, fin: bool) -> None:
    pair = Pair(tweak_client=no_h3)
    pair.run()
    RawPeer(pair).uni(frames.encode_uni_stream_header(c.STREAM_TYPE_CONTROL) + garbage, fin=fin)
    assert_sane(pair)


@FUZZ
@given(garbage=st.binary(max_size=300), fin=st.booleans())
def test_garbage_on_a_request_stream(garbage: bytes, fin: bool) -> None:
    pair = Pair(tweak_client=no_h3)
    pair.run()
    raw = RawPeer(pair)
    raw.control()
    raw.bidi(garbage, fin=fin)
    assert_sane(pair)


@FUZZ
@given(stream_type=st.integers(0, 2**62 - 1), garbage=st.binary(max_size=200), fin=st.booleans())
def test_garbage_on_unidirectional_streams(stream_type: int, garbage: bytes, fin: bool) -> None:
    pair = Pair(tweak_client=no_h3)
    pair.run()
    raw = RawPeer(pair)
    raw.control()
    raw.uni(buffer.encode_varint(stream_type) + garbage, fin=fin)
    assert_sane(pair)


@FUZZ
@given(chunks=st.lists(st.binary(max_size=120), max_size=6), fin=st.booleans())
def test_garbage_capsules_on_an_established_session(chunks: list[bytes], fin: bool) -> None:
    pair = Pair()
    sid = pair.open_session()
    for i, chunk in enumerate(chunks):
        pair.client.quic.send_stream_data(sid, frames.encode_frame(c.FRAME_DATA, chunk),
                                          end_stream=fin and i == len(chunks) - 1)
    assert_sane(pair)


@FUZZ
@given(datagrams=st.lists(st.binary(max_size=100), max_size=10))
def test_garbage_datagrams(datagrams: list[bytes]) -> None:
    pair = Pair()
    pair.open_session()
    for datagram in datagrams:
        pair.client.quic.send_datagram_frame(datagram)
    assert_sane(pair)
