"""Between Python objects and plain data (dicts, lists, scalars), guided by type hints.

Serializers encode what :func:`to_plain` gives and rebuild objects with :func:`from_plain`,
which checks the decoded data against the registered type and raises
:class:`SerializationError` naming the path of the first value that does not fit.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import types
import typing
import weakref
from collections.abc import Mapping
from typing import Any, Literal, Union

from pywebtransport.messaging.exceptions import SerializationError

__all__ = ["RefusedTypeError", "from_plain", "to_plain"]

_NONE_TYPE = type(None)


def to_plain(obj: Any, *, bytes_as_text: bool) -> Any:
    """Dataclasses become dicts, enums their values, tuples and sets lists; with
    ``bytes_as_text`` (JSON) bytes become base64 text."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj.value if isinstance(obj, enum.Enum) else obj
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value, bytes_as_text=bytes_as_text)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        return base64.b64encode(data).decode("ascii") if bytes_as_text else data
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # Init fields only: the receiver rebuilds the object with its __init__, which (with
        # __post_init__) sets the other fields; it could not be given them anyway.
        cls = type(obj)
        if bytes_as_text:
            _check_json_fields(cls)
        return {name: to_plain(getattr(obj, name), bytes_as_text=bytes_as_text) for name in _field_types(cls)}
    if isinstance(obj, Mapping):
        return {_plain_key(k): to_plain(v, bytes_as_text=bytes_as_text) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_plain(item, bytes_as_text=bytes_as_text) for item in obj]
    raise SerializationError(f"cannot serialize an object of type {type(obj).__qualname__}")


def _plain_key(key: Any) -> Any:
    if isinstance(key, enum.Enum):
        return key.value
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    raise SerializationError(f"cannot serialize a mapping key of type {type(key).__qualname__}")


def from_plain(data: Any, target: Any, *, bytes_as_text: bool, path: str = "$") -> Any:
    """``data`` as an instance of ``target`` (a class or a typing construct)."""
    if target is Any or target is object:
        return data
    origin = typing.get_origin(target)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return _from_union(data, target, bytes_as_text=bytes_as_text, path=path)
    if origin is Literal:
        if data in typing.get_args(target):
            return data
        raise _mismatch(path, f"one of {typing.get_args(target)!r}", data)
    if origin is not None:
        return _from_generic(data, origin, typing.get_args(target), bytes_as_text=bytes_as_text, path=path)
    if target is None or target is _NONE_TYPE:
        if data is None:
            return None
        raise _mismatch(path, "null", data)
    if not isinstance(target, type):
        raise SerializationError(f"{path}: unsupported type annotation {target!r}")
    if dataclasses.is_dataclass(target):
        return _from_dataclass(data, target, bytes_as_text=bytes_as_text, path=path)
    if issubclass(target, enum.Enum):
        try:
            return target(data)
        except ValueError:
            raise _mismatch(path, f"a value of {target.__qualname__}", data) from None
    if target is bool:
        if isinstance(data, bool):
            return data
        raise _mismatch(path, "a bool", data)
    if target is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise _mismatch(path, "an int", data)
    if target is float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            try:
                return float(data)
            except OverflowError as exc:  # an integer beyond the float range (JSON allows any size)
                raise _mismatch(path, "a number within the float range", data) from exc
        raise _mismatch(path, "a number", data)
    if target is str:
        if isinstance(data, str):
            return data
        raise _mismatch(path, "a string", data)
    if target in (bytes, bytearray):
        return target(_to_bytes(data, bytes_as_text=bytes_as_text, path=path))
    if target in (list, tuple, set, frozenset, dict):
        return _from_generic(data, target, (), bytes_as_text=bytes_as_text, path=path)
    if isinstance(data, target):
        return data
    raise _mismatch(path, f"a {target.__qualname__}", data)


def _to_bytes(data: Any, *, bytes_as_text: bool, path: str) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if bytes_as_text and isinstance(data, str):
        try:
            return base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise _mismatch(path, "base64 text", data) from None
    raise _mismatch(path, "bytes", data)


def _from_union(data: Any, target: Any, *, bytes_as_text: bool, path: str) -> Any:
    arms = typing.get_args(target)
    if bytes_as_text and _text_or_bytes(arms):
        raise SerializationError(f"{path}: {_TEXT_OR_BYTES}, so {target!r} cannot be decoded")
    if data is None and _NONE_TYPE in arms:
        return None
    errors = []
    for arm in arms:
        if arm is _NONE_TYPE:
            continue
        try:
            return from_plain(data, arm, bytes_as_text=bytes_as_text, path=path)
        except SerializationError as exc:
            errors.append(str(exc))
    raise SerializationError(f"{path}: {_describe(data)} fits none of {target!r} ({'; '.join(errors)})")


def _from_generic(data: Any, origin: Any, args: tuple[Any, ...], *, bytes_as_text: bool, path: str) -> Any:
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        if not isinstance(data, dict):
            raise _mismatch(path, "an object", data)
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        return {_from_key(k, key_type, path): from_plain(v, value_type, bytes_as_text=bytes_as_text,
                                                          path=f"{path}[{k!r}]")
                for k, v in data.items()}
    if not isinstance(data, (list, tuple)):
        raise _mismatch(path, "an array", data)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(data) != len(args):
            raise SerializationError(f"{path}: expected {len(args)} items, got {len(data)}")
        return tuple(from_plain(item, arg, bytes_as_text=bytes_as_text, path=f"{path}[{i}]")
                     for i, (item, arg) in enumerate(zip(data, args, strict=True)))
    item_type = args[0] if args else Any
    items = [from_plain(item, item_type, bytes_as_text=bytes_as_text, path=f"{path}[{i}]")
             for i, item in enumerate(data)]
    if origin in (tuple, set, frozenset):
        return origin(items)
    return items  # list, Sequence, Iterable, ...


def _from_key(key: Any, key_type: Any, path: str) -> Any:
    """Mapping keys: JSON makes every key a string, so int/float/bool/enum keys are parsed back
    (a bool key as the ``"true"`` or ``"false"`` that :func:`json.dumps` writes)."""
    if key_type is bool:
        if isinstance(key, bool):
            return key
        if key in _JSON_BOOL_KEYS:
            return _JSON_BOOL_KEYS[key]
    elif key_type in (Any, str) or (isinstance(key_type, type) and isinstance(key, key_type)
                                    and not isinstance(key, bool)):
        return key
    if isinstance(key, str):
        if key_type is int:
            try:
                return int(key)
            except ValueError:
                pass
        elif key_type is float:
            try:
                return float(key)
            except ValueError:
                pass
    if isinstance(key_type, type) and issubclass(key_type, enum.Enum):
        for member in key_type:
            if member.value == key or str(member.value) == key:
                return member
    raise SerializationError(f"{path}: key {key!r} is not a valid {key_type!r}")


def _from_dataclass(data: Any, cls: type[Any], *, bytes_as_text: bool, path: str) -> Any:
    if not isinstance(data, dict):
        raise _mismatch(path, f"an object for {cls.__qualname__}", data)
    hints = _field_types(cls)
    # The other fields are set by __init__ and __post_init__, whatever a sender put there (an
    # older sender did put them).
    unknown = [key for key in data if key not in hints and key not in _computed_fields(cls)]
    if unknown:
        raise SerializationError(f"{path}: unknown field(s) {', '.join(map(repr, unknown))} for {cls.__qualname__}")
    kwargs = {}
    for name, hint in hints.items():
        if name in data:
            kwargs[name] = from_plain(data[name], hint, bytes_as_text=bytes_as_text, path=f"{path}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise SerializationError(f"{path}: cannot build {cls.__qualname__}: {exc}") from None
    except (ValueError, AssertionError) as exc:  # rejected by __post_init__
        raise SerializationError(f"{path}: {cls.__qualname__} rejected the data: {exc}") from None


_FIELD_TYPES: weakref.WeakKeyDictionary[type[Any], dict[str, Any]] = weakref.WeakKeyDictionary()


def _field_types(cls: type[Any]) -> dict[str, Any]:
    """The init fields of a dataclass and their resolved annotations (Any if unresolvable),
    computed once per class."""
    cached = _FIELD_TYPES.get(cls)
    if cached is not None:
        return cached
    try:
        resolved = typing.get_type_hints(cls)
    except Exception:  # forward references we cannot resolve: be permissive
        resolved = {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint = resolved.get(f.name, f.type)
        out[f.name] = Any if isinstance(hint, str) else hint
    _FIELD_TYPES[cls] = out
    return out


_COMPUTED_FIELDS: weakref.WeakKeyDictionary[type[Any], frozenset[str]] = weakref.WeakKeyDictionary()


def _computed_fields(cls: type[Any]) -> frozenset[str]:
    """The names of a dataclass's ``init=False`` fields, computed once per class."""
    cached = _COMPUTED_FIELDS.get(cls)
    if cached is None:
        cached = _COMPUTED_FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls) if not f.init)
    return cached


_TEXT_OR_BYTES = "JSON sends bytes as base64 text, which a union of str and bytes cannot tell from a str"


class RefusedTypeError(SerializationError):
    """A type the format cannot carry faithfully (a union of str and bytes under JSON): refused
    whatever a ``default`` hook could make of the object, which would be sent all the same."""

#: Per dataclass: the message refusing it under JSON, or "" when every field can be sent.
_JSON_FIELD_PROBLEMS: weakref.WeakKeyDictionary[type[Any], str] = weakref.WeakKeyDictionary()


def _check_json_fields(cls: type[Any]) -> None:
    """SerializationError if a field of ``cls`` is typed with a union of str and bytes
    (anywhere in its type): under JSON the receiver would get the wrong one back."""
    problem = _JSON_FIELD_PROBLEMS.get(cls)
    if problem is None:
        bad = [name for name, hint in _field_types(cls).items() if _has_text_or_bytes_union(hint)]
        problem = _JSON_FIELD_PROBLEMS[cls] = (
            f"cannot encode {cls.__qualname__} as JSON: field {bad[0]!r} is typed with a union of str and bytes; "
            f"{_TEXT_OR_BYTES} (use MsgPackSerializer, or separate fields)" if bad else "")
    if problem:
        raise RefusedTypeError(problem)


def _has_text_or_bytes_union(hint: Any) -> bool:
    """Whether a type hint holds a union with both a str arm and a bytes arm, at any depth."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if (origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType)) and _text_or_bytes(args):
        return True
    return origin is not Literal and any(_has_text_or_bytes_union(arg) for arg in args)


def _text_or_bytes(arms: tuple[Any, ...]) -> bool:
    return str in arms and (bytes in arms or bytearray in arms)


_JSON_BOOL_KEYS: dict[Any, bool] = {"true": True, "false": False}


def _describe(data: Any) -> str:
    text = repr(data)
    return f"{type(data).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _mismatch(path: str, expected: str, data: Any) -> SerializationError:
    return SerializationError(f"{path}: expected {expected}, got {_describe(data)}")
