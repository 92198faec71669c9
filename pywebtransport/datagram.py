"""Unreliable datagrams of one session, with a bounded receive buffer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

from pywebtransport._waiters import Waiters
from pywebtransport._wire import datagrams as wire_datagrams
from pywebtransport.events import EventType
from pywebtransport.exceptions import SessionClosedError, TimeoutError
from pywebtransport.types import Data
from pywebtransport.utils import ensure_bytes

if TYPE_CHECKING:
    from pywebtransport.session.session import WebTransportSession

__all__ = ["WebTransportDatagramTransport"]


class WebTransportDatagramTransport:
    """Send and receive datagrams in one session.

    Received datagrams wait in a ring bounded by count and bytes (``datagram_queue_size``,
    ``datagram_queue_bytes``); when it is full the oldest are dropped and counted, as
    datagrams are meant to be. Awaiting the transport returns itself, so both
    ``session.datagrams.send(...)`` and ``(await session.datagrams).send(...)`` work.
    """

    def __init__(self, session: WebTransportSession) -> None:
        self._session = session
        config = session._config
        self._ring = wire_datagrams.DatagramRing(max_count=config.datagram_queue_size,
                                                 max_bytes=config.datagram_queue_bytes)
        self._waiters = Waiters()
        self.datagrams_sent = 0
        self.bytes_sent = 0
        self.datagrams_received = 0
        self.bytes_received = 0
        self.send_dropped = 0

    def __await__(self) -> Generator[Any, None, WebTransportDatagramTransport]:
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    @property
    def session_id(self) -> int:
        return self._session.session_id

    @property
    def max_datagram_size(self) -> int:
        """Largest payload that can be sent now (the peer's limit and the path's)."""
        return self._session._max_datagram_size()

    @property
    def receive_buffer_size(self) -> int:
        """Datagrams waiting to be received."""
        return len(self._ring)

    @property
    def receive_dropped(self) -> int:
        """Datagrams dropped because the receive buffer was full."""
        return self._ring.dropped

    @property
    def is_closed(self) -> bool:
        return self._session.is_closed

    async def send(self, data: Data) -> bool:
        """Send one datagram. Returns False when the local send queue was full and it was
        dropped. Raises DatagramTooLargeError when it exceeds ``max_datagram_size``."""
        return self.send_nowait(data)

    def send_nowait(self, data: Data) -> bool:
        payload = ensure_bytes(data)
        sent = self._session._send_datagram(payload)
        if sent:
            self.datagrams_sent += 1
            self.bytes_sent += len(payload)
            self._session.events.emit_nowait(EventType.DATAGRAM_SENT, {"size": len(payload)})
        else:
            self.send_dropped += 1
        return sent

    def receive_nowait(self) -> bytes | None:
        """The oldest waiting datagram, or None."""
        return self._ring.pop()

    async def receive(self, *, timeout: float | None = None) -> bytes:
        """Wait for the next datagram. SessionClosedError once the session is closed and the
        buffer is empty; TimeoutError after ``timeout`` seconds."""
        loop = self._session._loop
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            payload = self._ring.pop()
            if payload is not None:
                return payload
            if self._session.is_closed:
                raise SessionClosedError("the session is closed; no more datagrams")
            try:
                await self._waiters.wait(None if deadline is None else max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise TimeoutError(f"no datagram within {timeout}s") from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            try:
                yield await self.receive()
            except SessionClosedError:
                return

    def get_stats(self) -> dict[str, int]:
        return {
            "datagrams_sent": self.datagrams_sent,
            "bytes_sent": self.bytes_sent,
            "datagrams_received": self.datagrams_received,
            "bytes_received": self.bytes_received,
            "send_dropped": self.send_dropped,
            "receive_dropped": self.receive_dropped,
            "receive_buffered": self.receive_buffer_size,
        }

    # -- fed by the session
    def _on_datagram(self, payload: bytes) -> None:
        self.datagrams_received += 1
        self.bytes_received += len(payload)
        self._ring.push(payload)
        self._wake()

    def _on_session_closed(self) -> None:
        self._wake()

    def _wake(self) -> None:
        self._waiters.wake()
