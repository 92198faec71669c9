"""WebTransport streams with the vocabulary of asyncio streams.

Reading returns flow-control credit to the peer only as the application consumes bytes, so
a slow reader really slows a fast writer down. Writing queues bytes in QUIC (or in the
engine while session credit is exhausted); ``drain()`` waits until what is unacknowledged
falls below the low-water mark.

The parts live next to this module: ``stream_base`` (id, state, event routing),
``stream_reader`` (the receive buffer and reading) and ``stream_writer`` (writing and
backpressure); the three public classes here combine them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pywebtransport.stream_reader import ReceiveSide
from pywebtransport.stream_writer import SendSide
from pywebtransport.types import StreamDirection, StreamId

if TYPE_CHECKING:
    from pywebtransport.session.session import WebTransportSession

__all__ = [
    "StreamType",
    "WebTransportReceiveStream",
    "WebTransportSendStream",
    "WebTransportStream",
]


class WebTransportReceiveStream(ReceiveSide):
    """A unidirectional stream the peer opened: read-only."""

    _direction = StreamDirection.RECEIVE_ONLY

    def __init__(self, *, session: WebTransportSession, stream_id: StreamId) -> None:
        super().__init__(session=session, stream_id=stream_id)
        self._init_receive()


class WebTransportSendStream(SendSide):
    """A unidirectional stream we opened: write-only."""

    _direction = StreamDirection.SEND_ONLY

    def __init__(self, *, session: WebTransportSession, stream_id: StreamId) -> None:
        super().__init__(session=session, stream_id=stream_id)
        self._init_send()

    async def __aenter__(self) -> WebTransportSendStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.close()
        else:
            self.abort(0)


class WebTransportStream(ReceiveSide, SendSide):
    """A bidirectional stream: read and write."""

    _direction = StreamDirection.BIDIRECTIONAL

    def __init__(self, *, session: WebTransportSession, stream_id: StreamId) -> None:
        super().__init__(session=session, stream_id=stream_id)
        self._init_receive()
        self._init_send()

    async def __aenter__(self) -> WebTransportStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.close()
        else:
            self.abort(0)
            self.stop_receiving(0)


StreamType = WebTransportStream | WebTransportReceiveStream | WebTransportSendStream
