"""Capsules (RFC 9297 §3, WebTransport draft §5-6), compiled and pure."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport import constants as c
from pywebtransport.exceptions import CapsuleError

VARINT_TYPES = [c.WT_CAPSULE_MAX_DATA, c.WT_CAPSULE_MAX_STREAMS_BIDI, c.WT_CAPSULE_MAX_STREAMS_UNI,
                c.WT_CAPSULE_DATA_BLOCKED, c.WT_CAPSULE_STREAMS_BLOCKED_BIDI, c.WT_CAPSULE_STREAMS_BLOCKED_UNI]


def test_every_capsule_round_trips(wire: SimpleNamespace) -> None:
    caps = wire.capsules
    stream = (caps.encode_close_session(0xDEADBEEF, "bye ✓") + caps.encode_drain_session()
              + caps.encode_capsule(c.CAPSULE_DATAGRAM, b"payload")
              + b"".join(caps.encode_varint_capsule(t, 2**40 + i) for i, t in enumerate(VARINT_TYPES)))
    parsed = caps.CapsuleParser().feed(stream)
    assert parsed == [(c.WT_CAPSULE_CLOSE_SESSION, (0xDEADBEEF, "bye ✓")), (c.WT_CAPSULE_DRAIN_SESSION, None),
                      (c.CAPSULE_DATAGRAM, b"payload")] + [(t, 2**40 + i) for i, t in enumerate(VARINT_TYPES)]


def test_close_capsule_wire_format(wire: SimpleNamespace) -> None:
    # type 0x2843 as a 2-byte varint, length 4 + reason, u32 code big-endian, then the reason
    assert wire.capsules.encode_close_session(258, "ok") == b"\x68\x43\x06\x00\x00\x01\x02ok"


def test_close_reason_of_exactly_1024_bytes_is_fine_and_1025_is_not(wire: SimpleNamespace) -> None:
    caps = wire.capsules
    assert caps.CapsuleParser().feed(caps.encode_close_session(1, "r" * 1024)) == [
        (c.WT_CAPSULE_CLOSE_SESSION, (1, "r" * 1024))]
    with pytest.raises(ValueError):
        caps.encode_close_session(1, "r" * 1025)
    with pytest.raises(CapsuleError) as info:
        caps.CapsuleParser(max_capsule_size=4096).feed(
            caps.encode_capsule(c.WT_CAPSULE_CLOSE_SESSION, b"\0\0\0\1" + b"r" * 1025))
    assert info.value.error_code == c.H3_MESSAGE_ERROR


@pytest.mark.parametrize("code", [-1, 2**32, 2**70])
def test_close_code_must_be_u32(wire: SimpleNamespace, code: int) -> None:
    with pytest.raises(ValueError, match=rf"^error_code must be in \[0, 0xffffffff\], got {code}$"):
        wire.capsules.encode_close_session(code, "")


@pytest.mark.parametrize("code", [1.0, 2.5, "1", None])
def test_close_code_that_is_not_an_integer_is_a_type_error(wire: SimpleNamespace, code: object) -> None:
    with pytest.raises(TypeError, match=f"^error_code must be an integer, not {type(code).__name__}$"):
        wire.capsules.encode_close_session(code, "")


@pytest.mark.parametrize("reason", [b"bytes", None, 7])
def test_close_reason_that_is_not_a_str_is_a_type_error(wire: SimpleNamespace, reason: object) -> None:
    with pytest.raises(TypeError, match=f"^reason must be a str, not {type(reason).__name__}$"):
        wire.capsules.encode_close_session(0, reason)


@pytest.mark.parametrize("value", [b"", b"\0\0\0", b"\0\0\0\1\xff\xfe", b"\0\0\0\1\xc3"])
def test_malformed_close_values_are_message_errors(wire: SimpleNamespace, value: bytes) -> None:
    with pytest.raises(CapsuleError) as info:
        wire.capsules.CapsuleParser().feed(wire.capsules.encode_capsule(c.WT_CAPSULE_CLOSE_SESSION, value))
    assert info.value.error_code == c.H3_MESSAGE_ERROR


@pytest.mark.parametrize("value", [b"", b"\x40", b"\x05\x06"])
def test_varint_capsules_must_hold_exactly_one_varint(wire: SimpleNamespace, value: bytes) -> None:
    with pytest.raises(CapsuleError) as info:
        wire.capsules.CapsuleParser().feed(wire.capsules.encode_capsule(c.WT_CAPSULE_MAX_DATA, value))
    assert info.value.error_code == c.H3_MESSAGE_ERROR


VARINT_CAPSULES = [c.WT_CAPSULE_MAX_DATA, c.WT_CAPSULE_MAX_STREAMS_BIDI, c.WT_CAPSULE_MAX_STREAMS_UNI,
                   c.WT_CAPSULE_DATA_BLOCKED, c.WT_CAPSULE_STREAMS_BLOCKED_BIDI, c.WT_CAPSULE_STREAMS_BLOCKED_UNI]


@pytest.mark.parametrize("capsule_type", VARINT_CAPSULES)
def test_a_varint_capsule_declaring_more_than_8_bytes_fails_at_its_length(wire: SimpleNamespace,
                                                                          capsule_type: int) -> None:
    caps = wire.capsules
    parser = caps.CapsuleParser()
    assert parser.feed(caps.encode_varint_capsule(capsule_type, 1 << 40)) == [(capsule_type, 1 << 40)]  # 8 bytes
    header = caps.encode_capsule(capsule_type, b"")[:-1] + b"\x40\x09"  # type + length 9 (2-byte varint)
    with pytest.raises(CapsuleError) as info:
        parser.feed(header)  # refused before any value byte arrives: a peer cannot make us hold one
    assert info.value.error_code == c.H3_MESSAGE_ERROR and "exactly one varint" in str(info.value)
    assert parser.buffered == 0


def test_a_close_capsule_declaring_a_reason_over_1024_bytes_fails_at_its_length(wire: SimpleNamespace) -> None:
    caps = wire.capsules
    parser = caps.CapsuleParser()
    with pytest.raises(CapsuleError) as info:
        parser.feed(b"\x68\x43" + b"\x44\x05")  # CLOSE, length 4 + 1025
    assert info.value.error_code == c.H3_MESSAGE_ERROR and "at most 1024" in str(info.value)
    assert parser.buffered == 0
    longest = caps.encode_close_session(7, "r" * 1024)  # 1028 bytes of value: still fine
    assert caps.CapsuleParser().feed(longest) == [(c.WT_CAPSULE_CLOSE_SESSION, (7, "r" * 1024))]


def test_grease_and_unknown_capsules_are_skipped(wire: SimpleNamespace) -> None:
    caps = wire.capsules
    grease = [caps.encode_capsule(0x29 * n + 0x17, b"g" * n) for n in (0, 1, 5, 300)]
    data = grease[0] + caps.encode_drain_session() + b"".join(grease[1:]) + caps.encode_capsule(0x7777, b"x")
    assert caps.CapsuleParser().feed(data) == [(c.WT_CAPSULE_DRAIN_SESSION, None)]


def test_a_huge_unknown_capsule_costs_no_memory(wire: SimpleNamespace) -> None:
    caps = wire.capsules
    parser = caps.CapsuleParser(max_capsule_size=64)
    assert parser.feed(b"\x80\x00\x77\x77" + b"\xc0\x00\x00\x00\x40\x00\x00\x00") == []  # 1 GiB announced
    for _ in range(64):
        assert parser.feed(b"\0" * 65536) == []
        assert parser.buffered == 0
    assert parser.in_capsule


def test_a_known_capsule_over_the_limit_fails_at_its_length(wire: SimpleNamespace) -> None:
    caps = wire.capsules
    parser = caps.CapsuleParser(max_capsule_size=100)
    header = b"\x68\x43" + b"\x40\x65"  # CLOSE, length 101: refused before any value byte arrives
    with pytest.raises(CapsuleError) as info:
        parser.feed(header)
    assert info.value.error_code == c.H3_EXCESSIVE_LOAD
    with pytest.raises(CapsuleError):  # and the parser stays failed
        parser.feed(caps.encode_drain_session())


@pytest.mark.parametrize("bad", [0, -1, -(2**70)])
def test_max_capsule_size_must_be_positive(wire: SimpleNamespace, bad: int) -> None:
    with pytest.raises(ValueError, match=f"^max_capsule_size must be at least 1, got {bad}$"):
        wire.capsules.CapsuleParser(max_capsule_size=bad)


@pytest.mark.parametrize("bad", [0.5, 64.0, "64", None])
def test_max_capsule_size_must_be_an_integer(wire: SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError, match="^max_capsule_size must be an integer"):
        wire.capsules.CapsuleParser(max_capsule_size=bad)


def test_max_capsule_size_beyond_any_varint_means_no_limit(wire: SimpleNamespace) -> None:
    parser = wire.capsules.CapsuleParser(max_capsule_size=2**70)
    # A DATAGRAM capsule declaring the largest length there is: accepted, waiting for its value.
    assert parser.feed(b"\x00" + b"\xff" * 8 + b"abc") == []
    assert parser.in_capsule and parser.buffered == 3


def test_buffered_and_in_capsule_follow_a_split_capsule(wire: SimpleNamespace) -> None:
    data = wire.capsules.encode_capsule(c.CAPSULE_DATAGRAM, b"z" * 50)
    parser = wire.capsules.CapsuleParser()
    assert parser.feed(data[:1]) == [] and parser.in_capsule and parser.buffered == 1
    assert parser.feed(data[1:20]) == [] and parser.buffered == 20 - 2
    assert parser.feed(data[20:]) == [(c.CAPSULE_DATAGRAM, b"z" * 50)]
    assert not parser.in_capsule and parser.buffered == 0


def test_memoryview_and_bytearray_input(wire: SimpleNamespace) -> None:
    data = wire.capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_DATA, 77)
    assert wire.capsules.CapsuleParser().feed(bytearray(data)) == [(c.WT_CAPSULE_MAX_DATA, 77)]
    assert wire.capsules.CapsuleParser().feed(memoryview(data)) == [(c.WT_CAPSULE_MAX_DATA, 77)]
    spaced = bytes(byte for value in data for byte in (value, 0xEE))
    assert wire.capsules.CapsuleParser().feed(memoryview(spaced)[::2]) == [(c.WT_CAPSULE_MAX_DATA, 77)]
    assert wire.capsules.encode_capsule(c.CAPSULE_DATAGRAM, memoryview(b"axbx")[::2]) == b"\x00\x02ab"
    with pytest.raises(TypeError, match="^data must be a bytes-like object, not str$"):
        wire.capsules.CapsuleParser().feed("text")
    with pytest.raises(TypeError, match="^value must be a bytes-like object, not int$"):
        wire.capsules.encode_capsule(c.CAPSULE_DATAGRAM, 5)  # not five zero bytes


@st.composite
def capsule_streams(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, object]]]:
    from pywebtransport._wire import _capsules_py as pure

    parts, expected = [], []
    for kind in draw(st.lists(st.sampled_from(["close", "drain", "dgram", "varint", "grease"]), max_size=12)):
        if kind == "close":
            code, reason = draw(st.integers(0, 2**32 - 1)), draw(st.text(max_size=40))
            parts.append(pure.encode_close_session(code, reason))
            expected.append((c.WT_CAPSULE_CLOSE_SESSION, (code, reason)))
        elif kind == "drain":
            parts.append(pure.encode_drain_session())
            expected.append((c.WT_CAPSULE_DRAIN_SESSION, None))
        elif kind == "dgram":
            payload = draw(st.binary(max_size=80))
            parts.append(pure.encode_capsule(c.CAPSULE_DATAGRAM, payload))
            expected.append((c.CAPSULE_DATAGRAM, payload))
        elif kind == "varint":
            t, v = draw(st.sampled_from(VARINT_TYPES)), draw(st.integers(0, 2**62 - 1))
            parts.append(pure.encode_varint_capsule(t, v))
            expected.append((t, v))
        else:
            parts.append(pure.encode_capsule(0x29 * draw(st.integers(0, 1000)) + 0x17, draw(st.binary(max_size=60))))
    return b"".join(parts), expected


@settings(max_examples=150, deadline=None)
@given(stream=capsule_streams(), cuts=st.lists(st.integers(0, 2000), max_size=10))
def test_any_chunking_gives_the_same_capsules(wire: SimpleNamespace, stream, cuts: list[int]) -> None:
    data, expected = stream
    parser = wire.capsules.CapsuleParser()
    got = []
    last = 0
    for cut in sorted({min(cut, len(data)) for cut in cuts}) + [len(data)]:
        got += parser.feed(data[last:cut])
        last = cut
    assert got == expected
    assert not parser.in_capsule


def _outcome(module: SimpleNamespace, chunks: list[bytes]) -> list[object]:
    parser = module.CapsuleParser(max_capsule_size=256)
    out: list[object] = []
    for chunk in chunks:
        try:
            out.append(parser.feed(chunk))
        except CapsuleError as exc:
            out.append(("error", exc.error_code))
        out.append((parser.buffered, parser.in_capsule))
    return out


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=8))
def test_compiled_and_pure_agree_on_garbage(both_wires, chunks: list[bytes]) -> None:
    if both_wires is None:
        pytest.skip("PYWEBTRANSPORT_NO_EXTENSIONS is set: only the pure twin is present")
    compiled, pure = both_wires
    assert _outcome(compiled.capsules, chunks) == _outcome(pure.capsules, chunks)


def test_report_unknown_returns_each_skipped_capsule_once(wire: SimpleNamespace) -> None:
    grease = wire.capsules.encode_capsule(0x29, b"abc") + wire.capsules.encode_capsule(0x17D, b"")
    close = wire.capsules.encode_close_session(7, "x")
    quiet = wire.capsules.CapsuleParser()
    assert quiet.feed(close + grease) == [(c.WT_CAPSULE_CLOSE_SESSION, (7, "x"))]
    loud = wire.capsules.CapsuleParser(report_unknown=True)
    out = [item for i in range(len(close + grease)) for item in loud.feed((close + grease)[i:i + 1])]
    assert out == [(c.WT_CAPSULE_CLOSE_SESSION, (7, "x")), (0x29, None), (0x17D, None)]
