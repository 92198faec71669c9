"""The sending side of a WebTransport stream (internal): ``write``, ``drain`` (woken when the
engine announces the stream writable, never by polling), ``write_all``, FIN and reset.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

from pywebtransport._waiters import Waiters, wait_future
from pywebtransport.exceptions import StreamClosedError, StreamStopSendingError, TimeoutError
from pywebtransport.stream_base import StreamBase
from pywebtransport.types import Data
from pywebtransport.utils import ensure_bytes

__all__ = ["SendSide"]

logger = logging.getLogger(__name__)


class SendSide(StreamBase):
    """Writing with backpressure from QUIC and from session flow control."""

    #: After the peer's STOP_SENDING with WT_SESSION_GONE, the timer that stops the stream if
    #: the session's close has not come within ``close_timeout`` (set then only).
    _gone_timer: asyncio.TimerHandle | None = None

    def _init_send(self) -> None:
        self._send_done = False
        self._fin_sent = False
        self._stop_received = False
        self._stop_code: int | None = None
        #: The peer stopped the stream with WT_SESSION_GONE: its session is closing, and the
        #: close capsule may come after; writing then fails with the session's close error.
        self._send_gone = False
        #: The tasks waiting in drain(), one future each.
        self._drainers = Waiters()

    @property
    def write_buffer_size(self) -> int:
        """Bytes written and not yet acknowledged by the peer (on qh3: not yet sent).

        QUIC also holds the stream's header, which the application never wrote; what it holds
        is always the end of the stream, so the application's part is at most what it wrote."""
        return min(self._port.stream_buffered(self._stream_id), self.bytes_sent)

    def _check_writable(self) -> None:
        """Raise why the stream cannot be written: once its session is closed that is the
        session's close (unless we ended the stream ourselves), else the peer's STOP_SENDING
        or the end of sending. Returns while the peer's WT_SESSION_GONE waits for the close."""
        if not (self._stop_received or self._send_done or self._send_gone):
            return
        closed = self._port.closed_error(f"stream {self._stream_id}: the session closed")
        if closed is not None and not self._fin_sent and not self._reset_sent:
            raise closed
        if self._stop_received:
            raise StreamStopSendingError(f"stream {self._stream_id}: the peer sent STOP_SENDING",
                                         error_code=self._stop_code)
        if self._send_done:
            raise StreamClosedError(f"stream {self._stream_id} is closed for writing")

    def write(self, data: Data) -> None:
        """Queue ``data``; follow with ``await drain()`` to respect backpressure."""
        if self._stop_received or self._send_done or self._send_gone:
            self._check_writable()
            # Still here: the peer stopped the stream with WT_SESSION_GONE and the session's
            # close has not arrived; the bytes have nowhere to go, drain() reports the close.
            return
        payload = data if type(data) is bytes else ensure_bytes(data)
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
        Any number of tasks may wait at once. Once the stream's sending is over it waits for
        nothing: after our FIN it returns (nothing is left to pace), after a reset, the
        peer's STOP_SENDING or the session's end it raises. A STOP_SENDING with WT_SESSION_GONE
        means the session is closing: drain() waits for its close and raises that (at most
        ``close_timeout`` seconds from the STOP_SENDING; then StreamStopSendingError).
        """
        if self._send_done:
            self._drain_ended()
            return
        port = self._port
        if self._send_gone:
            timeout = port.config.write_timeout
            await self._wait_session_end(
                None if timeout is None else asyncio.get_running_loop().time() + timeout, timeout)
        stream_id = self._stream_id
        high = port.config.stream_buffer_size
        if port.stream_buffered(stream_id) <= high and port.send_room() > 0:
            return
        # Past the stream's high-water mark: wait down to half of it; else only for room.
        low = high // 2 if port.stream_buffered(stream_id) > high else high
        timeout = port.config.write_timeout
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while port.stream_buffered(stream_id) > low or port.send_room() <= 0:
                if self._send_done:
                    self._drain_ended()
                    return
                if self._send_gone:
                    await self._wait_session_end(deadline, timeout)
                if port.is_closed:
                    self._raise_unwritable()
                waiter = self._drainers.arm()  # before the watch: it may answer at once
                try:
                    if not port.stream_watch_writable(stream_id, low):
                        self._raise_unwritable()
                    if waiter.done() and not self._send_done and (
                            port.stream_buffered(stream_id) > low or port.send_room() <= 0):
                        # Answered at once with nothing freed: the engine no longer tracks
                        # the stream for writing, so no acknowledgement will wake this.
                        self._check_writable()
                        raise StreamClosedError(f"stream {stream_id} is no longer writable")
                    await wait_future(waiter, None if deadline is None else max(0.0, deadline - loop.time()))
                finally:
                    self._drainers.disarm(waiter)
        except asyncio.TimeoutError:
            raise TimeoutError(f"stream {stream_id}: drain did not finish within {timeout}s") from None

    async def _wait_session_end(self, deadline: float | None, timeout: float | None) -> NoReturn:
        """After the peer's STOP_SENDING with WT_SESSION_GONE: wait (within ``deadline``) for
        the session's close, which wakes the drainers, and raise its error; or, when the close
        does not come within ``close_timeout`` (``_gone_without_close``), the stop's."""
        loop = asyncio.get_running_loop()
        while not self._port.is_closed and not self._send_done:
            waiter = self._drainers.arm()
            try:
                await wait_future(waiter, None if deadline is None else max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise TimeoutError(f"stream {self._stream_id}: drain did not finish within {timeout}s") from None
            finally:
                self._drainers.disarm(waiter)
        self._raise_unwritable()

    def _gone_without_close(self) -> None:
        """The peer's WT_SESSION_GONE was not followed by its session's close within
        ``close_timeout``: the stream is stopped like any other STOP_SENDING (writes raise
        StreamStopSendingError, and a send-only stream is closed); nothing waits on a close
        that may never come."""
        self._gone_timer = None
        if self._stop_received or self._send_done or self._port.is_closed:
            return
        logger.info("stream %d: STOP_SENDING with WT_SESSION_GONE and no session close within %.1fs; "
                    "treating it as stopped", self._stream_id, self._port.config.close_timeout)
        self._stop_received = True
        self._stop_code = None
        self._send_done = True
        self._wake_drain()
        self._check_closed()

    def _drain_ended(self) -> None:
        """drain() once sending is over: fine after our FIN, an error otherwise."""
        if self._fin_sent and not self._reset_sent and not self._stop_received:
            return
        self._raise_unwritable()

    def _raise_unwritable(self) -> NoReturn:
        self._check_writable()
        raise (self._port.closed_error(f"stream {self._stream_id}: the session closed")
               or StreamClosedError(f"stream {self._stream_id}: the session closed"))

    def _wake_drain(self) -> None:
        self._drainers.wake()

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
        """Send FIN after what was written (idempotent); the peer reads EOF after the data.
        Nothing is sent once the peer stopped the stream (STOP_SENDING) or its session went."""
        if self._send_done or self._send_gone:
            return
        self._fin_sent = True
        self._port.stream_send(self._stream_id, b"", True)
        self._send_done = True
        self._wake_drain()  # a task waiting in drain() has nothing left to wait for
        self._check_closed()

    def abort(self, error_code: int = 0) -> None:
        """Reset the sending side (RESET_STREAM) with an application error code.

        After our FIN, a reset abandons only the bytes still waiting for session credit (QUIC
        has not had them); bytes QUIC already holds, sent or not, are delivered with the FIN.
        Once the stream has nothing left, or sending is over otherwise (a reset, the peer's
        STOP_SENDING, the session's end), nothing happens: ``async with stream:`` calls this
        on its way out by an exception,
        which must reach the caller unchanged. A code outside [0, 2**32) raises ValueError and
        leaves the stream as it was.
        """
        if self._reset_sent or self._stop_received or self._send_gone or self._port.is_closed:
            return
        try:
            self._port.stream_reset(self._stream_id, error_code)  # checks the code before anything changes
        except StreamClosedError:
            if self._fin_sent:  # the engine is done with it: everything went, nothing to reset
                return
            raise
        self._reset_sent = True
        self._send_done = True
        self._wake_drain()
        self._check_closed()

    def _on_stop_sending(self, error_code: int | None) -> None:
        self._stop_received = True
        self._stop_code = error_code
        self._send_done = True
        self._wake_drain()
        self._check_closed()

    def _on_stop_session_gone(self) -> None:
        """The peer stopped the stream with WT_SESSION_GONE (draft-15 §6): its session is
        closing. The engine closed our sending side already; writers get the session's close
        error, at once if the session is closed, else once its close arrives (this stream
        stays with the session until then, so it hears of the close)."""
        self._send_gone = True
        if self._port.is_closed:
            self._send_done = True
        elif self._gone_timer is None:
            self._gone_timer = asyncio.get_running_loop().call_later(self._port.config.close_timeout,
                                                                     self._gone_without_close)
        self._wake_drain()
        self._check_closed()

    def _on_session_closed(self) -> None:
        if self._gone_timer is not None:  # the close came: the stream follows it
            self._gone_timer.cancel()
            self._gone_timer = None
        self._wake_drain()
        super()._on_session_closed()
