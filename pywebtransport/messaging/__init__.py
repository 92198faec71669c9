"""Structured messaging: typed objects over WebTransport streams and datagrams.

Both peers share a registry ``{type_id: class}`` and a :class:`Serializer`::

    registry = {1: ChatMessage, 2: Presence}
    chat = await session.create_structured_stream(serializer=JSONSerializer(), registry=registry)
    await chat.send_obj(ChatMessage(text="hi"))
    async for obj in chat: ...
"""

from __future__ import annotations

from pywebtransport.messaging.datagram import StructuredDatagramTransport
from pywebtransport.messaging.exceptions import (
    FramingError,
    MessageTooLargeError,
    MessagingError,
    SerializationError,
    UnknownMessageTypeError,
)
from pywebtransport.messaging.framing import DEFAULT_MAX_MESSAGE_SIZE
from pywebtransport.messaging.serializers import JSONSerializer, MsgPackSerializer, Serializer
from pywebtransport.messaging.stream import StructuredStream

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FramingError",
    "JSONSerializer",
    "MessageTooLargeError",
    "MessagingError",
    "MsgPackSerializer",
    "SerializationError",
    "Serializer",
    "StructuredDatagramTransport",
    "StructuredStream",
    "UnknownMessageTypeError",
]
