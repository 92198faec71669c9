"""A session's streams: opening them (waiting for credit), the ones the peer opens (queue,
``incoming_streams()``, ``accept_*``), the credit we grant the peer, and the stream half of the
port that each stream calls going down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

from pywebtransport._waiters import wait_future
from pywebtransport.events import EventType
from pywebtransport.exceptions import (
    FlowControlError,
    LocalProtocolError,
    SessionError,
    StreamClosedError,
    TimeoutError,
)
from pywebtransport.session.core import SessionCore
from pywebtransport.session.serving import StreamHandler, StreamHandlerTasks
from pywebtransport.stream import StreamType, WebTransportReceiveStream, WebTransportSendStream, WebTransportStream
from pywebtransport.types import StreamId

if TYPE_CHECKING:
    from pywebtransport.messaging import Serializer, StructuredStream

__all__ = ["SessionStreams"]

#: Event names read per stream or per datagram (a listener check each time): module globals,
#: where ``EventType.X`` costs about 100 ns a read on Python 3.10 and 3.11 (``EnumType.__getattr__``).
_STREAM_OPENED = EventType.STREAM_OPENED
_STREAM_CLOSED = EventType.STREAM_CLOSED

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Streams refused for a full incoming queue: a warning for the first and then one for every
#: this many (the others are logged at debug level).
_REFUSALS_PER_WARNING = 1000


class SessionStreams(SessionCore):
    """Opening, accepting and serving streams (a part of WebTransportSession)."""

    #: Streams refused for a full incoming queue; a class default, so that a session that
    #: never refuses one carries no attribute for it.
    _streams_refused = 0
    #: The handler tasks of a running ``serve_streams()`` (None: streams are queued).
    _handlers: StreamHandlerTasks | None = None

    # ------------------------------------------------------------------ opening streams

    async def create_bidirectional_stream(self, *, timeout: float | None = None) -> WebTransportStream:
        """Open a bidirectional stream, waiting for stream credit up to ``timeout`` seconds
        (None: the configured ``stream_creation_timeout``); TimeoutError on expiry."""
        stream = await self._create_stream(is_unidirectional=False, timeout=timeout)
        assert isinstance(stream, WebTransportStream)
        return stream

    async def create_unidirectional_stream(self, *, timeout: float | None = None) -> WebTransportSendStream:
        """Open a send-only stream; waits for credit like create_bidirectional_stream."""
        stream = await self._create_stream(is_unidirectional=True, timeout=timeout)
        assert isinstance(stream, WebTransportSendStream)
        return stream

    async def _create_stream(self, *, is_unidirectional: bool, timeout: float | None) -> StreamType:
        if timeout is None:
            timeout = self._config.stream_creation_timeout
        deadline: float | None = None  # set when it first has to wait
        while True:
            connection = self._require_open()
            engine = self._engine
            try:  # the engine checks the credit itself: no second look first
                stream_id = engine.open_stream(self._session_id, is_unidirectional=is_unidirectional)
            except (LocalProtocolError, FlowControlError):  # no credit now: wait like everyone else
                stream_id = None
            if stream_id is not None:
                connection.process_engine_events()
                stream: StreamType
                if is_unidirectional:
                    stream = WebTransportSendStream(session=self._as_session(), stream_id=stream_id)
                else:
                    stream = WebTransportStream(session=self._as_session(), stream_id=stream_id)
                self._register_stream(stream, stream_id)
                return stream
            if deadline is None:
                deadline = self._loop.time() + timeout
            # The engine announces the credit (and tells the peer WT_STREAMS_BLOCKED).
            waiter = self._loop.create_future()
            self._credit_waiters[is_unidirectional].append(waiter)
            try:
                engine.watch_stream_credit(self._session_id, is_unidirectional)
                connection.process_engine_events()
                await wait_future(waiter, max(0.0, deadline - self._loop.time()))
            except asyncio.TimeoutError:
                kind = "unidirectional" if is_unidirectional else "bidirectional"
                raise TimeoutError(f"session {self._session_id}: no {kind} stream credit within {timeout}s") from None
            finally:
                if waiter in self._credit_waiters[is_unidirectional]:
                    self._credit_waiters[is_unidirectional].remove(waiter)

    def _register_stream(self, stream: StreamType, stream_id: StreamId) -> None:
        self._streams[stream_id] = stream
        if self.has_listeners(_STREAM_OPENED):  # no emitter or event object per stream for nobody
            self._events.emit_nowait(_STREAM_OPENED, {"stream": stream, "stream_id": stream_id})

    # ------------------------------------------------------------------ streams the peer opens

    def _on_stream_opened(self, stream_id: StreamId, is_unidirectional: bool) -> None:
        handlers = self._handlers
        # Streams waiting to be accepted, or handlers running: bounded alike, and checked
        # before any object is made for the stream.
        waiting = self._incoming_count() if handlers is None else handlers.running
        if waiting >= self._config.max_incoming_streams_queue:
            self._refuse_incoming(stream_id, waiting)
            return
        stream: StreamType
        if is_unidirectional:
            stream = WebTransportReceiveStream(session=self._as_session(), stream_id=stream_id)
        else:
            stream = WebTransportStream(session=self._as_session(), stream_id=stream_id)
        self._register_stream(stream, stream_id)
        if handlers is not None:
            handlers.start(stream)
            return
        self._arrivals += 1
        self._incoming[is_unidirectional].append((self._arrivals, stream))
        self._incoming_waiters.wake()

    def _refuse_incoming(self, stream_id: StreamId, waiting: int) -> None:
        """Turn away a stream the peer opened while ``waiting`` streams wait to be accepted (or
        ``waiting`` handlers of ``serve_streams()`` run).

        A peer can open streams far faster than they are refused: one warning for the first
        and then one per ``_REFUSALS_PER_WARNING`` (the rest at debug level), never a traceback."""
        self._stream_errors += 1
        self._streams_refused += 1
        refused = self._streams_refused
        level = logging.WARNING if refused % _REFUSALS_PER_WARNING == 1 else logging.DEBUG
        what = "incoming streams wait to be accepted" if self._handlers is None else "stream handlers run"
        logger.log(level, "session %d: %d %s (max_incoming_streams_queue); refusing stream %d (%d refused so far)",
                   self._session_id, waiting, what, stream_id, refused)
        self._engine.refuse_stream(stream_id, 0)

    async def serve_streams(self, handler: StreamHandler) -> None:
        """Run ``await handler(stream)`` for every stream the peer opens, each in a task of its
        own, until the session closes; streams already waiting to be accepted go first.

        The task starts as the stream arrives, with no accepting loop in between (``async for
        stream in session.incoming_streams()`` handing each to a task of its own takes one task
        step more per stream). While this runs, ``incoming_streams()`` and ``accept_*()`` get
        no new streams. At most ``config.max_incoming_streams_queue`` handlers run at once; a
        stream arriving beyond that is refused, as one beyond a full queue. A handler that
        raises, or ends by a CancelledError of its own, has it logged and its stream reset with
        code 1 (not when the stream or the session had ended: that is how a peer leaving shows).
        When the session closes, the handlers still running get ``config.close_timeout``
        seconds to end (their streams' reads and writes raise the close; data that arrived
        before it can still be read), and are then cancelled; when this call is cancelled (also
        during that grace), they are cancelled at once, and the streams of those cancelled while
        the session is open are reset with code 1 (no one else will serve them). A handler
        that will not stop within ``close_timeout`` of being cancelled is logged and left
        running. Returns when the session closed cleanly (code 0);
        otherwise raises the session's closed error, as ``incoming_streams()`` does.
        RuntimeError if it is already running.
        """
        if self._handlers is not None:
            raise RuntimeError(f"session {self._session_id}: serve_streams() is already running")
        handlers = self._handlers = StreamHandlerTasks(handler, self._loop, self._session_id)
        grace = self._config.close_timeout
        try:
            while (stream := self._queued(None)) is not None:
                handlers.start(stream)
            await self._closed_event.wait()
        except BaseException:  # cancelled: the caller wants out now
            self._handlers = None
            await handlers.stop(grace)
            raise
        self._handlers = None
        try:
            await handlers.finish(grace)
        except BaseException:  # cancelled during the grace (server.close() does): no more grace
            await handlers.stop(grace)
            raise
        if not self.ended_cleanly():
            raise self._closed_error_or_generic(f"session {self._session_id} closed")

    async def incoming_streams(self) -> AsyncGenerator[StreamType, None]:
        """Streams the peer opens, as they arrive, until the session closes (see the class
        docstring for how iteration ends)."""
        while True:
            stream = self._queued(None)
            if stream is not None:
                yield stream
                continue
            if await self._wait_incoming():
                return

    def _queued(self, unidirectional: bool | None) -> StreamType | None:
        """Take the next waiting incoming stream of a kind (None: either, oldest first)."""
        bidi, uni = self._incoming[False], self._incoming[True]
        if unidirectional is None:
            queue = bidi if not uni or (bidi and bidi[0][0] < uni[0][0]) else uni
        else:
            queue = uni if unidirectional else bidi
        return queue.popleft()[1] if queue else None

    async def incoming_bidirectional_streams(self) -> AsyncIterator[WebTransportStream]:
        """Bidirectional streams the peer opens, as they arrive, until the session closes."""
        queue = self._incoming[False]
        while True:
            if queue:
                stream = queue.popleft()[1]
                assert isinstance(stream, WebTransportStream)
                yield stream
                continue
            if await self._wait_incoming():
                return

    async def incoming_unidirectional_streams(self) -> AsyncIterator[WebTransportReceiveStream]:
        """Unidirectional (receive-only) streams the peer opens, until the session closes."""
        queue = self._incoming[True]
        while True:
            if queue:
                stream = queue.popleft()[1]
                assert isinstance(stream, WebTransportReceiveStream)
                yield stream
                continue
            if await self._wait_incoming():
                return

    async def _wait_incoming(self) -> bool:
        """Wait for an incoming stream; True when iteration ends quietly (clean close)."""
        if self.is_closed:
            if self.ended_cleanly():
                return True
            raise self._closed_error_or_generic(f"session {self._session_id} closed")
        await self._incoming_waiters.wait()
        return False

    async def accept_stream(self, *, timeout: float | None = None) -> StreamType:
        """The next stream the peer opens; TimeoutError after ``timeout`` seconds (with
        ``timeout <= 0`` a stream already waiting, else TimeoutError at once)."""
        if timeout is not None and timeout <= 0:
            return self._accept_now(None, timeout)
        return await self._accept(self.incoming_streams(), timeout)

    async def accept_bidirectional_stream(self, *, timeout: float | None = None) -> WebTransportStream:
        """The next bidirectional stream the peer opens; TimeoutError after ``timeout`` seconds."""
        if timeout is not None and timeout <= 0:
            stream = self._accept_now(False, timeout)
            assert isinstance(stream, WebTransportStream)
            return stream
        return await self._accept(self.incoming_bidirectional_streams(), timeout)

    async def accept_unidirectional_stream(self, *, timeout: float | None = None) -> WebTransportReceiveStream:
        """The next unidirectional stream the peer opens; TimeoutError after ``timeout`` seconds."""
        if timeout is not None and timeout <= 0:
            stream = self._accept_now(True, timeout)
            assert isinstance(stream, WebTransportReceiveStream)
            return stream
        return await self._accept(self.incoming_unidirectional_streams(), timeout)

    def _accept_now(self, unidirectional: bool | None, timeout: float) -> StreamType:
        """accept with ``timeout <= 0``: one pass that never waits, as datagrams.receive(timeout=0)
        (``asyncio.wait_for(..., 0)`` cancels before the first step, so it never found one)."""
        stream = self._queued(unidirectional)
        if stream is not None:
            return stream
        if self.is_closed:
            raise self._closed_error_or_generic("the session closed while waiting for a stream")
        raise TimeoutError(f"no incoming stream within {timeout}s")

    async def _accept(self, iterator: AsyncIterator[_T], timeout: float | None) -> _T:
        try:
            return await asyncio.wait_for(iterator.__anext__(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no incoming stream within {timeout}s") from None
        except StopAsyncIteration:
            raise self._closed_error_or_generic("the session closed while waiting for a stream") from None
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    # ------------------------------------------------------------------ credit we grant the peer

    async def grant_data_credit(self, *, max_data: int) -> None:
        """Raise the session's WT_MAX_DATA for the peer (only ever grows)."""
        connection = self._require_open()
        self._engine.grant_data_credit(self._session_id, max_data)
        connection.process_engine_events()

    async def grant_streams_credit(self, *, max_streams: int, is_unidirectional: bool) -> None:
        """Raise the session's WT_MAX_STREAMS of one kind for the peer (only ever grows)."""
        connection = self._require_open()
        self._engine.grant_streams_credit(self._session_id, max_streams, is_unidirectional)
        connection.process_engine_events()

    # ------------------------------------------------------------------ structured messaging

    async def create_structured_stream(self, *, serializer: Serializer, registry: dict[int, type[Any]],
                                       timeout: float | None = None) -> StructuredStream:
        """A bidirectional stream carrying typed objects (length-prefixed, type-tagged)."""
        from pywebtransport.messaging import StructuredStream

        stream = await self.create_bidirectional_stream(timeout=timeout)
        return StructuredStream(stream=stream, serializer=serializer, registry=registry)

    # ------------------------------------------------------------------ the stream half of the port (SessionPort)

    def stream_send(self, stream_id: StreamId, data: bytes, end_stream: bool) -> None:
        """Internal (SessionPort): queue bytes on a stream; the engine refuses a closed session."""
        try:
            self._engine.send_stream_data(stream_id, data, end_stream)
        except (StreamClosedError, SessionError) as exc:
            closed = self.closed_error(f"stream {stream_id}: the session is closed")
            if closed is not None:
                raise closed from exc
            if isinstance(exc, StreamClosedError):
                raise
            raise StreamClosedError(str(exc)) from exc
        self._flush()

    def stream_consume(self, stream_id: StreamId, amount: int) -> None:
        """Internal (SessionPort): the application read ``amount`` bytes; return the credit."""
        connection = self._connection_ref()
        if connection is not None and not connection.is_closed:
            self._engine.consume_stream_data(stream_id, amount)
            connection.schedule_flush()

    def stream_reset(self, stream_id: StreamId, error_code: int) -> None:
        """Internal (SessionPort): RESET_STREAM."""
        connection = self._connection_ref()
        if connection is not None and not connection.is_closed:
            self._engine.reset_stream(stream_id, error_code)
            connection.process_engine_events()

    def stream_stop(self, stream_id: StreamId, error_code: int) -> None:
        """Internal (SessionPort): STOP_SENDING."""
        connection = self._connection_ref()
        if connection is not None and not connection.is_closed:
            self._engine.stop_stream(stream_id, error_code)
            connection.process_engine_events()

    def stream_buffered(self, stream_id: StreamId) -> int:
        """Internal (SessionPort): bytes written on the stream and not yet acknowledged."""
        connection = self._connection_ref()
        if connection is None or connection.is_closed:
            return 0
        return self._engine.stream_send_buffered(stream_id)

    def stream_watch_writable(self, stream_id: StreamId, low_water: int) -> bool:
        """Internal (SessionPort): have the engine announce StreamWritable for this stream
        (also when another connection of the server frees shared send budget: the engine
        then calls the wake-up, which delivers its events on the next loop turn). False when
        the connection is closed and nothing will be announced."""
        connection = self._connection_ref()
        if connection is None or connection.is_closed:
            return False
        self._engine.watch_writable(stream_id, low_water, wakeup=self._wake_connection)
        connection.process_engine_events()
        return True

    def send_room(self) -> int:
        """Internal (SessionPort): bytes writers may still queue on this connection."""
        connection = self._connection_ref()
        if connection is None or connection.is_closed:
            return 0
        return self._engine.send_buffer_room()

    def stream_finished(self, stream_id: StreamId) -> None:
        """Internal (SessionPort): both directions of the stream are done."""
        if self._streams.pop(stream_id, None) is not None and self.has_listeners(_STREAM_CLOSED):
            self._events.emit_nowait(_STREAM_CLOSED, {"stream_id": stream_id})

    def stream_failed(self, stream_id: StreamId) -> None:
        """Internal (SessionPort): the peer's reset cut a stream's reading short; a reset
        answering our own STOP_SENDING is no error and never reported."""
        self._stream_errors += 1
