"""The type registry shared by structured streams and datagrams: type id <-> class."""

from __future__ import annotations

from typing import Any

from pywebtransport._wire import buffer as wire_buffer
from pywebtransport.messaging.exceptions import SerializationError, UnknownMessageTypeError
from pywebtransport.messaging.framing import Frame
from pywebtransport.messaging.serializers import Serializer

__all__ = ["TypeRegistry"]


class TypeRegistry:
    """A validated, frozen copy of a ``{type_id: class}`` mapping plus its inverse.

    Ids are QUIC varints (0 .. 2**62-1); a class may be registered under one id only, so
    that a sender knows which id to put on the wire. Lookups are by exact class: an
    instance of an unregistered subclass is refused rather than silently sent as its base.
    """

    __slots__ = ("_by_id", "_by_type")

    def __init__(self, registry: dict[int, type[Any]]) -> None:
        if not isinstance(registry, dict):
            raise TypeError(f"registry must be a dict of type id -> class, got {type(registry).__qualname__}")
        by_id: dict[int, type[Any]] = {}
        by_type: dict[type[Any], int] = {}
        for type_id, cls in registry.items():
            if isinstance(type_id, bool) or not isinstance(type_id, int) or not 0 <= type_id <= wire_buffer.VARINT_MAX:
                raise ValueError(f"registry type ids must be ints in 0..2**62-1, got {type_id!r}")
            if not isinstance(cls, type):
                raise TypeError(f"registry[{type_id}] must be a class, got {cls!r}")
            if cls in by_type:
                raise ValueError(f"{cls.__qualname__} is registered twice (ids {by_type[cls]} and {type_id})")
            by_id[type_id] = cls
            by_type[cls] = type_id
        self._by_id = by_id
        self._by_type = by_type

    def as_dict(self) -> dict[int, type[Any]]:
        return dict(self._by_id)

    def type_id_for(self, obj: Any) -> int:
        """The id under which ``obj``'s class is registered; UnknownMessageTypeError if none."""
        type_id = self._by_type.get(type(obj))
        if type_id is None:
            known = ", ".join(f"{i}: {c.__qualname__}" for i, c in self._by_id.items())
            raise UnknownMessageTypeError(f"cannot send {type(obj).__qualname__}: it is not in the registry "
                                          f"({known or 'empty'})")
        return type_id

    def decode(self, frame: Frame, serializer: Serializer) -> Any:
        """The object a frame carries: UnknownMessageTypeError for an unregistered id,
        SerializationError when the serializer cannot rebuild the registered class."""
        cls = self._by_id.get(frame.type_id)
        if cls is None:
            raise UnknownMessageTypeError(f"received a message with type id {frame.type_id}, which is not in the "
                                          "registry", type_id=frame.type_id)
        try:
            return serializer.deserialize(frame.payload, cls)
        except SerializationError:
            raise
        except Exception as exc:  # a user serializer's own error: report it as ours, keep the cause
            raise SerializationError(f"cannot decode type id {frame.type_id} as {cls.__qualname__}: {exc}") from exc


def serialize(serializer: Serializer, obj: Any) -> bytes:
    """``serializer.serialize(obj)`` with any failure reported as SerializationError."""
    try:
        payload = serializer.serialize(obj)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"cannot serialize {type(obj).__qualname__}: {exc}") from exc
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise SerializationError(f"{type(serializer).__qualname__}.serialize returned {type(payload).__qualname__}, "
                                 "not bytes")
    return bytes(payload)
