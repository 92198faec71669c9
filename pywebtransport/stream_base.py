"""What every WebTransport stream has (internal): an id, its session, a state, the wait for
its end, and ``handle_event``, the one entry through which its session routes engine events.

The two directions build on it: :mod:`pywebtransport.stream_reader` (receiving) and
:mod:`pywebtransport.stream_writer` (sending); :mod:`pywebtransport.stream` puts them together.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pywebtransport._protocol import events as ev
from pywebtransport._waiters import Latch
from pywebtransport.constants import WT_SESSION_GONE
from pywebtransport.types import SessionId, StreamDirection, StreamId, StreamState

if TYPE_CHECKING:
    from pywebtransport.session.port import SessionPort
    from pywebtransport.session.session import WebTransportSession

__all__ = ["StreamBase"]


class StreamBase:
    """What every stream has: an id, its session, a state and a way to wait for its end."""

    _direction: StreamDirection

    def __init__(self, *, session: WebTransportSession, stream_id: StreamId) -> None:
        self._session = session
        self._port: SessionPort = session
        self._stream_id = stream_id
        self._send_done = True
        self._recv_done = True
        self._reset_sent = False
        self._reset_received = False
        self._closed = Latch()  # no waiter deque per stream, as asyncio.Event would make
        self.created_at = asyncio.get_running_loop().time()
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def stream_id(self) -> StreamId:
        return self._stream_id

    @property
    def session_id(self) -> SessionId:
        return self._session.session_id

    @property
    def session(self) -> WebTransportSession:
        return self._session

    @property
    def direction(self) -> StreamDirection:
        return self._direction

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    @property
    def state(self) -> StreamState:
        if self._send_done and self._recv_done:
            return StreamState.CLOSED
        if self._reset_sent:
            return StreamState.RESET_SENT
        if self._reset_received:
            return StreamState.RESET_RECEIVED
        if self._send_done:
            return StreamState.HALF_CLOSED_LOCAL
        if self._recv_done:
            return StreamState.HALF_CLOSED_REMOTE
        return StreamState.OPEN

    async def wait_closed(self) -> None:
        """Wait until both directions are finished (FIN or reset either way)."""
        await self._closed.wait()

    def handle_event(self, event: ev.EngineEvent) -> None:
        """Internal: an engine event about this stream, routed by its session (not public API)."""
        if isinstance(event, ev.StreamDataReceived):
            self.deliver_data(event.data, event.end_stream)
        elif isinstance(event, ev.StreamReset):
            if event.http_error_code == WT_SESSION_GONE:
                self._on_session_gone()
            else:
                self._on_reset(event.error_code)
        elif isinstance(event, ev.StreamStopSending):
            # WT_SESSION_GONE is no application code: the peer stops the streams of a session
            # it closed (draft-15 §6), as it resets them; writing follows the session's end.
            if event.http_error_code == WT_SESSION_GONE:
                self._on_stop_session_gone()
            else:
                self._on_stop_sending(event.error_code)
        elif isinstance(event, ev.StreamWritable):
            self._wake_drain()
        elif isinstance(event, ev.SessionClosed):
            self._on_session_closed()

    def deliver_data(self, data: bytes, end_stream: bool) -> None:
        """Internal: payload (and the FIN) of this stream arrived; its session's fast path for
        the engine's StreamDataReceived (not public API). A stream that cannot read hands
        the credit straight back; the receiving side buffers it."""
        self._port.stream_consume(self._stream_id, len(data))

    # Each side overrides what it handles; a side that cannot see an event ignores it.

    def _on_reset(self, error_code: int | None) -> None:
        pass

    def _on_session_gone(self) -> None:
        pass

    def _on_stop_sending(self, error_code: int | None) -> None:
        pass

    def _on_stop_session_gone(self) -> None:
        pass

    def _wake_drain(self) -> None:
        pass

    def _check_closed(self) -> None:
        if self._send_done and self._recv_done and not self._closed.is_set():
            self._closed.set()
            self._port.stream_finished(self._stream_id)

    def _on_session_closed(self) -> None:
        """The session ended: every pending operation fails, the stream is closed."""
        self._send_done = True
        self._recv_done = True
        self._check_closed()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self._stream_id} session={self.session_id} state={self.state.value}>"
