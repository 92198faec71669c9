"""QUIC varints (RFC 9000 §16) and the byte Reader/Writer, against both _wire variants.

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
    assert sorted(wire.buffer.__all__) == sorted([
        "VARINT_MAX", "BufferReadError", "Reader", "Writer", "decode_varint", "encode_varint", "varint_size",
    ])
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
    assert wire.buffer.varint_size(value) == len(hex_data) // 2
    assert wire.buffer.decode_varint(bytes.fromhex(hex_data)) == (value, len(hex_data) // 2)


@pytest.mark.parametrize("value", [-1, 2**62, 2**64 - 1, 2**64, 2**100, -(2**100)])
def test_out_of_range_varint_is_a_value_error(wire: SimpleNamespace, value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        wire.buffer.encode_varint(value)
    with pytest.raises(ValueError, match="out of range"):
        wire.buffer.varint_size(value)
    writer = wire.buffer.Writer()
    with pytest.raises(ValueError, match="out of range"):
        writer.push_varint(value)
    assert writer.getvalue() == b""


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


def test_non_contiguous_memoryview_is_a_buffer_error(wire: SimpleNamespace) -> None:
    view = memoryview(b"\x40\x00\x25\x00")[::2]
    with pytest.raises(BufferError):
        wire.buffer.decode_varint(view)
    with pytest.raises(BufferError):
        wire.buffer.Reader(view)
    with pytest.raises(BufferError):
        wire.buffer.Writer().push_bytes(view)


@pytest.mark.parametrize("bad", ["\x25", 37, None, [0x25]])
def test_non_buffer_input_is_a_type_error(wire: SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError):
        wire.buffer.decode_varint(bad)
    with pytest.raises(TypeError):
        wire.buffer.Reader(bad)
    with pytest.raises(TypeError):
        wire.buffer.Writer().push_bytes(bad)


@pytest.mark.parametrize("bad", [1.0, 1.5, -1.0, "1"])
def test_non_integer_values_are_a_type_error_not_truncated(wire: SimpleNamespace, bad: object) -> None:
    writer = wire.buffer.Writer()
    for call in (wire.buffer.encode_varint, wire.buffer.varint_size, writer.push_varint, writer.push_uint8,
                 writer.push_uint16, writer.push_uint32):
        with pytest.raises(TypeError):
            call(bad)
    with pytest.raises(TypeError):
        wire.buffer.decode_varint(b"\x01\x02", bad)
    reader = wire.buffer.Reader(b"\x01\x02")
    with pytest.raises(TypeError):
        reader.pull_bytes(bad)
    with pytest.raises(TypeError):
        reader.seek(bad)


def test_bool_is_accepted_as_an_integer(wire: SimpleNamespace) -> None:
    assert wire.buffer.encode_varint(True) == b"\x01"
    writer = wire.buffer.Writer()
    writer.push_uint8(True)
    writer.push_varint(False)
    assert writer.getvalue() == b"\x01\x00"


# ---------------------------------------------------------------------------- Reader / Writer


def test_writer_then_reader_round_trip_every_width(wire: SimpleNamespace) -> None:
    writer = wire.buffer.Writer()
    writer.push_uint8(0)
    writer.push_uint8(0xFF)
    writer.push_uint16(0)
    writer.push_uint16(0xFFFF)
    writer.push_uint16(0x1234)
    writer.push_uint32(0)
    writer.push_uint32(0xFFFFFFFF)
    writer.push_uint32(0x12345678)
    for value, _ in BOUNDARIES:
        writer.push_varint(value)
    writer.push_bytes(b"")
    writer.push_bytes(b"abc")
    writer.push_bytes(bytearray(b"de"))
    writer.push_bytes(memoryview(b"xfgx")[1:3])
    data = writer.getvalue()
    assert data[:3] == b"\x00\xff\x00"
    assert data[6:8] == b"\x12\x34"  # network byte order
    assert data[16:20] == b"\x12\x34\x56\x78"
    assert len(writer) == writer.tell() == len(data)

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


@pytest.mark.parametrize(
    ("method", "value", "bits"),
    [
        ("push_uint8", -1, 8), ("push_uint8", 0x100, 8), ("push_uint8", 2**64, 8),
        ("push_uint16", -1, 16), ("push_uint16", 0x10000, 16), ("push_uint16", -(2**64), 16),
        ("push_uint32", -1, 32), ("push_uint32", 0x100000000, 32), ("push_uint32", 2**100, 32),
    ],
)
def test_uint_that_does_not_fit_is_a_value_error(wire: SimpleNamespace, method: str, value: int, bits: int) -> None:
    writer = wire.buffer.Writer()
    with pytest.raises(ValueError, match=f"uint{bits}"):
        getattr(writer, method)(value)
    assert writer.getvalue() == b""


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


def test_seek_tell_eof_remaining(wire: SimpleNamespace) -> None:
    reader = wire.buffer.Reader(b"\x01\x02\x03")
    assert (reader.tell(), reader.remaining(), reader.eof()) == (0, 3, False)
    assert reader.pull_uint16() == 0x0102
    assert (reader.tell(), reader.remaining(), reader.eof()) == (2, 1, False)
    reader.seek(3)
    assert (reader.tell(), reader.remaining(), reader.eof()) == (3, 0, True)
    with pytest.raises(BufferReadError):
        reader.pull_uint8()
    reader.seek(1)
    assert reader.pull_uint8() == 2
    reader.seek(0)
    assert reader.pull_rest() == b"\x01\x02\x03"
    for bad in (-1, 4, 2**70, -(2**70)):
        with pytest.raises(ValueError, match="outside"):
            reader.seek(bad)
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


def test_writer_grows_past_its_inline_storage(wire: SimpleNamespace) -> None:
    writer = wire.buffer.Writer()
    expected = bytearray()
    for i in range(5000):
        writer.push_varint(i * 7919)
        expected += wire.buffer.encode_varint(i * 7919)
        if i % 500 == 0:
            writer.push_bytes(bytes(range(256)) * 3)
            expected += bytes(range(256)) * 3
    assert writer.getvalue() == bytes(expected)
    assert len(writer) == len(expected)
    writer.push_uint8(1)
    assert writer.getvalue()[-1:] == b"\x01"  # getvalue is a snapshot, the writer goes on


def test_getvalue_is_a_bytes_copy(wire: SimpleNamespace) -> None:
    writer = wire.buffer.Writer()
    assert writer.getvalue() == b"" and len(writer) == 0
    writer.push_bytes(b"ab")
    first = writer.getvalue()
    writer.push_bytes(b"cd")
    assert type(first) is bytes and first == b"ab" and writer.getvalue() == b"abcd"


# ---------------------------------------------------------------------------- properties


@given(value=varints)
def test_property_encode_decode_round_trip(wire: SimpleNamespace, value: int) -> None:
    encoded = wire.buffer.encode_varint(value)
    assert len(encoded) == wire.buffer.varint_size(value)
    assert wire.buffer.decode_varint(encoded) == (value, len(encoded))
    # Shortest: one width smaller could not hold it.
    assert len(encoded) == 1 or value >= 1 << (8 * (len(encoded) // 2) - 2)


@given(values=st.lists(varints, max_size=50), tail=st.binary(max_size=8))
def test_property_writer_reader_round_trip(wire: SimpleNamespace, values: list[int], tail: bytes) -> None:
    writer = wire.buffer.Writer()
    for value in values:
        writer.push_varint(value)
    writer.push_bytes(tail)
    reader = wire.buffer.Reader(writer.getvalue())
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
        st.integers(min_value=-2, max_value=14).map(lambda n: ("seek", (n,))),
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
@given(values=st.lists(st.integers(min_value=-(2**64), max_value=2**64), max_size=10),
       method=st.sampled_from(["push_varint", "push_uint8", "push_uint16", "push_uint32"]))
def test_property_variants_agree_on_writer(
    both_wires: tuple[SimpleNamespace, SimpleNamespace] | None, values: list[int], method: str
) -> None:
    if both_wires is None:
        pytest.skip("compiled _wire disabled by PYWEBTRANSPORT_NO_EXTENSIONS")
    compiled, pure = both_wires
    writers = compiled.buffer.Writer(), pure.buffer.Writer()
    for value in values:
        results = [outcome(getattr(writer, method), value) for writer in writers]
        assert results[0] == results[1], (method, value)
        assert outcome(compiled.buffer.varint_size, value) == outcome(pure.buffer.varint_size, value)
    assert writers[0].getvalue() == writers[1].getvalue()
