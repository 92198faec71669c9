"""A session's datagrams: its datagram transport (made on first use), sending, typed
datagrams, and the datagram half of the port the transport calls going down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pywebtransport.datagram import WebTransportDatagramTransport
from pywebtransport.events import EventType
from pywebtransport.exceptions import SessionError
from pywebtransport.session.core import SessionCore

if TYPE_CHECKING:
    from pywebtransport.messaging import Serializer, StructuredDatagramTransport

__all__ = ["SessionDatagrams"]

#: Event names read per stream or per datagram (a listener check each time): module globals,
#: where ``EventType.X`` costs about 100 ns a read on Python 3.10 and 3.11 (``EnumType.__getattr__``).
_DATAGRAM_RECEIVED = EventType.DATAGRAM_RECEIVED


class SessionDatagrams(SessionCore):
    """Datagram access of a session (a part of WebTransportSession)."""

    @property
    def datagrams(self) -> WebTransportDatagramTransport:
        """The session's datagram transport, created on first use (awaitable too)."""
        if self._datagrams is None:
            self._datagrams = WebTransportDatagramTransport(self._as_session())
        return self._datagrams

    async def send_datagram(self, *, data: bytes | bytearray | memoryview | str) -> None:
        """Send one unreliable datagram (DatagramTooLargeError if it cannot fit)."""
        await self.datagrams.send(data)

    async def create_structured_datagram_transport(self, *, serializer: Serializer,
                                                   registry: dict[int, type[Any]]) -> StructuredDatagramTransport:
        """Typed objects over this session's datagrams."""
        from pywebtransport.messaging import StructuredDatagramTransport

        return StructuredDatagramTransport(transport=self.datagrams, serializer=serializer, registry=registry)

    def deliver_datagram(self, data: bytes) -> None:
        """Internal: a datagram of this session arrived (the connection's fast path for the
        engine's DatagramReceived; not public API)."""
        self.datagrams.deliver(data)
        if self.has_listeners(_DATAGRAM_RECEIVED):  # no emitter or event object for nobody
            self._events.emit_nowait(_DATAGRAM_RECEIVED, {"data": data})

    # ------------------------------------------------------------------ the datagram half of the port (SessionPort)

    def datagram_send(self, payload: bytes) -> bool:
        """Internal (SessionPort): send one datagram; False when it was dropped locally."""
        # No snapshot on this hot path: the engine refuses a session that is not open.
        try:
            sent = self._engine.send_datagram(self._session_id, payload)
        except SessionError:
            self._require_open()  # raises the error that names why
            raise
        connection = self._connection_ref()
        if connection is not None:
            connection.schedule_flush()  # a datagram makes no engine event: only a transmit
        return sent

    def datagram_max_size(self) -> int:
        """Internal (SessionPort): the largest datagram payload that fits now."""
        self._require_open()
        return self._engine.max_datagram_size(self._session_id)

    def datagram_counters(self) -> dict[str, int]:
        """Internal (SessionPort): the engine's datagram counters of this session."""
        snapshot = self._snapshot()
        if snapshot is None:
            return {}
        return {"datagrams_sent": snapshot.datagrams_sent, "datagram_bytes_sent": snapshot.datagram_bytes_sent,
                "datagrams_received": snapshot.datagrams_received,
                "datagram_bytes_received": snapshot.datagram_bytes_received,
                "datagrams_dropped": snapshot.datagrams_dropped}
