"""WebTransport streams with the vocabulary of asyncio streams.

Reading returns flow-control credit to the peer only as the application consumes bytes, so
a slow reader really slows a fast writer down. Writing queues bytes in QUIC (or in the
engine while session credit is exhausted); ``drain()`` waits until what is unacknowledged
falls below the low-water mark.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from pywebtransport._protocol import events as ev
from pywebtransport._waiters import Waiters
from pywebtransport.constants import WT_SESSION_GONE
from pywebtransport.exceptions import (
    SessionClosedError,
    StreamClosedError,
    StreamResetError,
    StreamStopSendingError,
    TimeoutError,
)
from pywebtransport.types import Data, SessionId, StreamDirection, StreamId, StreamState
from pywebtransport.utils import ensure_bytes

if TYPE_CHECKING:
    from pywebtransport.session.port import SessionPort
    from pywebtransport.session.session import WebTransportSession

__all__ = [
    "StreamType",
    "WebTransportReceiveStream",
    "WebTransportSendStream",
    "WebTransportStream",
]

logger = logging.getLogger(__name__)

_DEFAULT_LIMIT = 1 << 16  # readuntil's default, as asyncio.StreamReader's


class _StreamBase:
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
        self._closed = asyncio.Event()
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
            self._on_data(event.data, event.end_stream)
        elif isinstance(event, ev.StreamReset):
            if event.http_error_code == WT_SESSION_GONE:
                self._on_session_gone()
            else:
                self._on_reset(event.error_code)
        elif isinstance(event, ev.StreamStopSending):
            self._on_stop_sending(event.error_code)
        elif isinstance(event, ev.StreamWritable):
            self._wake_drain()
        elif isinstance(event, ev.SessionClosed):
            self._on_session_closed()

    # Each side overrides what it handles; a side that cannot see an event ignores it.
    def _on_data(self, data: bytes, end_stream: bool) -> None:
        self._port.stream_consume(self._stream_id, len(data))

    def _on_reset(self, error_code: int | None) -> None:
        pass

    def _on_session_gone(self) -> None:
        pass

    def _on_stop_sending(self, error_code: int | None) -> None:
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


class _ReceiveSide(_StreamBase):
    """Buffered reading, bounded by the QUIC stream window."""

    def _init_receive(self) -> None:
        self._recv_done = False
        self._session_gone = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._error: BaseException | None = None
        self._readers = Waiters()

    # -- fed by the session
    def _on_data(self, data: bytes, end_stream: bool) -> None:
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            self.bytes_received += len(data)
        if end_stream:
            self._eof = True
        self._wake()

    def _on_reset(self, error_code: int | None) -> None:
        self._reset_received = True
        self._error = StreamResetError(f"stream {self._stream_id} was reset by the peer", error_code=error_code)
        self._discard_buffer()
        self._finish_receiving()

    def _on_session_gone(self) -> None:
        """The peer reset the stream with WT_SESSION_GONE: its session is closing, and the
        close capsule may arrive after the reset; reading follows the session-end rule."""
        self._reset_received = True
        self._session_gone = True
        self._discard_buffer()
        closed = self._port.closed_error(f"stream {self._stream_id}: the session closed")
        if closed is not None:
            self._error = closed
            self._finish_receiving()
        # Otherwise readers wait for the session's end, which this stream still receives.

    def _on_session_closed(self) -> None:
        if (not self._recv_done and self._error is None) or self._session_gone:
            self._error = (self._port.closed_error(f"stream {self._stream_id}: the session closed")
                           or StreamClosedError(f"stream {self._stream_id}: the session closed"))
        self._wake()
        super()._on_session_closed()

    def _finish_receiving(self) -> None:
        self._recv_done = True
        self._wake()
        self._check_closed()

    def _discard_buffer(self) -> None:
        if self._buffered:
            self._port.stream_consume(self._stream_id, self._buffered)
        self._chunks.clear()
        self._buffered = 0

    def _wake(self) -> None:
        self._readers.wake()

    async def _wait_readable(self) -> None:
        """Wait until data, EOF or an error is there; honours the configured read timeout."""
        while not self._chunks and not self._eof and self._error is None:
            if self._recv_done:
                raise StreamClosedError(f"stream {self._stream_id} is closed for reading")
            timeout = self._port.config.read_timeout
            try:
                await self._readers.wait(timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"stream {self._stream_id}: no data within {timeout}s") from None

    def _take(self, n: int) -> bytes:
        """Up to n buffered bytes (all with n < 0), returning their credit to the peer."""
        if n < 0 or n >= self._buffered:
            data = b"".join(self._chunks)
            self._chunks.clear()
        else:
            parts = []
            need = n
            while need:
                chunk = self._chunks[0]
                if len(chunk) <= need:
                    parts.append(self._chunks.popleft())
                    need -= len(chunk)
                else:
                    parts.append(chunk[:need])
                    self._chunks[0] = chunk[need:]
                    need = 0
            data = b"".join(parts)
        self._buffered -= len(data)
        if data:
            self._port.stream_consume(self._stream_id, len(data))
        if self._eof and not self._chunks and not self._recv_done:
            self._finish_receiving()
        return data

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- public reading API
    @property
    def at_eof(self) -> bool:
        """True once the peer's FIN arrived and every byte was read."""
        return self._eof and not self._chunks

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF). ``b""`` means EOF."""
        if n == 0:
            return b""
        if n < 0:
            parts = []
            while True:
                await self._wait_readable_or_eof()
                if not self._chunks:
                    break
                parts.append(self._take(-1))
            return b"".join(parts)
        await self._wait_readable_or_eof()
        return self._take(n)

    async def _wait_readable_or_eof(self) -> None:
        if self._chunks:
            return
        if self._eof:
            if not self._recv_done:
                self._finish_receiving()
            return
        self._raise_error()
        await self._wait_readable()
        if not self._chunks:
            self._raise_error()
            if self._eof and not self._recv_done:
                self._finish_receiving()

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; asyncio.IncompleteReadError if EOF comes first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        parts: list[bytes] = []
        got = 0
        while got < n:
            await self._wait_readable_or_eof()
            if not self._chunks:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            part = self._take(n - got)
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    async def readuntil(self, separator: bytes = b"\n", *, limit: int = _DEFAULT_LIMIT) -> bytes:
        """Read through ``separator`` (included). asyncio.LimitOverrunError beyond ``limit``
        bytes without it; asyncio.IncompleteReadError at EOF without it."""
        if not separator:
            raise ValueError("separator should be at least one-byte string")
        while True:
            joined = b"".join(self._chunks)
            if len(self._chunks) > 1:
                self._chunks.clear()
                self._chunks.append(joined)
            index = joined.find(separator)
            if index >= 0:
                if index + len(separator) > limit:
                    raise asyncio.LimitOverrunError("separator found but chunk exceeds the limit", index)
                return self._take(index + len(separator))
            if len(joined) > limit:
                raise asyncio.LimitOverrunError("separator not found and chunk exceeds the limit", len(joined))
            if self._eof:
                rest = self._take(-1)
                raise asyncio.IncompleteReadError(rest, None)
            self._raise_error()
            await self._wait_readable()

    async def readline(self) -> bytes:
        """A line including ``\\n``; at EOF the remaining bytes (possibly empty)."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        # The session-end rule (see WebTransportSession): a clean close ends iteration quietly.
        while True:
            try:
                chunk = await self.read(_DEFAULT_LIMIT)
            except SessionClosedError:
                if self._port.ended_cleanly():
                    return
                raise
            if not chunk:
                return
            yield chunk

    def stop_receiving(self, error_code: int = 0) -> None:
        """Send STOP_SENDING with ``error_code``; buffered data is discarded."""
        if self._recv_done:
            return
        self._port.stream_stop(self._stream_id, error_code)
        self._error = StreamClosedError(f"stream {self._stream_id}: receiving was stopped")
        self._discard_buffer()
        self._finish_receiving()


class _SendSide(_StreamBase):
    """Writing with backpressure from QUIC and from session flow control."""

    def _init_send(self) -> None:
        self._send_done = False
        self._fin_sent = False
        self._stop_received = False
        self._stop_code: int | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    @property
    def write_buffer_size(self) -> int:
        """Bytes written and not yet acknowledged by the peer."""
        return self._port.stream_buffered(self._stream_id)

    def _check_writable(self) -> None:
        if self._stop_received:
            raise StreamStopSendingError(f"stream {self._stream_id}: the peer sent STOP_SENDING",
                                         error_code=self._stop_code)
        if self._send_done:
            closed = self._port.closed_error(f"stream {self._stream_id}: the session closed")
            if closed is not None and not self._fin_sent and not self._reset_sent:
                raise closed
            raise StreamClosedError(f"stream {self._stream_id} is closed for writing")

    def write(self, data: Data) -> None:
        """Queue ``data``; follow with ``await drain()`` to respect backpressure."""
        self._check_writable()
        payload = ensure_bytes(data)
        if not payload:
            return
        self._port.stream_send(self._stream_id, payload, False)
        self.bytes_sent += len(payload)

    async def drain(self) -> None:
        """Wait until the unacknowledged bytes fall to the low-water mark and the connection
        has room to send.

        Above ``stream_buffer_size`` unacknowledged bytes the writer waits until the engine
        announces (StreamWritable) that at most half of that is left. All the streams of a
        connection together are bounded too (``max_connection_send_buffer``, and on a server
        ``max_server_send_buffer`` over all its connections): once that is full the writer
        waits until an eighth of it is free again. Acknowledgements wake it, nothing polls.
        """
        port = self._port
        high = port.config.stream_buffer_size
        if port.stream_buffered(self._stream_id) <= high and port.send_room() > 0:
            if self._stop_received:
                self._check_writable()
            return
        # Past the stream's high-water mark: wait down to half of it; else only for room.
        low = high // 2 if port.stream_buffered(self._stream_id) > high else high
        timeout = port.config.write_timeout
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while port.stream_buffered(self._stream_id) > low or port.send_room() <= 0:
                if self._stop_received or port.is_closed:
                    self._raise_unwritable()
                self._drain_waiter = loop.create_future()
                if not port.stream_watch_writable(self._stream_id, low):
                    self._raise_unwritable()
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait_for(self._drain_waiter, remaining)
        except asyncio.TimeoutError:
            raise TimeoutError(f"stream {self._stream_id}: drain did not finish within {timeout}s") from None
        finally:
            self._drain_waiter = None

    def _raise_unwritable(self) -> None:
        self._check_writable()
        raise (self._port.closed_error(f"stream {self._stream_id}: the session closed")
               or StreamClosedError(f"stream {self._stream_id}: the session closed"))

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def write_all(self, data: Data, *, end_stream: bool = False, chunk_size: int = 1 << 16) -> None:
        """Write everything with backpressure (chunk by chunk), optionally ending the stream.

        Each chunk waits for room first and is cut to the connection's send room, so the
        writers of a connection never hold more than its bound together (``write()`` +
        ``drain()`` may pass it by one write per stream)."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}")
        payload = memoryview(ensure_bytes(data))
        start, end = 0, len(payload)
        while start < end:
            await self.drain()  # returns with send_room() > 0, and nothing runs in between
            stop = min(end, start + chunk_size, start + self._port.send_room())
            self.write(bytes(payload[start:stop]))
            start = stop
        if end:
            await self.drain()
        if end_stream:
            await self.close()

    async def close(self) -> None:
        """Send FIN after what was written (idempotent); the peer reads EOF after the data."""
        if self._send_done:
            return
        self._fin_sent = True
        self._port.stream_send(self._stream_id, b"", True)
        self._send_done = True
        self._check_closed()

    def abort(self, error_code: int = 0) -> None:
        """Reset the sending side (RESET_STREAM) with an application error code."""
        if self._reset_sent or self._stop_received or self._port.is_closed:
            return
        self._reset_sent = True
        self._port.stream_reset(self._stream_id, error_code)
        self._send_done = True
        self._wake_drain()
        self._check_closed()

    def _on_stop_sending(self, error_code: int | None) -> None:
        self._stop_received = True
        self._stop_code = error_code
        self._send_done = True
        self._wake_drain()
        self._check_closed()

    def _on_session_closed(self) -> None:
        self._wake_drain()
        super()._on_session_closed()


class WebTransportReceiveStream(_ReceiveSide):
    """A unidirectional stream the peer opened: read-only."""

    _direction = StreamDirection.RECEIVE_ONLY

    def __init__(self, *, session: WebTransportSession, stream_id: StreamId) -> None:
        super().__init__(session=session, stream_id=stream_id)
        self._init_receive()


class WebTransportSendStream(_SendSide):
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


class WebTransportStream(_ReceiveSide, _SendSide):
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

