"""Errors of structured messaging, under the library's :class:`WebTransportError`.

None of them closes the session: they describe one message, and the stream or datagram
transport that raised them stays usable unless the error says the framing is lost.
"""

from __future__ import annotations

from pywebtransport.exceptions import WebTransportError

__all__ = [
    "FramingError",
    "MessageTooLargeError",
    "MessagingError",
    "SerializationError",
    "UnknownMessageTypeError",
]


class MessagingError(WebTransportError):
    """Base of the structured-messaging errors."""


class SerializationError(MessagingError):
    """An object could not be encoded, or received bytes could not be decoded into one."""


class UnknownMessageTypeError(SerializationError):
    """A type id (received) or a Python type (sent) is not in the registry."""

    def __init__(self, message: str = "", *, type_id: int | None = None) -> None:
        super().__init__(message or f"type id {type_id} is not in the registry")
        self.type_id = type_id


class FramingError(SerializationError):
    """A frame's header is unusable, or the stream ended inside a frame.

    After a FramingError the message boundaries are lost: the StructuredStream refuses
    further reads (writing still works).
    """


class MessageTooLargeError(MessagingError, ValueError):
    """A message exceeds ``max_message_size`` (sending: nothing was sent; receiving: the
    oversized frame was skipped whole, so the next message can still be read)."""

    def __init__(self, message: str = "", *, size: int = 0, limit: int = 0) -> None:
        super().__init__(message or f"message of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
