"""StructuredDatagramTransport: one typed object per WebTransport datagram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pywebtransport.exceptions import DatagramTooLargeError, SessionClosedError
from pywebtransport.messaging._registry import TypeRegistry, serialize
from pywebtransport.messaging.framing import decode_body, encode_body
from pywebtransport.messaging.serializers import Serializer

if TYPE_CHECKING:
    from pywebtransport.datagram import WebTransportDatagramTransport

__all__ = ["StructuredDatagramTransport"]


class StructuredDatagramTransport:
    """Sends and receives registered objects, each as one datagram: type id (varint) +
    payload. Datagrams stay unreliable and unordered; nothing here retries.

    A datagram that cannot be decoded raises from ``receive_obj()`` and is dropped; the
    next call reads the next datagram.
    """

    def __init__(self, *, transport: WebTransportDatagramTransport, serializer: Serializer,
                 registry: dict[int, type[Any]]) -> None:
        self._transport = transport
        self._serializer = serializer
        self._registry = TypeRegistry(registry)
        self.objects_sent = 0
        self.objects_received = 0

    @property
    def transport(self) -> WebTransportDatagramTransport:
        """The session's raw datagram transport."""
        return self._transport

    @property
    def serializer(self) -> Serializer:
        return self._serializer

    @property
    def registry(self) -> dict[int, type[Any]]:
        """A copy of the type registry."""
        return self._registry.as_dict()

    @property
    def is_closed(self) -> bool:
        return self._transport.is_closed

    async def send_obj(self, obj: Any) -> bool:
        """Send one object as one datagram.

        Returns False when the local send queue was full and the datagram was dropped.
        DatagramTooLargeError when it exceeds the transport's ``max_datagram_size``;
        UnknownMessageTypeError / SerializationError when it cannot be encoded (nothing sent).
        """
        type_id = self._registry.type_id_for(obj)
        body = encode_body(type_id, serialize(self._serializer, obj))
        limit = self._transport.max_datagram_size
        if len(body) > limit:
            raise DatagramTooLargeError(f"{type(obj).__qualname__} needs a datagram of {len(body)} bytes; "
                                        f"the limit is {limit} bytes", size=len(body), limit=limit)
        sent = await self._transport.send(body)
        if sent:
            self.objects_sent += 1
        return sent

    async def receive_obj(self, *, timeout: float | None = None) -> Any:
        """The object in the next datagram. SessionClosedError once the session is closed
        and nothing is buffered; TimeoutError after ``timeout`` seconds."""
        data = await self._transport.receive(timeout=timeout)
        obj = self._registry.decode(decode_body(data), self._serializer)
        self.objects_received += 1
        return obj

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        """Objects until the session closes; a datagram that cannot be decoded raises."""
        while True:
            try:
                obj = await self.receive_obj()
            except SessionClosedError:
                return
            yield obj

    def __repr__(self) -> str:
        return f"<StructuredDatagramTransport session={self._transport.session_id} sent={self.objects_sent} " \
               f"received={self.objects_received}>"
