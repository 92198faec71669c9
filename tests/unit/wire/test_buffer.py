"""QUIC varints (RFC 9000 §16) and the byte Reader, against both _wire variants.

Every test takes ``wire`` and so runs on the compiled module and the pure twin; the
properties at the end use ``both_wires`` to check that the two agree on arbitrary input,
exception types included.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport.constants import VARINT_MAX
from pywebtransport.exceptions import BufferReadError

# RFC 9000 §A.1 sample encodings (PROTOCOL.md), including the non-minimal 0x4025.
RFC9000_VECTORS = [
    ("c2197c5eff14e88c", 151288809941952652),
    ("9d7f3e7d", 494878333),
    ("7bbd", 15293),
    ("25", 37),
    ("4025", 37),
]

# Shortest encodings on both sides of each width boundary.
BOUNDARIES = [
    (0, "00"),
    (63, "3f"),
    (64, "4040"),
    (16383, "7fff"),
    (16384, "80004000"),
    (2**30 - 1, "bfffffff"),
    (2**30, "c000000040000000"),
    (2**62 - 1, "ffffffffffffffff"),
]

varints = st.integers(min_value=0, max_value=VARINT_MAX)


def as_type(kind: str, raw: bytes) -> Any:
    if kind == "bytes":
        return raw
    if kind == "bytearray":
        return bytearray(raw)
    return memoryview(b"\xff" + raw + b"\xff")[1:-1]  # a view that does not start at 0


INPUT_KINDS = ["bytes", "bytearray", "memoryview"]


# ---------------------------------------------------------------------------- module surface


def test_public_names_match_the_contract(wire: SimpleNamespace) -> None:
    assert sorted(wire.buffer.__all__) == sorted(["VARINT_MAX", "BufferReadError", "Reader", "decode_varint",
                                                  "encode_varint"])
    for name in wire.buffer.__all__:
        assert hasattr(wire.buffer, name)


def test_buffer_read_error_is_the_library_exception(wire: SimpleNamespace) -> None:
    assert wire.buffer.BufferReadError is BufferReadError
    with pytest.raises(BufferReadError):
        wire.buffer.decode_varint(b"")


def test_varint_max_is_2_pow_62_minus_1(wire: SimpleNamespace) -> None:
    assert wire.buffer.VARINT_MAX == 2**62 - 1


# ---------------------------------------------------------------------------- decode / encode


@pytest.mark.parametrize("kind", INPUT_KINDS)
@pytest.mark.parametrize(("hex_data", "value"), RFC9000_VECTORS)
def test_decode_varint_rfc9000_vectors(wire: SimpleNamespace, hex_data: str, value: int, kind: str) -> None:
    raw = bytes.fromhex(hex_data)
    assert wire.buffer.decode_varint(as_type(kind, raw)) == (value, len(raw))


@pytest.mark.parametrize(("hex_data", "value"), RFC9000_VECTORS)
def test_decode_varint_at_an_offset_returns_the_position_after_it(
    wire: SimpleNamespace, hex_data: str, value: int
) -> None:
    raw = bytes.fromhex(hex_data)
    assert wire.buffer.decode_varint(b"\x00\x00\x00" + raw + b"\x3f", 3) == (value, 3 + len(raw))


@pytest.mark.parametrize(("value", "hex_data"), BOUNDARIES)
def test_encode_varint_is_shortest_at_width_boundaries(wire: SimpleNamespace, value: int, hex_data: str) -> None:
    assert wire.buffer.encode_varint(value).hex() == hex_data
    assert wire.buffer.decode_varint(bytes.fromhex(hex_data)) == (value, len(hex_data) // 2)


@pytest.mark.parametrize("value", [-1, 2**62, 2**64 - 1, 2**64, 2**100, -(2**100)])
def test_out_of_range_varint_is_a_value_error(wire: SimpleNamespace, value: int) -> None:
    with pytest.raises(ValueError, match=rf"^value must be in \[0, 2\*\*62-1\], got {value}$"):
        wire.buffer.encode_varint(value)


@pytest.mark.parametrize(("size", "prefix"), [(1, 0x00), (2, 0x40), (4, 0x80), (8, 0xC0)])
def test_non_minimal_encodings_are_accepted(wire: SimpleNamespace, size: int, prefix: int) -> None:
    raw = bytes([prefix]) + b"\x00" * (size - 2) + b"\x25" if size > 1 else b"\x25"
    assert wire.buffer.decode_varint(raw) == (37, size)
    assert wire.buffer.Reader(raw).pull_varint() == 37


@pytest.mark.parametrize(("hex_data", "value"), RFC9000_VECTORS)
def test_varint_truncated_at_every_byte_is_a_buffer_read_error(
    wire: SimpleNamespace, hex_data: str, value: int
) -> None:
    raw = bytes.fromhex(hex_data)
    for cut in range(len(raw)):
        with pytest.raises(BufferReadError):
            wire.buffer.decode_varint(raw[:cut])
        with pytest.raises(BufferReadError):
            wire.buffer.decode_varint(b"\x00" + raw[:cut], 1)
        reader = wire.buffer.Reader(raw[:cut])
        with pytest.raises(BufferReadError):
            reader.pull_varint()
        assert reader.tell() == 0  # a failed read consumes nothing


@pytest.mark.parametrize("offset", [2, 3, 2**40, 2**70])
def test_decode_varint_offset_past_the_end_is_a_buffer_read_error(wire: SimpleNamespace, offset: int) -> None:
    with pytest.raises(BufferReadError):
        wire.buffer.decode_varint(b"\x01\x02", offset)


@pytest.mark.parametrize("offset", [-1, -(2**70)])
def test_decode_varint_negative_offset_is_a_value_error(wire: SimpleNamespace, offset: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        wire.buffer.decode_varint(b"\x01\x02", offset)


def test_multibyte_memoryview_is_read_as_raw_bytes(wire: SimpleNamespace) -> None:
    words = array.array("B", [0x40, 0x25, 0x00, 0x00]).tobytes()
    view = memoryview(array.array("I", [int.from_bytes(words, "little")]))
    assert view.format == "I"
    assert wire.buffer.decode_varint(view) == (37, 2)
    assert wire.buffer.Reader(view).pull_varint() == 37


def test_non_contiguous_memoryview_is_read_through_a_copy(wire: SimpleNamespace) -> None:
    view = memoryview(b"\x40\x00\x25\x00")[::2]  # the bytes 0x40 0x25: 37 in two bytes
    assert wire.buffer.decode_varint(view) == (37, 2)
    assert wire.buffer.Reader(view).pull_varint() == 37


@pytest.mark.parametrize("bad", ["\x25", 37, None, [0x25]])
def test_non_buffer_input_is_a_type_error_naming_data(wire: SimpleNamespace, bad: object) -> None:
    message = f"^data must be a bytes-like object, not {type(bad).__name__}$"
    with pytest.raises(TypeError, match=message):
        wire.buffer.decode_varint(bad)
    with pytest.raises(TypeError, match=message):
        wire.buffer.Reader(bad)


@pytest.mark.parametrize("bad", [1.0, 1.5, -1.0, "1"])
def test_non_integer_values_are_a_type_error_not_truncated(wire: SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError, match="^value must be an integer"):
        wire.buffer.encode_varint(bad)
    with pytest.raises(TypeError, match="^offset must be an integer"):
        wire.buffer.decode_varint(b"\x01\x02", bad)
    reader = wire.buffer.Reader(b"\x01\x02")
    with pytest.raises(TypeError, match="^length must be an integer"):
        reader.pull_bytes(bad)
    assert reader.tell() == 0


def test_bool_is_accepted_as_an_integer(wire: SimpleNamespace) -> None:
    assert wire.buffer.encode_varint(True) == b"\x01"
    assert wire.buffer.encode_varint(False) == b"\x00"
    assert wire.buffer.decode_varint(b"\x00\x05", True) == (5, 2)


# ---------------------------------------------------------------------------- Reader


def test_reader_reads_every_width_in_network_order(wire: SimpleNamespace) -> None:
    data = (b"\x00\xff" + b"\x00\x00\xff\xff\x12\x34" + b"\x00\x00\x00\x00\xff\xff\xff\xff\x12\x34\x56\x78"
            + b"".join(bytes.fromhex(hex_data) for _, hex_data in BOUNDARIES) + b"abcdefg")
    reader = wire.buffer.Reader(data)
    assert [reader.pull_uint8(), reader.pull_uint8()] == [0, 0xFF]
    assert [reader.pull_uint16(), reader.pull_uint16(), reader.pull_uint16()] == [0, 0xFFFF, 0x1234]
    assert [reader.pull_uint32(), reader.pull_uint32(), reader.pull_uint32()] == [0, 0xFFFFFFFF, 0x12345678]
    assert [reader.pull_varint() for _ in BOUNDARIES] == [value for value, _ in BOUNDARIES]
    assert reader.pull_bytes(0) == b""
    assert reader.pull_bytes(3) == b"abc"
    assert reader.pull_rest() == b"defg"
    assert reader.eof()
    assert reader.pull_rest() == b""


@pytest.mark.parametrize(("method", "size"), [("pull_uint8", 1), ("pull_uint16", 2), ("pull_uint32", 4)])
def test_fixed_width_read_past_the_end_is_a_buffer_read_error(wire: SimpleNamespace, method: str, size: int) -> None:
    for available in range(size):
        reader = wire.buffer.Reader(b"\x01" * available)
        with pytest.raises(BufferReadError):
            getattr(reader, method)()
        assert reader.tell() == 0


def test_pull_bytes_checks_length(wire: SimpleNamespace) -> None:
    reader = wire.buffer.Reader(b"abcd")
    reader.pull_uint8()
    with pytest.raises(BufferReadError):
        reader.pull_bytes(4)
    with pytest.raises(BufferReadError):
        reader.pull_bytes(2**70)
    assert reader.tell() == 1
    with pytest.raises(ValueError, match="negative"):
        reader.pull_bytes(-1)
    with pytest.raises(ValueError, match="negative"):
        reader.pull_bytes(-(2**70))
    assert reader.pull_bytes(3) == b"bcd"


def test_tell_eof_remaining(wire: SimpleNamespace) -> None:
    reader = wire.buffer.Reader(b"\x01\x02\x03")
    assert (reader.tell(), reader.remaining(), reader.eof()) == (0, 3, False)
    assert reader.pull_uint16() == 0x0102
    assert (reader.tell(), reader.remaining(), reader.eof()) == (2, 1, False)
    assert reader.pull_uint8() == 3
    assert (reader.tell(), reader.remaining(), reader.eof()) == (3, 0, True)
    with pytest.raises(BufferReadError):
        reader.pull_uint8()
    assert reader.tell() == 3


def test_empty_reader_is_at_eof(wire: SimpleNamespace) -> None:
    reader = wire.buffer.Reader(b"")
    assert reader.eof() and reader.remaining() == 0 and reader.pull_rest() == b""
    with pytest.raises(BufferReadError):
        reader.pull_varint()


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_reader_accepts_every_bytes_like_type(wire: SimpleNamespace, kind: str) -> None:
    reader = wire.buffer.Reader(as_type(kind, bytes.fromhex("7bbd0102ff")))
    assert reader.pull_varint() == 15293
    assert reader.pull_uint16() == 0x0102
    rest = reader.pull_rest()
    assert rest == b"\xff" and type(rest) is bytes


def test_reader_snapshots_a_bytearray(wire: SimpleNamespace) -> None:
    data = bytearray(b"\x25\x26")
    reader = wire.buffer.Reader(data)
    data[0] = 0x3F
    data += b"more"  # resizing must not be blocked by the reader holding a buffer export
    assert reader.pull_varint() == 37
    assert reader.remaining() == 1


# ---------------------------------------------------------------------------- properties


@given(value=varints)
def test_property_encode_decode_round_trip(wire: SimpleNamespace, value: int) -> None:
    encoded = wire.buffer.encode_varint(value)
    assert wire.buffer.decode_varint(encoded) == (value, len(encoded))
    # Shortest: one width smaller could not hold it.
    assert len(encoded) == 1 or value >= 1 << (8 * (len(encoded) // 2) - 2)


@given(values=st.lists(varints, max_size=50), tail=st.binary(max_size=8))
def test_property_encode_then_reader_round_trip(wire: SimpleNamespace, values: list[int], tail: bytes) -> None:
    reader = wire.buffer.Reader(b"".join(wire.buffer.encode_varint(value) for value in values) + tail)
    assert [reader.pull_varint() for _ in values] == values
    assert reader.pull_rest() == tail


def outcome(call: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    try:
        return "ok", call(*args)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return "error", type(exc)


@settings(max_examples=300)
@given(data=st.binary(max_size=12), offset=st.integers(min_value=-2, max_value=14))
def test_property_variants_agree_on_decode_varint(
    both_wires: tuple[SimpleNamespace, SimpleNamespace] | None, data: bytes, offset: int
) -> None:
    if both_wires is None:
        pytest.skip("compiled _wire disabled by PYWEBTRANSPORT_NO_EXTENSIONS")
    compiled, pure = both_wires
    for payload in (data, bytearray(data), memoryview(data)):
        assert outcome(compiled.buffer.decode_varint, payload, offset) == outcome(
            pure.buffer.decode_varint, payload, offset
        )


READER_OPS = st.lists(
    st.one_of(
        st.sampled_from(["pull_varint", "pull_uint8", "pull_uint16", "pull_uint32", "pull_rest", "tell", "eof",
                         "remaining"]).map(lambda name: (name, ())),
        st.integers(min_value=-2, max_value=10).map(lambda n: ("pull_bytes", (n,))),
    ),
    max_size=20,
)


@settings(max_examples=300)
@given(data=st.binary(max_size=12), ops=READER_OPS)
def test_property_variants_agree_on_reader_operations(
    both_wires: tuple[SimpleNamespace, SimpleNamespace] | None, data: bytes, ops: list[tuple[str, tuple[int, ...]]]
) -> None:
    if both_wires is None:
        pytest.skip("compiled _wire disabled by PYWEBTRANSPORT_NO_EXTENSIONS")
    compiled, pure = both_wires
    readers = compiled.buffer.Reader(data), pure.buffer.Reader(data)
    for name, args in ops:
        results = [outcome(getattr(reader, name), *args) for reader in readers]
        assert results[0] == results[1], (name, args)
        assert readers[0].tell() == readers[1].tell()


@settings(max_examples=300)
@given(value=st.one_of(st.integers(min_value=-(2**64), max_value=2**64), st.booleans(), st.floats(), st.none()))
def test_property_variants_agree_on_encode_varint(
    both_wires: tuple[SimpleNamespace, SimpleNamespace] | None, value: object
) -> None:
    if both_wires is None:
        pytest.skip("compiled _wire disabled by PYWEBTRANSPORT_NO_EXTENSIONS")
    compiled, pure = both_wires
    assert outcome(compiled.buffer.encode_varint, value) == outcome(pure.buffer.encode_varint, value)
