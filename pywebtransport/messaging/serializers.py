"""Serializers: objects to bytes and back, typed by the class the receiver expects.

A serializer is anything with ``serialize(obj) -> bytes`` and
``deserialize(data, obj_type) -> obj``. The two here handle dataclasses (nested too),
enums and the plain types (``int``, ``float``, ``str``, ``bool``, ``None``, ``bytes``,
lists, tuples, sets, dicts, unions); decoding checks the data against ``obj_type``'s
annotations and raises :class:`SerializationError` on anything that does not fit.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol, TypeVar, runtime_checkable

from pywebtransport.messaging._convert import RefusedTypeError, from_plain, to_plain
from pywebtransport.messaging.exceptions import SerializationError

__all__ = ["JSONSerializer", "MsgPackSerializer", "Serializer"]

T = TypeVar("T")


@runtime_checkable
class Serializer(Protocol):
    """Turns objects into bytes and bytes back into an instance of a given type."""

    def serialize(self, obj: Any) -> bytes:
        """Encode ``obj``; SerializationError if it cannot be encoded."""
        ...

    def deserialize(self, data: bytes, obj_type: type[T]) -> T:
        """Decode ``data`` as an ``obj_type``; SerializationError if it does not fit."""
        ...


class JSONSerializer:
    """UTF-8 JSON via the standard library. ``bytes`` travel as base64 text, which a union of
    ``str`` and ``bytes`` could not tell from a str: such a type is refused (SerializationError).

    ``default`` is passed to :func:`json.dumps` for objects it cannot encode itself;
    decoding into such types then needs ``obj_type`` to accept what ``default`` produced.
    """

    def __init__(self, *, default: Callable[[Any], Any] | None = None, sort_keys: bool = False) -> None:
        self._default = default
        self._sort_keys = sort_keys

    def serialize(self, obj: Any) -> bytes:
        try:
            plain = to_plain(obj, bytes_as_text=True)
        except RefusedTypeError:
            raise  # not an object ``default`` could help with: the receiver would decode it wrong
        except SerializationError:
            if self._default is None:
                raise
            plain = obj  # let json call ``default`` for what we do not know
        except RecursionError as exc:  # no job for ``default``: the object refers to itself
            raise _unencodable(obj, "JSON") from exc
        try:
            text = json.dumps(plain, default=self._default, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":"), sort_keys=self._sort_keys)
            # Inside the try: a lone surrogate (which json.loads accepts) is no UTF-8.
            return text.encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
            raise SerializationError(f"cannot encode {type(obj).__qualname__} as JSON: {exc}") from exc

    def deserialize(self, data: bytes, obj_type: type[T]) -> T:
        try:
            plain = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SerializationError(f"malformed JSON payload for {_name(obj_type)}: {exc}") from None
        except RecursionError as exc:  # a hostile peer's [[[[...]]]]
            raise SerializationError(f"JSON payload for {_name(obj_type)} is nested too deeply") from exc
        return _rebuild(plain, obj_type, bytes_as_text=True, what="JSON")


class MsgPackSerializer:
    """MessagePack via the ``msgpack`` package (``pip install 'pywebtransport[msgpack]'``).

    Raises ImportError on construction when msgpack is not installed.
    """

    def __init__(self) -> None:
        self._msgpack = _import_msgpack()

    def serialize(self, obj: Any) -> bytes:
        try:
            plain = to_plain(obj, bytes_as_text=False)
        except RecursionError as exc:
            raise _unencodable(obj, "MessagePack") from exc
        try:
            packed: bytes = self._msgpack.packb(plain, use_bin_type=True)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise SerializationError(f"cannot encode {type(obj).__qualname__} as MessagePack: {exc}") from exc
        return packed

    def deserialize(self, data: bytes, obj_type: type[T]) -> T:
        try:
            plain = self._msgpack.unpackb(bytes(data), raw=False, strict_map_key=False)
        except (ValueError, TypeError) as exc:  # msgpack's ExtraData, FormatError... are ValueErrors
            raise SerializationError(f"malformed MessagePack payload for {_name(obj_type)}: {exc}") from None
        except RecursionError as exc:
            raise SerializationError(f"MessagePack payload for {_name(obj_type)} is nested too deeply") from exc
        return _rebuild(plain, obj_type, bytes_as_text=False, what="MessagePack")


def _import_msgpack() -> ModuleType:
    try:  # imported on first use: msgpack is an optional dependency
        return importlib.import_module("msgpack")
    except ImportError as exc:
        raise ImportError("MsgPackSerializer needs the msgpack package: pip install 'pywebtransport[msgpack]'",
                          name="msgpack") from exc


def _unencodable(obj: Any, what: str) -> SerializationError:
    """The error for an object that refers to itself or is nested deeper than the stack allows."""
    return SerializationError(f"cannot encode {type(obj).__qualname__} as {what}: it refers to itself "
                              "or is nested too deeply")


def _rebuild(plain: Any, obj_type: type[T], *, bytes_as_text: bool, what: str) -> T:
    """``from_plain(plain, obj_type)``; data nested deeper than the stack allows (through a
    recursive type) is a SerializationError, not a RecursionError."""
    try:
        result: T = from_plain(plain, obj_type, bytes_as_text=bytes_as_text)
    except RecursionError as exc:
        raise SerializationError(f"{what} payload for {_name(obj_type)} is nested too deeply") from exc
    return result


def _name(obj_type: Any) -> str:
    return getattr(obj_type, "__qualname__", None) or repr(obj_type)
