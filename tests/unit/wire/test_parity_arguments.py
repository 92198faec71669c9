"""The compiled modules and their pure twins agree on odd arguments, errors included.

Each property makes the same call on both variants and requires the same result, or the
same exception type with the same message (and the same ``error_code`` where there is one):
floats, bools, huge and negative integers, strings, bytes and None in every integer slot,
and every kind of bytes-like object (bytearray, offset and non-contiguous memoryviews,
arrays) in every bytes slot. The unit tests next to these pin what the agreed behaviour is.
"""

from __future__ import annotations

import array
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport import constants as c

PARITY = settings(max_examples=150, deadline=None)

#: Anything a caller might pass where an integer belongs.
ODD_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 4, 63, 64, 0x54, 2**32 - 1, 2**32, 2**62 - 4, 2**62 - 1, 2**62, 2**64 - 4, 2**64, -1, -4]),
    st.booleans(),
    st.floats(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.none(),
)


def bytes_like_forms(raw: bytes) -> list[Any]:
    """``raw`` as every kind of bytes-like object a caller may hand over."""
    spaced = bytes(byte for value in raw for byte in (value, 0xA5))
    return [raw, bytearray(raw), memoryview(raw), memoryview(b"\xa5" + raw)[1:], memoryview(spaced)[::2],
            array.array("B", raw)]


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What a call did, in a form that compares across variants (NaN made comparable)."""
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - the exception is what is compared
        return "raised", type(exc), str(exc), getattr(exc, "error_code", None)
    if isinstance(result, float) and math.isnan(result):
        return "ok", "nan"
    return "ok", result


def assert_agree(both_wires: tuple[SimpleNamespace, SimpleNamespace] | None,
                 call: Callable[[SimpleNamespace], Any]) -> tuple[Any, ...]:
    if both_wires is None:
        pytest.skip("compiled _wire disabled by PYWEBTRANSPORT_NO_EXTENSIONS")
    compiled, pure = both_wires
    got = outcome(lambda: call(compiled)), outcome(lambda: call(pure))
    assert got[0] == got[1]
    return got[0]


# Every integer argument of every encoder, constructor and size helper.
INTEGER_SLOTS: dict[str, Callable[[SimpleNamespace, Any], Any]] = {
    "buffer.encode_varint": lambda w, v: w.buffer.encode_varint(v),
    "buffer.decode_varint offset": lambda w, v: w.buffer.decode_varint(b"\x01\x02", v),
    "buffer.Reader.pull_bytes": lambda w, v: w.buffer.Reader(b"abc").pull_bytes(v),
    "frames.encode_frame_header type": lambda w, v: w.frames.encode_frame_header(v, 1),
    "frames.encode_frame_header length": lambda w, v: w.frames.encode_frame_header(1, v),
    "frames.encode_frame type": lambda w, v: w.frames.encode_frame(v, b"x"),
    "frames.encode_settings id": lambda w, v: w.frames.encode_settings({v: 1}),
    "frames.encode_settings value": lambda w, v: w.frames.encode_settings({6: v}),
    "frames.encode_uni_stream_header type": lambda w, v: w.frames.encode_uni_stream_header(v),
    "frames.encode_uni_stream_header session": lambda w, v: w.frames.encode_uni_stream_header(
        c.STREAM_TYPE_WEBTRANSPORT, v),
    "frames.encode_bidi_stream_header": lambda w, v: w.frames.encode_bidi_stream_header(v),
    "frames.FrameParser max_frame_size": lambda w, v: w.frames.FrameParser(max_frame_size=v).buffered,
    "capsules.encode_capsule type": lambda w, v: w.capsules.encode_capsule(v, b"x"),
    "capsules.encode_close_session code": lambda w, v: w.capsules.encode_close_session(v),
    "capsules.encode_close_session reason": lambda w, v: w.capsules.encode_close_session(0, v),
    "capsules.encode_varint_capsule type": lambda w, v: w.capsules.encode_varint_capsule(v, 1),
    "capsules.encode_varint_capsule value": lambda w, v: w.capsules.encode_varint_capsule(
        c.WT_CAPSULE_MAX_DATA, v),
    "capsules.CapsuleParser max_capsule_size": lambda w, v: w.capsules.CapsuleParser(max_capsule_size=v).buffered,
    "datagrams.encode_datagram session": lambda w, v: w.datagrams.encode_datagram(v, b"x"),
    "datagrams.max_payload_size session": lambda w, v: w.datagrams.max_payload_size(v, 1200, 1200),
    "datagrams.max_payload_size frame size": lambda w, v: w.datagrams.max_payload_size(0, v, 1200),
    "datagrams.max_payload_size path": lambda w, v: w.datagrams.max_payload_size(0, 1200, v),
    "datagrams.check_payload_size": lambda w, v: w.datagrams.check_payload_size(v, 10),
    "datagrams.DatagramRing max_count": lambda w, v: len(w.datagrams.DatagramRing(max_count=v, max_bytes=10)),
    "datagrams.DatagramRing max_bytes": lambda w, v: len(w.datagrams.DatagramRing(max_count=10, max_bytes=v)),
    "datagrams.DatagramRing.push": lambda w, v: w.datagrams.DatagramRing(max_count=4, max_bytes=64).push(v),
    # A value that is no bytes-like object, where one belongs.
    "frames.encode_frame payload": lambda w, v: w.frames.encode_frame(0, v),
    "capsules.encode_capsule value": lambda w, v: w.capsules.encode_capsule(0, v),
    "datagrams.encode_datagram payload": lambda w, v: w.datagrams.encode_datagram(0, v),
    "datagrams.decode_datagram": lambda w, v: w.datagrams.decode_datagram(v),
    "frames.FrameParser.feed": lambda w, v: w.frames.FrameParser().feed(v),
    "capsules.CapsuleParser.feed": lambda w, v: w.capsules.CapsuleParser().feed(v),
}


@PARITY
@given(value=ODD_VALUES)
@pytest.mark.parametrize("slot", INTEGER_SLOTS)
def test_variants_agree_on_any_argument(both_wires: tuple[SimpleNamespace, SimpleNamespace] | None, slot: str,
                                        value: object) -> None:
    assert_agree(both_wires, lambda w: INTEGER_SLOTS[slot](w, value))


# Every bytes argument of every decoder and encoder; a decoder must also read every form
# of the same bytes as it reads the bytes themselves.
BYTES_SLOTS: dict[str, Callable[[SimpleNamespace, Any], Any]] = {
    "buffer.decode_varint": lambda w, d: w.buffer.decode_varint(d),
    "buffer.Reader": lambda w, d: (w.buffer.Reader(d).pull_varint(),),
    "frames.decode_settings": lambda w, d: w.frames.decode_settings(d),
    "frames.read_uni_stream_header": lambda w, d: w.frames.read_uni_stream_header(d),
    "frames.read_bidi_stream_header": lambda w, d: w.frames.read_bidi_stream_header(d),
    "frames.FrameParser.feed": lambda w, d: w.frames.FrameParser(max_frame_size=64).feed(d),
    "capsules.CapsuleParser.feed": lambda w, d: w.capsules.CapsuleParser(max_capsule_size=64).feed(d),
    "datagrams.decode_datagram": lambda w, d: w.datagrams.decode_datagram(d),
    "frames.encode_frame": lambda w, d: w.frames.encode_frame(0, d),
    "capsules.encode_capsule": lambda w, d: w.capsules.encode_capsule(0, d),
    "datagrams.encode_datagram": lambda w, d: w.datagrams.encode_datagram(4, d),
    "datagrams.DatagramRing.push": lambda w, d: w.datagrams.DatagramRing(max_count=4, max_bytes=64).push(d),
}

_interesting = st.sampled_from([b"\x40\x41\x04", b"\x40\x54\x04", b"\x00\x03abc", b"\x01\x02\x33\x01", b"\x68\x43",
                                b"\xc0", b"\x80\x00\x00", b"\x00\x00"])
RAW = st.one_of(st.binary(max_size=40), st.lists(_interesting, max_size=5).map(b"".join))


@PARITY
@given(raw=RAW)
@pytest.mark.parametrize("slot", BYTES_SLOTS)
def test_variants_agree_on_every_bytes_like_form(both_wires: tuple[SimpleNamespace, SimpleNamespace] | None,
                                                 slot: str, raw: bytes) -> None:
    call = BYTES_SLOTS[slot]
    expected = assert_agree(both_wires, lambda w: call(w, raw))
    for form in bytes_like_forms(raw)[1:]:
        got = assert_agree(both_wires, lambda w, form=form: call(w, form))  # type: ignore[misc]
        if slot == "datagrams.DatagramRing.push":
            assert got[:2] == ("raised", TypeError)  # the ring takes bytes only: nothing to convert
        else:
            assert got == expected, type(form).__name__


# Two-argument calls with both arguments odd: the variants must complain about the same one.
PAIR_SLOTS: dict[str, Callable[[SimpleNamespace, Any, Any], Any]] = {
    "frames.encode_frame_header": lambda w, a, b: w.frames.encode_frame_header(a, b),
    "frames.encode_frame": lambda w, a, b: w.frames.encode_frame(a, b),
    "frames.encode_settings": lambda w, a, b: w.frames.encode_settings({a: b}),
    "frames.encode_uni_stream_header": lambda w, a, b: w.frames.encode_uni_stream_header(a, b),
    "capsules.encode_capsule": lambda w, a, b: w.capsules.encode_capsule(a, b),
    "capsules.encode_close_session": lambda w, a, b: w.capsules.encode_close_session(a, b),
    "capsules.encode_varint_capsule": lambda w, a, b: w.capsules.encode_varint_capsule(a, b),
    "datagrams.encode_datagram": lambda w, a, b: w.datagrams.encode_datagram(a, b),
    "datagrams.max_payload_size": lambda w, a, b: w.datagrams.max_payload_size(a, b, b),
    "datagrams.check_payload_size": lambda w, a, b: w.datagrams.check_payload_size(a, b),
    "datagrams.DatagramRing": lambda w, a, b: len(w.datagrams.DatagramRing(max_count=a, max_bytes=b)),
}


@PARITY
@given(first=ODD_VALUES, second=ODD_VALUES)
@pytest.mark.parametrize("slot", PAIR_SLOTS)
def test_variants_agree_on_which_argument_is_wrong(both_wires: tuple[SimpleNamespace, SimpleNamespace] | None,
                                                   slot: str, first: object, second: object) -> None:
    assert_agree(both_wires, lambda w: PAIR_SLOTS[slot](w, first, second))
