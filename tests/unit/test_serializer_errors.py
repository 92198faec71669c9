"""Serializers raise SerializationError and nothing else, also for hostile or unencodable data.

The Serializer protocol promises SerializationError from ``serialize`` and ``deserialize``;
code using a serializer directly (its own framing, a custom transport) relies on that, so
built-in errors from the codec or the conversion (RecursionError, OverflowError,
UnicodeEncodeError) must not escape. Each keeps the original error as its cause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from pywebtransport.messaging import JSONSerializer, SerializationError, Serializer
from tests.serializers import serializer_params


@dataclass
class Holder:
    data: Any = None


@dataclass
class Reading:
    value: float = 0.0


@dataclass
class Tree:
    label: int
    children: list[Tree] = field(default_factory=list)


@pytest.fixture(params=serializer_params())
def serializer(request: pytest.FixtureRequest) -> Serializer:
    return request.param()  # type: ignore[no-any-return]


def _self_referencing_list() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def test_json_deeply_nested_payload_is_a_serialization_error() -> None:
    payload = b'{"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(SerializationError, match="Holder is nested too deeply") as info:
        JSONSerializer().deserialize(payload, Holder)
    assert isinstance(info.value.__cause__, RecursionError)


def test_json_integer_beyond_the_float_range_for_a_float_field_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match=r"\$\.value: expected a number within the float range") as info:
        JSONSerializer().deserialize(b'{"value": ' + b"9" * 400 + b"}", Reading)
    assert isinstance(info.value.__cause__, OverflowError)


def test_json_lone_surrogate_cannot_be_encoded_and_says_so() -> None:
    decoded = JSONSerializer().deserialize(b'{"data": "\\ud800"}', Holder)  # valid JSON, not valid UTF-8
    with pytest.raises(SerializationError, match="cannot encode Holder as JSON") as info:
        JSONSerializer().serialize(decoded)
    assert isinstance(info.value.__cause__, UnicodeEncodeError)


def test_self_referencing_object_cannot_be_serialized(serializer: Serializer) -> None:
    with pytest.raises(SerializationError, match="cannot encode Holder as .*refers to itself") as info:
        serializer.serialize(Holder(data=_self_referencing_list()))
    assert isinstance(info.value.__cause__, RecursionError)


def test_json_self_referencing_object_with_a_default_hook_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="cannot encode Holder as JSON"):
        JSONSerializer(default=str).serialize(Holder(data=_self_referencing_list()))


def test_data_nested_deeper_than_a_recursive_type_allows_is_a_serialization_error(serializer: Serializer) -> None:
    plain: dict[str, Any] = {"label": 0, "children": []}
    node = plain
    for depth in range(1, 400):  # within what the codecs decode, beyond what rebuilding recurses
        child: dict[str, Any] = {"label": depth, "children": []}
        node["children"].append(child)
        node = child
    if isinstance(serializer, JSONSerializer):
        payload = json.dumps(plain).encode()
    else:
        import msgpack
        payload = msgpack.packb(plain)
    with pytest.raises(SerializationError, match="Tree is nested too deeply") as info:
        serializer.deserialize(payload, Tree)
    assert isinstance(info.value.__cause__, RecursionError)


def test_a_shallow_recursive_type_still_round_trips(serializer: Serializer) -> None:
    tree = Tree(label=1, children=[Tree(label=2), Tree(label=3, children=[Tree(label=4)])])
    assert serializer.deserialize(serializer.serialize(tree), Tree) == tree
