"""Structured messaging without a network: the frame codec, the serializers, the registry."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import sys
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport.messaging import (
    JSONSerializer,
    MessageTooLargeError,
    MsgPackSerializer,
    SerializationError,
    Serializer,
    UnknownMessageTypeError,
)
from pywebtransport.messaging._registry import TypeRegistry
from pywebtransport.messaging.framing import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Frame,
    FrameDecoder,
    check_max_message_size,
    decode_body,
    encode_body,
    encode_frame,
)

# ---------------------------------------------------------------------------- framing


def test_frame_layout_is_u32_length_then_varint_type_id_then_payload() -> None:
    assert encode_frame(5, b"hi") == b"\x00\x00\x00\x03\x05hi"
    # 300 needs a two-byte varint (RFC 9000 §16: 0b01 prefix).
    assert encode_frame(300, b"") == b"\x00\x00\x00\x02\x41\x2c"
    assert encode_body(37, b"x") == b"\x25x"


def test_default_max_message_size_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_MESSAGE_SIZE == 1 << 20


def test_encode_frame_enforces_the_limit_on_the_body() -> None:
    assert len(encode_frame(1, b"a" * 9, max_message_size=10)) == 4 + 10
    with pytest.raises(MessageTooLargeError) as info:
        encode_frame(1, b"a" * 10, max_message_size=10)
    assert (info.value.size, info.value.limit) == (11, 10)
    assert isinstance(info.value, ValueError)


def test_invalid_type_id_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode_body(-1, b"")
    with pytest.raises(ValueError):
        encode_body(1 << 62, b"")


@pytest.mark.parametrize("value", [0, -1, 1 << 32, 1.5, True, "10"])
def test_max_message_size_must_be_a_positive_u32(value: object) -> None:
    with pytest.raises(ValueError):
        check_max_message_size(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FrameDecoder(max_message_size=value)  # type: ignore[arg-type]


def test_decoder_needs_more_data_until_a_frame_is_whole() -> None:
    wire = encode_frame(7, b"payload")
    decoder = FrameDecoder()
    for byte in wire[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_frame() is None
        assert decoder.in_frame
    decoder.feed(wire[-1:])
    assert decoder.next_frame() == Frame(7, b"payload")
    assert not decoder.in_frame and decoder.buffered == 0
    assert decoder.next_frame() is None


def test_decoder_returns_several_frames_from_one_chunk() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(1, b"a") + encode_frame(2, b"") + encode_frame(3, b"ccc")[:5])
    assert decoder.next_frame() == Frame(1, b"a")
    assert decoder.next_frame() == Frame(2, b"")
    assert decoder.next_frame() is None
    assert decoder.in_frame


def test_reading_bytes_needed_never_buffers_past_the_current_frame() -> None:
    frames = [encode_frame(i, bytes(i * 10)) for i in range(1, 6)]
    wire = b"".join(frames)
    decoder = FrameDecoder()
    position = 0
    got = []
    while position < len(wire):
        need = decoder.bytes_needed()
        assert need >= 1
        chunk = wire[position:position + need]
        position += len(chunk)
        decoder.feed(chunk)
        frame = decoder.next_frame()
        if frame is not None:
            got.append(frame)
            assert decoder.buffered == 0  # nothing of the next frame was read early
    assert [f.type_id for f in got] == [1, 2, 3, 4, 5]


def test_oversized_frame_is_reported_at_its_header_and_skipped_whole() -> None:
    decoder = FrameDecoder(max_message_size=16)
    big = encode_frame(9, bytes(100), max_message_size=1000)
    after = encode_frame(1, b"next")
    decoder.feed(big[:6])
    with pytest.raises(MessageTooLargeError) as info:
        decoder.next_frame()
    assert (info.value.size, info.value.limit) == (101, 16)
    # The rest of the big body arrives in pieces and is dropped; framing survives.
    assert decoder.bytes_needed() == 101 - 2
    decoder.feed(big[6:50])
    assert decoder.next_frame() is None
    decoder.feed(big[50:] + after)
    assert decoder.next_frame() == Frame(1, b"next")
    assert not decoder.in_frame


def test_oversized_frame_fully_buffered_is_skipped_at_once() -> None:
    decoder = FrameDecoder(max_message_size=4)
    decoder.feed(encode_frame(1, b"too long", max_message_size=100) + encode_frame(2, b"ok"))
    with pytest.raises(MessageTooLargeError):
        decoder.next_frame()
    assert decoder.next_frame() == Frame(2, b"ok")


def test_empty_body_is_a_serialization_error_that_consumes_the_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00\x00\x00" + encode_frame(4, b"x"))
    with pytest.raises(SerializationError, match="no type id"):
        decoder.next_frame()
    assert decoder.next_frame() == Frame(4, b"x")


def test_truncated_type_id_is_a_serialization_error() -> None:
    # 0x40 announces a two-byte varint but the body has one byte.
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00\x00\x01\x40" + encode_frame(4, b"x"))
    with pytest.raises(SerializationError, match="truncated type id"):
        decoder.next_frame()
    assert decoder.next_frame() == Frame(4, b"x")
    with pytest.raises(SerializationError):
        decode_body(b"")
    with pytest.raises(SerializationError):
        decode_body(b"\xc0\x00")


def test_datagram_body_round_trip_with_a_large_type_id() -> None:
    assert decode_body(encode_body(2**40, b"\x00\xff")) == Frame(2**40, b"\x00\xff")


_messages = st.lists(st.tuples(st.integers(0, 2**62 - 1), st.binary(max_size=300)), max_size=8)


@settings(max_examples=150, deadline=None)
@given(messages=_messages, cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_any_chunking_decodes_the_same_frames(messages: list[tuple[int, bytes]], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(t, p) for t, p in messages)
    points = sorted({0, len(wire), *(c for c in cuts if c <= len(wire))})
    decoder = FrameDecoder()
    out = []
    for start, end in zip(points, points[1:], strict=False):
        decoder.feed(wire[start:end])
        while (frame := decoder.next_frame()) is not None:
            out.append((frame.type_id, frame.payload))
    assert out == messages
    assert not decoder.in_frame


# ---------------------------------------------------------------------------- serializers


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: int
    y: float


@dataclass
class Shape:
    name: str
    points: list[Point]
    color: Color = Color.RED
    tags: set[str] = field(default_factory=set)
    label: str | None = None
    blob: bytes = b""
    weights: dict[int, float] = field(default_factory=dict)
    pair: tuple[int, str] = (0, "")


SAMPLE = Shape(name="tri", points=[Point(0, 0.0), Point(1, 2.5)], color=Color.BLUE, tags={"a"},
               label=None, blob=b"\x00\xffbin", weights={3: 0.5}, pair=(7, "seven"))


def _serializers() -> list[Serializer]:
    found: list[Serializer] = [JSONSerializer()]
    with contextlib.suppress(ImportError):
        found.append(MsgPackSerializer())
    return found


@pytest.fixture(params=_serializers(), ids=lambda s: type(s).__name__)
def serializer(request: pytest.FixtureRequest) -> Serializer:
    return request.param  # type: ignore[no-any-return]


def test_serializers_satisfy_the_protocol(serializer: Serializer) -> None:
    assert isinstance(serializer, Serializer)


def test_nested_dataclass_round_trip(serializer: Serializer) -> None:
    data = serializer.serialize(SAMPLE)
    assert isinstance(data, bytes)
    back = serializer.deserialize(data, Shape)
    assert back == SAMPLE
    assert isinstance(back.points[1], Point) and isinstance(back.pair, tuple)


@pytest.mark.parametrize(("value", "kind"), [(3, int), ("s", str), (None, type(None)), ([1, 2], list[int]),
                                             ({"k": 1.5}, dict[str, float]), (2.0, float), (True, bool)])
def test_plain_values_round_trip(serializer: Serializer, value: object, kind: type) -> None:
    assert serializer.deserialize(serializer.serialize(value), kind) == value


def test_json_is_compact_utf8_with_bytes_as_base64() -> None:
    data = JSONSerializer().serialize(Point(1, 2.0))
    assert data == b'{"x":1,"y":2.0}'
    assert JSONSerializer().serialize(b"\x01\x02") == b'"AQI="'
    assert JSONSerializer().serialize({"t": "é"}) == '{"t":"é"}'.encode()


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b""])
def test_malformed_json_raises_serialization_error(payload: bytes) -> None:
    with pytest.raises(SerializationError, match="malformed JSON"):
        JSONSerializer().deserialize(payload, Point)


def test_payload_that_does_not_fit_the_type_names_the_field(serializer: Serializer) -> None:
    with pytest.raises(SerializationError, match=r"\$\.x: expected an int"):
        serializer.deserialize(serializer.serialize({"x": "one", "y": 1.0}), Point)
    with pytest.raises(SerializationError, match=r"\$\.points\[0\]\.y: expected a number"):
        serializer.deserialize(serializer.serialize({"name": "n", "points": [{"x": 1, "y": "no"}]}), Shape)
    with pytest.raises(SerializationError, match="unknown field"):
        serializer.deserialize(serializer.serialize({"x": 1, "y": 1.0, "z": 0}), Point)
    with pytest.raises(SerializationError, match="cannot build Point"):
        serializer.deserialize(serializer.serialize({"x": 1}), Point)
    with pytest.raises(SerializationError, match="expected an object"):
        serializer.deserialize(serializer.serialize([1, 2]), Point)
    with pytest.raises(SerializationError):
        serializer.deserialize(serializer.serialize({"name": "n", "points": [], "color": "green"}), Shape)


def test_unencodable_objects_raise_serialization_error(serializer: Serializer) -> None:
    with pytest.raises(SerializationError):
        serializer.serialize(object())
    with pytest.raises(SerializationError):
        serializer.serialize({(1, 2): "tuple key"})


def test_json_rejects_nan_rather_than_emitting_invalid_json() -> None:
    with pytest.raises(SerializationError):
        JSONSerializer().serialize(float("nan"))


def test_json_default_hook_encodes_unknown_types() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "opaque!"

    serializer = JSONSerializer(default=repr)
    assert serializer.deserialize(serializer.serialize(Opaque()), str) == "opaque!"


def test_msgpack_round_trip_keeps_bytes_binary() -> None:
    pytest.importorskip("msgpack")
    serializer = MsgPackSerializer()
    data = serializer.serialize(b"\x00\x01")
    assert data == b"\xc4\x02\x00\x01"  # bin 8, not a str
    with pytest.raises(SerializationError, match="malformed MessagePack"):
        serializer.deserialize(b"\xc4\x05\x00", bytes)  # truncated


def test_msgpack_serializer_without_msgpack_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)  # makes `import msgpack` fail
    with pytest.raises(ImportError, match=r"pywebtransport\[msgpack\]"):
        MsgPackSerializer()


@dataclass
class Derived:
    """A dataclass with a field its __post_init__ computes."""

    a: int
    doubled: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.doubled = self.a * 2


@dataclass
class Flags:
    by_flag: dict[bool, int]


def test_a_dataclass_with_an_init_false_field_round_trips(serializer: Serializer) -> None:
    data = serializer.serialize(Derived(3))
    back = serializer.deserialize(data, Derived)
    assert back == Derived(3) and back.doubled == 6
    assert serializer.deserialize(serializer.serialize([Derived(1)]), list[Derived]) == [Derived(1)]


def test_init_false_fields_are_not_sent_and_are_recomputed_when_a_peer_sends_them() -> None:
    assert JSONSerializer().serialize(Derived(3)) == b'{"a":3}'  # __init__ could not take the rest
    # An older sender put the field in: it is ignored, __post_init__ sets it.
    assert JSONSerializer().deserialize(b'{"a":3,"doubled":99}', Derived).doubled == 6
    with pytest.raises(SerializationError, match="unknown field.*'c'"):
        JSONSerializer().deserialize(b'{"a":3,"c":1}', Derived)


def test_a_dict_with_bool_keys_round_trips(serializer: Serializer) -> None:
    flags = Flags({True: 1, False: 0})
    back = serializer.deserialize(serializer.serialize(flags), Flags)
    assert back == flags and all(type(key) is bool for key in back.by_flag)


def test_json_bool_keys_are_the_true_and_false_json_writes() -> None:
    assert JSONSerializer().serialize(Flags({True: 1})) == b'{"by_flag":{"true":1}}'
    for key in ("yes", "1", "True"):
        with pytest.raises(SerializationError, match=r"\$\.by_flag: key .* is not a valid"):
            JSONSerializer().deserialize(b'{"by_flag":{"%s":1}}' % key.encode(), Flags)
    with pytest.raises(SerializationError, match="is not a valid"):
        JSONSerializer().deserialize(b'{"1":1}', dict[bool, int])


@dataclass
class TextOrBytes:
    value: str | bytes


@dataclass
class BytesOrText:
    value: bytes | str | None = None


@dataclass
class ManyTextOrBytes:
    values: list[str | bytearray] = field(default_factory=list)


@dataclass
class Holder:
    inner: TextOrBytes


@pytest.mark.parametrize("obj", [TextOrBytes(b"\x00\x01"), TextOrBytes("AAE="), BytesOrText("AAE="),
                                 BytesOrText(b"\x00\x01"), BytesOrText(None), ManyTextOrBytes([]),
                                 Holder(TextOrBytes("x"))], ids=repr)
def test_json_refuses_a_union_of_str_and_bytes_which_it_cannot_tell_apart(obj: object) -> None:
    with pytest.raises(SerializationError, match="union of str and bytes"):
        JSONSerializer().serialize(obj)
    # A ``default`` hook is for objects JSON cannot encode, not for types it would send wrong
    # (it made the dataclass a dict, which went out and was decoded as the other arm).
    lenient = JSONSerializer(default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o) else repr(o))
    with pytest.raises(SerializationError, match="union of str and bytes"):
        lenient.serialize(obj)


@pytest.mark.parametrize(("payload", "obj_type"), [(b'{"value":"AAE="}', TextOrBytes),
                                                   (b'{"value":"AAE="}', BytesOrText),
                                                   (b'{"values":["AAE="]}', ManyTextOrBytes)])
def test_json_refuses_to_guess_when_decoding_a_union_of_str_and_bytes(payload: bytes, obj_type: type) -> None:
    with pytest.raises(SerializationError, match="union of str and bytes"):
        JSONSerializer().deserialize(payload, obj_type)


def test_msgpack_keeps_str_and_bytes_apart_in_a_union() -> None:
    pytest.importorskip("msgpack")
    serializer = MsgPackSerializer()
    for obj in (TextOrBytes(b"\x00\x01"), TextOrBytes("AAE="), BytesOrText("AAE="), BytesOrText(b"AAE="),
                ManyTextOrBytes(["a", bytearray(b"b")])):
        assert serializer.deserialize(serializer.serialize(obj), type(obj)) == obj


def test_json_still_sends_plain_bytes_fields_and_other_unions_with_bytes_as_base64() -> None:
    @dataclass
    class Plain:
        blob: bytes
        maybe: bytes | int | None = None

    serializer = JSONSerializer()
    assert serializer.serialize(Plain(b"\x01\x02", b"\x03")) == b'{"blob":"AQI=","maybe":"Aw=="}'
    assert serializer.deserialize(b'{"blob":"AQI=","maybe":"Aw=="}', Plain) == Plain(b"\x01\x02", b"\x03")


# ---------------------------------------------------------------------------- registry


def test_registry_maps_both_ways_and_copies_its_input() -> None:
    source: dict[int, type] = {1: Point, 2: Shape}
    registry = TypeRegistry(source)
    source[3] = int
    assert registry.as_dict() == {1: Point, 2: Shape}
    assert registry.type_id_for(Point(1, 1.0)) == 1
    assert registry.decode(Frame(2, JSONSerializer().serialize(SAMPLE)), JSONSerializer()) == SAMPLE


def test_registry_refuses_unregistered_types_and_ids() -> None:
    registry = TypeRegistry({1: Point})

    class SubPoint(Point):
        pass

    with pytest.raises(UnknownMessageTypeError, match="SubPoint"):
        registry.type_id_for(SubPoint(1, 1.0))
    with pytest.raises(UnknownMessageTypeError) as info:
        registry.decode(Frame(99, b"{}"), JSONSerializer())
    assert info.value.type_id == 99
    assert isinstance(info.value, SerializationError)


@pytest.mark.parametrize("bad", [{-1: Point}, {1 << 62: Point}, {True: Point}, {"1": Point}, {1: Point, 2: Point}])
def test_registry_validation_rejects_bad_entries(bad: dict) -> None:
    with pytest.raises(ValueError):
        TypeRegistry(bad)


def test_registry_values_must_be_classes() -> None:
    with pytest.raises(TypeError):
        TypeRegistry({1: Point(1, 1.0)})  # type: ignore[dict-item]


def test_a_failing_custom_serializer_is_reported_as_serialization_error() -> None:
    class Broken:
        def serialize(self, obj: object) -> bytes:
            raise RuntimeError("boom")

        def deserialize(self, data: bytes, obj_type: type) -> object:
            raise KeyError("bad")

    registry = TypeRegistry({1: Point})
    with pytest.raises(SerializationError, match="KeyError|bad") as info:
        registry.decode(Frame(1, b""), Broken())  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, KeyError)
