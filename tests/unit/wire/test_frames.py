"""HTTP/3 frames and stream preambles (RFC 9114 §6.2, §7; WebTransport draft §4), both variants.

Every test takes ``wire`` and so runs against the compiled module and the pure twin; the
last properties use ``both_wires`` to check that the two agree on arbitrary input.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport import constants as c
from pywebtransport.exceptions import FrameError, SettingsError

Frame = tuple[int, bytes]

KNOWN = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0D]
#: CANCEL_PUSH, GOAWAY, MAX_PUSH_ID: a payload of one varint, so never more than 8 bytes.
ONE_VARINT = [0x03, 0x07, 0x0D]
GREASE = [0x21, 0x1F * 1 + 0x21, 0x1F * 1000 + 0x21, 0x1F * 0x7FFFFFFF + 0x21]
UNKNOWN = [0x0A, 0x0B, 0x0C, 0x0E, 0x40, 0x42, 0x3FFF, *GREASE]  # 0x41 is the WT signal: an error


def varint(value: int, size: int | None = None) -> bytes:
    """Encode a varint by hand, in ``size`` bytes when given (non-minimal on purpose)."""
    if size is None:
        size = 1 if value < 1 << 6 else 2 if value < 1 << 14 else 4 if value < 1 << 30 else 8
    prefix = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    assert value < 1 << (8 * size - 2)
    return (value | prefix << (8 * size - 2)).to_bytes(size, "big")


def raw_frame(frame_type: int, payload: bytes) -> bytes:
    return varint(frame_type) + varint(len(payload)) + payload


def feed_chunks(parser: Any, data: bytes, cuts: list[int]) -> list[Frame]:
    out: list[Frame] = []
    previous = 0
    for cut in [*sorted(cuts), len(data)]:
        out += parser.feed(data[previous:cut])
        previous = cut
    return out


def coalesce(frames: list[Frame]) -> list[Frame]:
    """Join adjacent DATA pieces: chunking may split a DATA frame's payload anywhere."""
    out: list[Frame] = []
    for frame_type, payload in frames:
        if frame_type == 0 and out and out[-1][0] == 0:
            out[-1] = (0, out[-1][1] + payload)
        else:
            out.append((frame_type, payload))
    return out


def expected_frames(frames: list[Frame]) -> list[Frame]:
    """What the parser must report for these frames fed at once."""
    return [(t, p) for t, p in frames if t in KNOWN and not (t == 0 and not p)]


# ---------------------------------------------------------------------------- encoders


def test_known_frame_types_are_rfc9114_types_plus_http2_only_ones(wire: SimpleNamespace) -> None:
    assert frozenset(KNOWN) == wire.frames.KNOWN_FRAME_TYPES
    assert isinstance(wire.frames.KNOWN_FRAME_TYPES, frozenset)


def test_public_names_match_the_contract(wire: SimpleNamespace) -> None:
    assert sorted(wire.frames.__all__) == sorted([
        "KNOWN_FRAME_TYPES", "FrameParser", "decode_settings", "encode_bidi_stream_header", "encode_frame",
        "encode_frame_header", "encode_settings", "encode_uni_stream_header", "read_bidi_stream_header",
        "read_uni_stream_header",
    ])


@pytest.mark.parametrize("value", [0, 37, 63, 64, 15293, 16383, 16384, 494878333, (1 << 30) - 1,
                                   1 << 30, 151288809941952652, c.VARINT_MAX])
def test_frame_header_uses_the_shortest_varints(wire: SimpleNamespace, value: int) -> None:
    assert wire.frames.encode_frame_header(value, value) == varint(value) * 2


def test_rfc9000_varint_vectors_in_a_frame_header(wire: SimpleNamespace) -> None:
    # RFC 9000 §A.1 sample encodings.
    header = wire.frames.encode_frame_header(151288809941952652, 494878333)
    assert header == bytes.fromhex("c2197c5eff14e88c9d7f3e7d")
    assert wire.frames.encode_frame_header(15293, 37) == bytes.fromhex("7bbd25")


@pytest.mark.parametrize("bad", [-1, c.VARINT_MAX + 1, 1 << 64])
def test_encoders_reject_values_outside_the_varint_range(wire: SimpleNamespace, bad: int) -> None:
    f = wire.frames
    with pytest.raises(ValueError):
        f.encode_frame_header(bad, 0)
    with pytest.raises(ValueError):
        f.encode_frame_header(0, bad)
    with pytest.raises(ValueError):
        f.encode_frame(bad, b"")
    with pytest.raises(ValueError):
        f.encode_settings({bad: 1})
    with pytest.raises(ValueError):
        f.encode_settings({1: bad})
    with pytest.raises(ValueError):
        f.encode_bidi_stream_header(bad)
    with pytest.raises(ValueError):
        f.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, bad)


def test_encoders_reject_non_integers_naming_the_argument(wire: SimpleNamespace) -> None:
    f = wire.frames
    with pytest.raises(TypeError, match="^frame_type must be an integer, not float$"):
        f.encode_frame_header(1.0, 0)
    with pytest.raises(TypeError, match="^length must be an integer, not float$"):
        f.encode_frame_header(0, 1.0)
    with pytest.raises(TypeError, match="^frame_type must be an integer, not float$"):
        f.encode_frame(1.0, b"")
    with pytest.raises(TypeError, match="^payload must be a bytes-like object, not str$"):
        f.encode_frame(1, "text")
    with pytest.raises(TypeError, match="^setting identifier must be an integer, not str$"):
        f.encode_settings({"a": 1})
    with pytest.raises(TypeError, match="^setting value must be an integer, not float$"):
        f.encode_settings({1: 1.0})
    with pytest.raises(TypeError, match="^stream_type must be an integer, not float$"):
        f.encode_uni_stream_header(84.0, 4)
    with pytest.raises(TypeError, match="^session_id must be an integer, not float$"):
        f.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, 4.0)
    with pytest.raises(TypeError, match="^session_id must be an integer, not float$"):
        f.encode_bidi_stream_header(4.0)
    with pytest.raises(TypeError, match="^max_frame_size must be an integer, not float$"):
        f.FrameParser(max_frame_size=100.0)
    for decode in (f.decode_settings, f.read_uni_stream_header, f.read_bidi_stream_header, f.FrameParser().feed):
        with pytest.raises(TypeError, match="bytes-like object, not str$"):
            decode("text")


def test_encode_frame_accepts_any_bytes_like_payload(wire: SimpleNamespace) -> None:
    payload = b"payload" * 20
    expected = varint(1) + varint(len(payload)) + payload
    for form in (payload, bytearray(payload), memoryview(payload)):
        assert wire.frames.encode_frame(1, form) == expected
    assert wire.frames.encode_frame(0, memoryview(payload)[::2]) == raw_frame(0, payload[::2])


@pytest.mark.parametrize(("frame_type", "size"), [
    (frame_type, size) for frame_type in KNOWN for size in (0, 1, 8, 63, 64, 16384)
    if frame_type not in ONE_VARINT or size <= 8  # longer ones: test_a_one_varint_frame_declaring_...
])
def test_each_known_frame_type_round_trips(wire: SimpleNamespace, frame_type: int, size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = wire.frames.encode_frame(frame_type, payload)
    assert data == raw_frame(frame_type, payload)
    parser = wire.frames.FrameParser()
    got = parser.feed(data)
    if frame_type == 0 and size == 0:
        assert got == []  # a zero-length DATA frame yields nothing
    else:
        assert got == [(frame_type, payload)]
        assert all(type(p) is bytes for _, p in got)
    assert parser.buffered == 0
    assert not parser.in_frame


# ---------------------------------------------------------------------------- SETTINGS


@given(st.dictionaries(st.integers(0, c.VARINT_MAX).filter(lambda k: k not in (0, 2, 3, 4, 5)),
                       st.integers(0, c.VARINT_MAX), max_size=12))
def test_settings_round_trip_in_insertion_order(wire: SimpleNamespace, table: dict[int, int]) -> None:
    payload = wire.frames.encode_settings(table)
    assert payload == b"".join(varint(k) + varint(v) for k, v in table.items())
    decoded = wire.frames.decode_settings(payload)
    assert decoded == table
    assert list(decoded) == list(table)


def test_browser_settings_with_grease_ids_decode(wire: SimpleNamespace) -> None:
    # What Chromium sends (PROTOCOL.md), plus a reserved GREASE id that must be kept, not refused.
    table = {0x1: 65536, 0x6: 16384, 0x7: 100, 0x33: 1, 0xFFD277: 1, 0x2B603742: 1, 0x1F * 9 + 0x21: 42}
    assert wire.frames.decode_settings(wire.frames.encode_settings(table)) == table


def test_settings_accept_non_minimal_varints_and_any_bytes_like(wire: SimpleNamespace) -> None:
    payload = varint(0x33, 8) + varint(1, 4) + varint(0x6, 2) + varint(100, 8)
    for form in (payload, bytearray(payload), memoryview(payload)):
        assert wire.frames.decode_settings(form) == {0x33: 1, 0x6: 100}
    assert wire.frames.decode_settings(b"") == {}


def test_duplicate_setting_identifier_is_settings_error_0x109(wire: SimpleNamespace) -> None:
    payload = varint(0x33) + varint(1) + varint(0x6) + varint(9) + varint(0x33, 4) + varint(1)
    with pytest.raises(SettingsError) as info:
        wire.frames.decode_settings(payload)
    assert info.value.error_code == 0x109 == c.H3_SETTINGS_ERROR


@pytest.mark.parametrize("reserved", [0x00, 0x02, 0x03, 0x04, 0x05])
def test_reserved_http2_setting_identifier_is_settings_error(wire: SimpleNamespace, reserved: int) -> None:
    # RFC 9114 §7.2.4.1: receipt of an HTTP/2-only setting is H3_SETTINGS_ERROR.
    with pytest.raises(SettingsError) as info:
        wire.frames.decode_settings(varint(0x6) + varint(1) + varint(reserved) + varint(0))
    assert info.value.error_code == c.H3_SETTINGS_ERROR


def test_truncated_settings_payload_is_frame_error_at_every_cut(wire: SimpleNamespace) -> None:
    payload = varint(0x2B603742) + varint(1) + varint(0x6) + varint(16384) + varint(0x33, 8) + varint(1)
    pair_ends = {0, 5, 10}  # an id alone (cut at 4, 6 or 18) is truncated too
    for cut in range(len(payload)):
        if cut in pair_ends:
            continue
        with pytest.raises(FrameError) as info:
            wire.frames.decode_settings(payload[:cut])
        assert not isinstance(info.value, SettingsError)
        assert info.value.error_code == c.H3_FRAME_ERROR, cut
    assert wire.frames.decode_settings(payload[:10]) == {0x2B603742: 1, 0x6: 16384}


# ---------------------------------------------------------------------------- parser: chunking

frame_strategy = st.one_of(
    st.tuples(st.sampled_from([t for t in KNOWN if t not in ONE_VARINT] + UNKNOWN), st.binary(max_size=300)),
    st.tuples(st.sampled_from(ONE_VARINT), st.binary(max_size=8)),
)


@settings(max_examples=150)
@given(frames=st.lists(frame_strategy, max_size=12), cuts=st.lists(st.integers(0, 4000), max_size=30))
def test_any_chunking_yields_the_same_frames(wire: SimpleNamespace, frames: list[Frame],
                                             cuts: list[int]) -> None:
    data = b"".join(raw_frame(t, p) for t, p in frames)
    expected = expected_frames(frames)
    whole = wire.frames.FrameParser()
    assert whole.feed(data) == expected
    parser = wire.frames.FrameParser()
    got = feed_chunks(parser, data, [cut % (len(data) + 1) for cut in cuts])
    assert coalesce(got) == coalesce(expected)
    assert all(payload for _, payload in got if _ == 0), "an empty DATA piece was reported"
    assert [t for t, _ in got if t != 0] == [t for t, _ in expected if t != 0]
    assert parser.buffered == 0
    assert not parser.in_frame


@pytest.mark.parametrize("frame_type", ONE_VARINT)
def test_a_one_varint_frame_declaring_more_than_8_bytes_is_refused_at_its_header(wire: SimpleNamespace,
                                                                                   frame_type: int) -> None:
    parser = wire.frames.FrameParser()
    assert parser.feed(raw_frame(frame_type, varint(1 << 40))) == [(frame_type, varint(1 << 40))]  # 8 bytes: fine
    header = varint(frame_type) + varint(1 << 20)  # a peer declaring 1 MiB, to be trickled in
    with pytest.raises(FrameError) as caught:
        parser.feed(header + b"\x00")
    assert caught.value.error_code == c.H3_FRAME_ERROR
    assert "one varint" in str(caught.value)
    assert parser.buffered == 0  # nothing of it was kept


def test_one_byte_at_a_time_equals_all_at_once(wire: SimpleNamespace) -> None:
    frames: list[Frame] = [
        (0x01, b"header block"), (0x00, b"body"), (0x00, b""), (0x21, b"grease"),
        (0x04, bytes(200)), (0x1F * 0x7FFFFFFF + 0x21, b"x" * 70), (0x07, varint(1 << 40)),
        (0x0D, b""), (0x00, b"a" * 20000), (0x05, b"p"),
    ]
    data = b"".join(raw_frame(t, p) for t, p in frames)
    parser = wire.frames.FrameParser()
    got: list[Frame] = []
    for i in range(len(data)):
        got += parser.feed(data[i : i + 1])
        assert parser.buffered <= 16 + 200
    expected = expected_frames(frames)
    assert coalesce(got) == coalesce(expected)
    # DATA pieces of one frame concatenate to exactly its payload; the rest arrive whole.
    assert b"".join(p for t, p in got if t == 0) == b"body" + b"a" * 20000
    assert [f for f in got if f[0] != 0] == [f for f in expected if f[0] != 0]


def test_header_held_across_feeds_at_every_split(wire: SimpleNamespace) -> None:
    # An 8-byte type and an 8-byte length: the longest header there is.
    data = varint(0x01, 8) + varint(3, 8) + b"abc" + raw_frame(0x07, b"\x05")
    for cut in range(len(data) + 1):
        parser = wire.frames.FrameParser()
        first = parser.feed(data[:cut])
        if 0 < cut < 16:
            assert parser.buffered == cut and parser.in_frame
        second = parser.feed(data[cut:])
        assert first + second == [(0x01, b"abc"), (0x07, b"\x05")], cut
        assert parser.buffered == 0 and not parser.in_frame


def test_feed_accepts_bytes_like_input(wire: SimpleNamespace) -> None:
    data = raw_frame(0x01, b"h" * 10) + raw_frame(0x00, b"d" * 10)
    expected = [(0x01, b"h" * 10), (0x00, b"d" * 10)]
    for form in (bytearray(data), memoryview(data)):
        assert wire.frames.FrameParser().feed(form) == expected
    spaced = bytes(b for byte in data for b in (byte, 0))
    assert wire.frames.FrameParser().feed(memoryview(spaced)[::2]) == expected
    assert wire.frames.FrameParser().feed(b"") == []
    with pytest.raises(TypeError):
        wire.frames.FrameParser().feed("text")


# ---------------------------------------------------------------------------- parser: DATA


def test_huge_data_frame_is_streamed_without_buffering(wire: SimpleNamespace) -> None:
    size = 8 * 1024 * 1024 + 5
    parser = wire.frames.FrameParser(max_frame_size=1024)
    assert parser.feed(wire.frames.encode_frame_header(0, size)) == []
    assert parser.in_frame and parser.buffered == 0
    piece = bytes(range(256)) * 256
    received = 0
    while received < size:
        chunk = piece[: size - received]
        got = parser.feed(chunk)
        assert got == [(0, chunk)]
        assert parser.buffered == 0
        received += len(chunk)
    assert not parser.in_frame
    assert parser.feed(raw_frame(0x01, b"trailers")) == [(0x01, b"trailers")]


def test_data_piece_and_next_frames_in_one_feed(wire: SimpleNamespace) -> None:
    parser = wire.frames.FrameParser()
    head = varint(0) + varint(10)
    assert parser.feed(head + b"01234") == [(0, b"01234")]
    assert parser.feed(b"56789" + raw_frame(0, b"next") + raw_frame(1, b"h")) == [
        (0, b"56789"), (0, b"next"), (1, b"h")]


def test_data_frame_declaring_the_varint_maximum_is_streamed(wire: SimpleNamespace) -> None:
    parser = wire.frames.FrameParser(max_frame_size=1)
    assert parser.feed(varint(0) + varint(c.VARINT_MAX) + b"xyz") == [(0, b"xyz")]
    assert parser.buffered == 0 and parser.in_frame


# ---------------------------------------------------------------------------- parser: unknown types


@pytest.mark.parametrize("frame_type", UNKNOWN)
def test_unknown_and_grease_frames_are_skipped(wire: SimpleNamespace, frame_type: int) -> None:
    parser = wire.frames.FrameParser(max_frame_size=16)
    data = raw_frame(frame_type, b"z" * 1000) + raw_frame(0x01, b"after")
    assert parser.feed(data) == [(0x01, b"after")]
    assert parser.buffered == 0


@pytest.mark.parametrize("frame_type", [0x21, 0x1F * 5 + 0x21, 0x1F * 0x7FFFFFFF + 0x21, 0x0E])
def test_gigabyte_unknown_frame_costs_no_memory(wire: SimpleNamespace, frame_type: int) -> None:
    size = 1 << 30
    parser = wire.frames.FrameParser(max_frame_size=16)
    assert parser.feed(wire.frames.encode_frame_header(frame_type, size)) == []
    chunk = b"\xff" * (1 << 20)
    for _ in range(size // len(chunk) - 1):
        assert parser.feed(chunk) == []
        assert parser.buffered == 0
        assert parser.in_frame
    assert parser.feed(chunk + raw_frame(0x04, b"")) == [(0x04, b"")]
    assert not parser.in_frame


# ---------------------------------------------------------------------------- parser: limits and errors


@pytest.mark.parametrize("frame_type", [t for t in KNOWN if t != 0])
def test_oversize_known_frame_fails_as_soon_as_its_length_is_read(wire: SimpleNamespace,
                                                                  frame_type: int) -> None:
    parser = wire.frames.FrameParser(max_frame_size=100)
    header = varint(frame_type) + varint(101, 2)
    assert parser.feed(header[:-1]) == []  # length not complete yet: no verdict
    with pytest.raises(FrameError) as info:
        parser.feed(header[-1:])  # no payload byte has arrived
    assert info.value.error_code == c.H3_EXCESSIVE_LOAD == 0x107
    assert not isinstance(info.value, SettingsError)


def test_frame_of_exactly_max_frame_size_is_accepted(wire: SimpleNamespace) -> None:
    parser = wire.frames.FrameParser(max_frame_size=100)
    data = raw_frame(0x01, b"q" * 100)
    got: list[Frame] = []
    for i in range(0, len(data), 7):
        got += parser.feed(data[i : i + 7])
        assert parser.buffered <= 100 + 16
    assert got == [(0x01, b"q" * 100)]
    assert parser.buffered == 0


def test_default_max_frame_size_is_the_constant(wire: SimpleNamespace) -> None:
    limit = c.DEFAULT_MAX_FRAME_SIZE
    assert wire.frames.FrameParser().feed(wire.frames.encode_frame_header(0x01, limit)) == []
    with pytest.raises(FrameError):
        wire.frames.FrameParser().feed(wire.frames.encode_frame_header(0x01, limit + 1))


@pytest.mark.parametrize("bad", [0, -5, -(2**70)])
def test_max_frame_size_below_one_is_rejected(wire: SimpleNamespace, bad: int) -> None:
    with pytest.raises(ValueError, match=f"^max_frame_size must be at least 1, got {bad}$"):
        wire.frames.FrameParser(max_frame_size=bad)


def test_max_frame_size_beyond_any_varint_means_no_limit(wire: SimpleNamespace) -> None:
    parser = wire.frames.FrameParser(max_frame_size=2**70)
    assert parser.feed(varint(0x01) + varint(c.VARINT_MAX) + b"abc") == []
    assert parser.in_frame and parser.buffered == 3


def test_buffered_counts_a_partial_known_frame(wire: SimpleNamespace) -> None:
    parser = wire.frames.FrameParser(max_frame_size=1000)
    data = raw_frame(0x01, b"b" * 1000)
    assert parser.feed(data[:503]) == []
    assert parser.buffered == 500 and parser.in_frame
    assert parser.feed(data[503:]) == [(0x01, b"b" * 1000)]
    assert parser.buffered == 0 and not parser.in_frame


def test_an_error_is_sticky(wire: SimpleNamespace) -> None:
    parser = wire.frames.FrameParser(max_frame_size=10)
    assert parser.feed(raw_frame(0x01, b"ok")) == [(0x01, b"ok")]
    with pytest.raises(FrameError):
        parser.feed(raw_frame(0x01, b"x" * 11))
    for later in (b"", raw_frame(0x01, b"ok"), raw_frame(0x00, b"data")):
        with pytest.raises(FrameError) as info:
            parser.feed(later)
        assert info.value.error_code == c.H3_EXCESSIVE_LOAD
    assert parser.buffered == 0


def test_in_frame_tracks_frame_boundaries(wire: SimpleNamespace) -> None:
    parser = wire.frames.FrameParser()
    assert not parser.in_frame
    for frame_type in (0x00, 0x01, 0x21):
        data = raw_frame(frame_type, b"12345")
        parser.feed(data[:1])
        assert parser.in_frame
        parser.feed(data[1:-1])
        assert parser.in_frame
        parser.feed(data[-1:])
        assert not parser.in_frame


# ---------------------------------------------------------------------------- stream preambles


def test_uni_stream_header_encodings(wire: SimpleNamespace) -> None:
    f = wire.frames
    assert f.encode_uni_stream_header(c.STREAM_TYPE_CONTROL) == b"\x00"
    assert f.encode_uni_stream_header(c.STREAM_TYPE_QPACK_DECODER) == b"\x03"
    assert f.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, 4) == b"\x40\x54\x04"
    assert f.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, 1 << 20) == b"\x40\x54" + varint(1 << 20)
    with pytest.raises(ValueError):
        f.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT)
    with pytest.raises(ValueError):
        f.encode_uni_stream_header(c.STREAM_TYPE_CONTROL, 4)


def test_bidi_stream_header_is_two_byte_0x41_then_session_id(wire: SimpleNamespace) -> None:
    # WebTransport draft §4.2: the signal value 0x41, sent as the two bytes 0x40 0x41.
    assert wire.frames.encode_bidi_stream_header(0) == b"\x40\x41\x00"
    assert wire.frames.encode_bidi_stream_header(1 << 32) == b"\x40\x41" + varint(1 << 32)


@pytest.mark.parametrize("session_id", [0, 4, 63, 64, 1 << 20, c.VARINT_MAX])
@pytest.mark.parametrize("stream_type", [c.STREAM_TYPE_WEBTRANSPORT, c.STREAM_TYPE_CONTROL, 0x21,
                                         0x1F * 0x7FFFFFFF + 0x21])
def test_uni_stream_header_at_every_split(wire: SimpleNamespace, session_id: int, stream_type: int) -> None:
    f = wire.frames
    is_wt = stream_type == c.STREAM_TYPE_WEBTRANSPORT
    header = f.encode_uni_stream_header(stream_type, session_id if is_wt else None)
    data = header + b"payload"
    for cut in range(len(data) + 1):
        got = f.read_uni_stream_header(data[:cut])
        if cut < len(header):
            assert got is None, cut
        else:
            assert got == (stream_type, session_id if is_wt else -1, len(header)), cut
            assert f.read_uni_stream_header(bytearray(data[:cut])) == got
            assert f.read_uni_stream_header(memoryview(data[:cut])) == got


@pytest.mark.parametrize("session_id", [0, 4, 64, 1 << 40])
def test_bidi_stream_header_at_every_split(wire: SimpleNamespace, session_id: int) -> None:
    f = wire.frames
    header = f.encode_bidi_stream_header(session_id)
    data = header + raw_frame(0x01, b"x")
    for cut in range(len(data) + 1):
        got = f.read_bidi_stream_header(data[:cut])
        if cut < len(header):
            assert got is None, cut
        else:
            assert got == (session_id, len(header)), cut
            assert f.read_bidi_stream_header(memoryview(data[:cut])) == got


@pytest.mark.parametrize("signal", [varint(0x41, 2), varint(0x41, 4), varint(0x41, 8)])
def test_bidi_signal_is_recognised_by_value_in_any_encoding(wire: SimpleNamespace, signal: bytes) -> None:
    data = signal + varint(8, 4)
    assert wire.frames.read_bidi_stream_header(data) == (8, len(data))
    assert wire.frames.read_bidi_stream_header(data[:-1]) is None


def test_request_stream_is_not_a_webtransport_stream(wire: SimpleNamespace) -> None:
    f = wire.frames
    assert f.read_bidi_stream_header(raw_frame(0x01, b"qpack")) == (-1, 0)
    assert f.read_bidi_stream_header(b"\x01") == (-1, 0)  # HEADERS type alone already tells
    assert f.read_bidi_stream_header(varint(0x4041)) == (-1, 0)  # 0x40 0x41 is not 0x4041's encoding
    assert f.read_bidi_stream_header(b"\x41\x40") == (-1, 0)  # value 0x140, not 0x41
    assert f.read_bidi_stream_header(b"") is None
    assert f.read_bidi_stream_header(b"\x40") is None  # could still become 0x41
    assert f.read_uni_stream_header(b"") is None
    assert f.read_uni_stream_header(b"\x40") is None


# ---------------------------------------------------------------------------- compiled vs pure


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return "raised", (type(exc), getattr(exc, "error_code", None))


@settings(max_examples=300)
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=12),
       limit=st.integers(1, 300))
def test_compiled_and_pure_agree_on_garbage(wire: SimpleNamespace, both_wires: Any, data: bytes,
                                            cuts: list[int], limit: int) -> None:
    if both_wires is None:
        pytest.skip("compiled modules disabled by PYWEBTRANSPORT_NO_EXTENSIONS")
    compiled, pure = (w.frames for w in both_wires)
    parsers = [m.FrameParser(max_frame_size=limit) for m in (compiled, pure)]
    bounds = [*sorted(cut % (len(data) + 1) for cut in cuts), len(data), len(data)]
    previous = 0
    for cut in bounds:
        chunk = data[previous:cut]
        results = [outcome(lambda p=p, chunk=chunk: p.feed(chunk)) for p in parsers]  # type: ignore[misc]
        assert results[0] == results[1]
        assert [(p.buffered, p.in_frame) for p in parsers][0] == [(p.buffered, p.in_frame) for p in parsers][1]
        previous = cut
    for function in ("decode_settings", "read_uni_stream_header", "read_bidi_stream_header"):
        ours, twin = getattr(compiled, function), getattr(pure, function)
        assert outcome(lambda f=ours: f(data)) == outcome(lambda f=twin: f(data))


@given(st.one_of(st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False), st.text(max_size=3), st.none()))
def test_compiled_and_pure_agree_on_encoder_arguments(wire: SimpleNamespace, both_wires: Any, value: Any) -> None:
    if both_wires is None:
        pytest.skip("compiled modules disabled by PYWEBTRANSPORT_NO_EXTENSIONS")
    compiled, pure = (w.frames for w in both_wires)
    calls = [
        lambda m: m.encode_frame_header(value, 1),
        lambda m: m.encode_frame(value, b"x"),
        lambda m: m.encode_settings({value: value}),
        lambda m: m.encode_bidi_stream_header(value),
        lambda m: m.encode_uni_stream_header(value),
        lambda m: m.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, value),
        lambda m: m.FrameParser(max_frame_size=value).buffered,
    ]
    for call in calls:
        assert outcome(lambda call=call: call(compiled)) == outcome(lambda call=call: call(pure))


def test_webtransport_signal_as_a_frame_type_is_a_frame_error(wire: SimpleNamespace) -> None:
    """0x41 opens a bidi WebTransport stream; anywhere else it is H3_FRAME_ERROR (draft-15 §4.2)."""
    parser = wire.frames.FrameParser()
    data = raw_frame(0x00, b"ok") + b"\x40\x41\x00"
    with pytest.raises(FrameError) as caught:
        parser.feed(data)
    assert caught.value.error_code == c.H3_FRAME_ERROR
    with pytest.raises(FrameError) as again:
        parser.feed(b"\x00\x00")
    assert again.value.error_code == c.H3_FRAME_ERROR
