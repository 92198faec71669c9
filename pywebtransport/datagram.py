"""Unreliable datagrams of one session, with a bounded receive buffer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

from pywebtransport._protocol import events as ev
from pywebtransport._waiters import Waiters
from pywebtransport._wire import datagrams as wire_datagrams
from pywebtransport.events import EventType
from pywebtransport.exceptions import SessionClosedError, TimeoutError
from pywebtransport.types import Data
from pywebtransport.utils import ensure_bytes

if TYPE_CHECKING:
    from pywebtransport.session.port import SessionPort

__all__ = ["WebTransportDatagramTransport"]

#: Event names read per stream or per datagram (a listener check each time): module globals,
#: where ``EventType.X`` costs about 100 ns a read on Python 3.10 and 3.11 (``EnumType.__getattr__``).
_DATAGRAM_SENT = EventType.DATAGRAM_SENT


class WebTransportDatagramTransport:
    """Send and receive datagrams in one session.

    Received datagrams wait in a ring bounded by count and bytes (``datagram_queue_size``,
    ``datagram_queue_bytes``); when it is full the oldest are dropped and counted, as
    datagrams are meant to be. Awaiting the transport returns itself, so both
    ``session.datagrams.send(...)`` and ``(await session.datagrams).send(...)`` work.
    The counters in ``get_stats()`` are the engine's (one place), read from its snapshot.
    """

    def __init__(self, session: SessionPort) -> None:
        self._port = session
        # The receive buffer is made when the first datagram arrives: a session that only
        # sends, or never uses datagrams, holds none.
        self._ring: wire_datagrams.DatagramRing | None = None
        self._waiters = Waiters()

    def __await__(self) -> Generator[Any, None, WebTransportDatagramTransport]:
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    @property
    def session_id(self) -> int:
        return self._port.session_id

    @property
    def max_datagram_size(self) -> int:
        """Largest payload that can be sent now (the peer's limit and the path's)."""
        return self._port.datagram_max_size()

    @property
    def receive_buffer_size(self) -> int:
        """Datagrams waiting to be received."""
        return len(self._ring) if self._ring is not None else 0

    @property
    def receive_dropped(self) -> int:
        """Datagrams dropped because the receive buffer was full."""
        return self._ring.dropped if self._ring is not None else 0

    @property
    def is_closed(self) -> bool:
        return self._port.is_closed

    @property
    def datagrams_sent(self) -> int:
        return self._counter("datagrams_sent")

    @property
    def bytes_sent(self) -> int:
        return self._counter("datagram_bytes_sent")

    @property
    def datagrams_received(self) -> int:
        return self._counter("datagrams_received")

    @property
    def bytes_received(self) -> int:
        return self._counter("datagram_bytes_received")

    @property
    def send_dropped(self) -> int:
        """Datagrams refused because the local send queue was full."""
        return self._counter("datagrams_dropped")

    def _counter(self, name: str) -> int:
        counters = self._port.datagram_counters()
        return counters.get(name, 0)

    async def send(self, data: Data) -> bool:
        """Send one datagram. Returns False when the local send queue was full and it was
        dropped. Raises DatagramTooLargeError when it exceeds ``max_datagram_size``."""
        return self.send_nowait(data)

    def send_nowait(self, data: Data) -> bool:
        payload = data if type(data) is bytes else ensure_bytes(data)
        sent = self._port.datagram_send(payload)
        if sent and self._port.has_listeners(_DATAGRAM_SENT):  # no event per datagram for nobody
            self._port.events.emit_nowait(_DATAGRAM_SENT, {"size": len(payload)})
        return sent

    def receive_nowait(self) -> bytes | None:
        """The oldest waiting datagram, or None."""
        return self._ring.pop() if self._ring is not None else None

    async def receive(self, *, timeout: float | None = None) -> bytes:
        """Wait for the next datagram. SessionClosedError (with the session's close code,
        reason and cause) once the session is closed and the buffer is empty; TimeoutError
        after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            payload = self._ring.pop() if self._ring is not None else None
            if payload is not None:
                return payload
            if self._port.is_closed:
                raise (self._port.closed_error("the session is closed; no more datagrams")
                       or SessionClosedError("the session is closed; no more datagrams"))
            try:
                await self._waiters.wait(None if deadline is None else max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise TimeoutError(f"no datagram within {timeout}s") from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        # The session-end rule (see WebTransportSession): quiet on a clean close, else raise.
        while True:
            try:
                yield await self.receive()
            except SessionClosedError:
                if self._port.ended_cleanly():
                    return
                raise

    def get_stats(self) -> dict[str, int]:
        counters = self._port.datagram_counters()
        return {
            "datagrams_sent": counters.get("datagrams_sent", 0),
            "bytes_sent": counters.get("datagram_bytes_sent", 0),
            "datagrams_received": counters.get("datagrams_received", 0),
            "bytes_received": counters.get("datagram_bytes_received", 0),
            "send_dropped": counters.get("datagrams_dropped", 0),
            "receive_dropped": self.receive_dropped,
            "receive_buffered": self.receive_buffer_size,
        }

    def handle_event(self, event: ev.EngineEvent) -> None:
        """Internal: a datagram or the session's end, routed by the session (not public API)."""
        if isinstance(event, ev.DatagramReceived):
            self.deliver(event.data)
        elif isinstance(event, ev.SessionClosed):
            self._waiters.wake()

    def deliver(self, data: bytes) -> None:
        """Internal: one datagram arrived for this session (the session's fast path)."""
        ring = self._ring
        if ring is None:
            config = self._port.config
            ring = self._ring = wire_datagrams.DatagramRing(max_count=config.datagram_queue_size,
                                                            max_bytes=config.datagram_queue_bytes)
        ring.push(data)
        self._waiters.wake()
