"""Arbitrary bytes, in arbitrary chunks, into every _wire parser, on both implementations.

Whatever arrives, a parser may only raise the error class its contract names (all of them
:class:`~pywebtransport.exceptions.WireError` subclasses, so the engine can map them to a
close code), must keep its buffer bounded by its configured maximum plus a frame or capsule
header, and must give the same result however the bytes were split. A hang shows up as the
pytest-timeout below.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywebtransport.exceptions import (
    BufferReadError,
    CapsuleError,
    DatagramError,
    FrameError,
    SettingsError,
    WireError,
)

pytestmark = pytest.mark.timeout(60)

# Small enough that the fuzz directory stays well under 30 s on 2 cores for both variants.
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: A frame or capsule header is two varints of at most 8 bytes each.
HEADER_SLACK = 16

# Inputs lean toward what parsers find interesting: short varints, small lengths, and
# known type code points, mixed with plain random bytes.
_interesting_bytes = st.sampled_from([
    b"\x00", b"\x01", b"\x04", b"\x07", b"\x40\x41", b"\x40\x54", b"\x54", b"\x3f", b"\x21",
    b"\x80\x00\x28\x43", b"\x80\x00\x78\xae", b"\x80\x00\xff\xff", b"\x99\x0b\x4d\x3d", b"\xc0", b"\xff" * 8,
    b"\x00\x00", b"\x01\x05", b"\x04\x02\x08\x01",
])
arbitrary = st.one_of(
    st.binary(max_size=512),
    st.lists(st.one_of(_interesting_bytes, st.binary(max_size=24)), max_size=40).map(b"".join),
)
cut_sizes = st.lists(st.integers(min_value=0, max_value=48), max_size=32)


def chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes (empty pieces included), then the rest."""
    pos = 0
    for size in sizes:
        yield data[pos : pos + size]
        pos += size
    yield data[pos:]


def _merge_data(frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    # DATA payload is handed out per feed, so chunking splits it: compare it joined up.
    merged: list[tuple[int, bytes]] = []
    for frame_type, payload in frames:
        if frame_type == 0 and merged and merged[-1][0] == 0:
            merged[-1] = (0, merged[-1][1] + payload)
        elif frame_type != 0 or payload:
            merged.append((frame_type, bytes(payload)))
    return merged


def test_contract_errors_are_wire_errors() -> None:
    for cls in (BufferReadError, FrameError, SettingsError, CapsuleError, DatagramError):
        assert issubclass(cls, WireError)


@FUZZ
@given(data=arbitrary, sizes=cut_sizes, max_frame_size=st.sampled_from([1, 7, 64, 300, 1 << 20]))
def test_frame_parser_survives_any_bytes_in_any_chunks(wire: SimpleNamespace, data: bytes, sizes: list[int],
                                                       max_frame_size: int) -> None:
    parser = wire.frames.FrameParser(max_frame_size=max_frame_size)
    got: list[tuple[int, bytes]] = []
    failed = False
    for piece in chunks(data, sizes):
        try:
            frames = parser.feed(piece)
        except FrameError:
            failed = True
            break
        for frame_type, payload in frames:
            assert isinstance(frame_type, int) and frame_type in wire.frames.KNOWN_FRAME_TYPES
            if frame_type != 0:
                assert len(payload) <= max_frame_size
        got.extend(frames)
        assert 0 <= parser.buffered <= max_frame_size + HEADER_SLACK

    if failed:
        # The contract: after an error the parser is unusable and says so on every call.
        with pytest.raises(FrameError):
            parser.feed(b"\x00\x01a")
        with pytest.raises(FrameError):
            wire.frames.FrameParser(max_frame_size=max_frame_size).feed(data)
        return
    whole = wire.frames.FrameParser(max_frame_size=max_frame_size)
    assert _merge_data(whole.feed(data)) == _merge_data(got)
    assert whole.in_frame == parser.in_frame
    assert sum(len(p) for _, p in got) <= len(data)


@FUZZ
@given(data=arbitrary, sizes=cut_sizes, max_capsule_size=st.sampled_from([1, 9, 100, 2048, 64 * 1024]))
def test_capsule_parser_survives_any_bytes_in_any_chunks(wire: SimpleNamespace, data: bytes, sizes: list[int],
                                                         max_capsule_size: int) -> None:
    parser = wire.capsules.CapsuleParser(max_capsule_size=max_capsule_size)
    got: list[tuple[int, object]] = []
    failed = False
    for piece in chunks(data, sizes):
        try:
            capsules = parser.feed(piece)
        except CapsuleError:
            failed = True
            break
        for capsule_type, _ in capsules:
            assert capsule_type in wire.capsules.KNOWN_CAPSULE_TYPES
        got.extend(capsules)
        assert 0 <= parser.buffered <= max_capsule_size + HEADER_SLACK

    if failed:
        with pytest.raises(CapsuleError):
            parser.feed(b"\x00\x00")
        with pytest.raises(CapsuleError):
            wire.capsules.CapsuleParser(max_capsule_size=max_capsule_size).feed(data)
        return
    whole = wire.capsules.CapsuleParser(max_capsule_size=max_capsule_size)
    assert whole.feed(data) == got
    assert whole.in_capsule == parser.in_capsule


@FUZZ
@given(data=arbitrary, extra=st.binary(min_size=1, max_size=16))
def test_stream_headers_never_raise_and_never_overread(wire: SimpleNamespace, data: bytes, extra: bytes) -> None:
    uni = wire.frames.read_uni_stream_header(data)
    if uni is not None:
        stream_type, session_id, consumed = uni
        assert 0 < consumed <= len(data)
        assert (session_id >= 0) == (stream_type == 0x54)
        # Bytes after the header cannot change what the header said.
        assert wire.frames.read_uni_stream_header(data + extra) == uni
    bidi = wire.frames.read_bidi_stream_header(data)
    if bidi is not None:
        session_id, consumed = bidi
        assert 0 <= consumed <= len(data)
        assert (session_id, consumed) == (-1, 0) or (session_id >= 0 and consumed >= 2)
        assert wire.frames.read_bidi_stream_header(data + extra) == bidi
    for view in (bytearray(data), memoryview(data)):
        assert wire.frames.read_uni_stream_header(view) == uni
        assert wire.frames.read_bidi_stream_header(view) == bidi


@FUZZ
@given(data=arbitrary)
def test_decode_settings_raises_only_settings_or_frame_errors(wire: SimpleNamespace, data: bytes) -> None:
    try:
        settings_ = wire.frames.decode_settings(data)
    except FrameError:  # SettingsError is a FrameError
        return
    assert all(isinstance(k, int) and isinstance(v, int) for k, v in settings_.items())
    assert wire.frames.decode_settings(wire.frames.encode_settings(settings_)) == settings_


@FUZZ
@given(data=arbitrary)
def test_decode_datagram_raises_only_datagram_error(wire: SimpleNamespace, data: bytes) -> None:
    try:
        session_id, payload = wire.datagrams.decode_datagram(data)
    except DatagramError:
        return
    assert session_id >= 0 and session_id % 4 == 0
    assert bytes(payload) == data[len(data) - len(payload) :]
    assert len(payload) < len(data)


@FUZZ
@given(data=arbitrary, ops=st.lists(st.sampled_from(["varint", "u8", "u16", "u32", "bytes", "rest"]), max_size=24),
       length=st.integers(min_value=0, max_value=20))
def test_reader_raises_only_buffer_read_error(wire: SimpleNamespace, data: bytes, ops: list[str], length: int) -> None:
    reader = wire.buffer.Reader(data)
    pulls = {"varint": reader.pull_varint, "u8": reader.pull_uint8, "u16": reader.pull_uint16,
             "u32": reader.pull_uint32, "bytes": lambda: reader.pull_bytes(length), "rest": reader.pull_rest}
    for op in ops:
        before = reader.tell()
        with contextlib.suppress(BufferReadError):
            pulls[op]()
        assert before <= reader.tell() <= len(data)
        assert reader.remaining() == len(data) - reader.tell()
    offset = 0
    while True:
        try:
            _, offset = wire.buffer.decode_varint(data, offset)
        except BufferReadError:
            break
        assert offset <= len(data)
