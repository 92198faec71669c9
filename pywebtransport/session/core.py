"""What every part of a session reads: its identity, the engine's view of it, how it closed.

``SessionCore`` holds the state of a :class:`~pywebtransport.session.WebTransportSession`
and the checks its operations share; the other parts (``lifecycle``, ``streams``,
``datagrams``, ``health``, ``tls``) are mixins over it, put together in ``session.py``.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pywebtransport._protocol.snapshot import SessionSnapshot
from pywebtransport._waiters import Latch, Waiters
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.datagram import WebTransportDatagramTransport
from pywebtransport.events import EventEmitter, EventType
from pywebtransport.exceptions import SessionClosedError, SessionError
from pywebtransport.session.stats import SessionStats
from pywebtransport.stream import StreamType
from pywebtransport.types import CloseCause, Headers, SessionId, SessionState, StreamId

if TYPE_CHECKING:
    from pywebtransport._protocol import events as ev
    from pywebtransport.connection import WebTransportConnection
    from pywebtransport.protocol import WebTransportProtocolHandler
    from pywebtransport.session.session import WebTransportSession

__all__ = ["SessionCore", "session_closed_error"]

#: States as module globals (``is_closed`` runs per datagram sent, ``_require_open`` per stream
#: opened): ``SessionState.X`` costs about 100 ns a read on Python 3.10 and 3.11 (``EnumType.__getattr__``).
_CLOSED = SessionState.CLOSED
_CONNECTING = SessionState.CONNECTING

_CLEAN_CAUSES = frozenset({CloseCause.PEER_CLOSE, CloseCause.LOCAL_CLOSE})


def session_closed_error(message: str, *, error_code: int | None, reason: str,
                         cause: CloseCause | None) -> SessionClosedError:
    """A SessionClosedError carrying the session's close code, reason and ``cause``."""
    return SessionClosedError(message, error_code=error_code, reason=reason, cause=cause)


class SessionCore:
    """The state of one session and what its parts share (internal; see WebTransportSession)."""

    def __init__(self, *, connection: WebTransportConnection, session_id: SessionId, path: str,
                 headers: Headers, control_stream_id: StreamId | None) -> None:
        # Sessions are many and mostly idle: everything a session may never use (the event
        # emitter, the queues of incoming streams, credit waiters, statistics, the datagram
        # transport, the engine wake-up) is made on first use, and waiting costs nothing until
        # a task waits (see _waiters.py).
        self._connection_ref: weakref.ref[WebTransportConnection] = weakref.ref(connection)
        self._engine: WebTransportProtocolHandler = connection.protocol_handler
        self._config = connection.config
        self._is_client = isinstance(connection.config, ClientConfig)
        self._loop = asyncio.get_running_loop()
        self._session_id = session_id
        self._selected_protocol: str | None = None
        self._path = path
        # Kept, not copied: the connection hands over a dict made for this session, and
        # ``headers`` returns copies.
        self._headers = headers
        self._control_stream_id = session_id if control_stream_id is None else control_stream_id
        self._emitter: EventEmitter | None = None
        self._streams: dict[StreamId, StreamType] = {}
        self._incoming_queues: tuple[StreamQueue, StreamQueue] | None = None
        self._arrivals = 0
        self._incoming_waiters = Waiters()
        self._ready_event = Latch()
        self._closed_event = Latch()
        self._credit_waiter_lists: tuple[list[asyncio.Future[None]], list[asyncio.Future[None]]] | None = None
        self._datagrams: WebTransportDatagramTransport | None = None
        self._error: BaseException | None = None
        # Set once, when the session's end was handled: the last snapshot and close info.
        self._final: SessionSnapshot | None = None
        self._close_info: tuple[int, str, CloseCause] | None = None
        self._response_headers: Headers | None = None
        self._stream_errors = 0
        self._protocol_errors = 0
        self._created_at = time.time()
        self._wall_anchor = self._created_at - time.monotonic()  # engine clock -> wall clock, for display
        self._stats_record: SessionStats | None = None
        self._waker: Callable[[], None] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def connection(self) -> WebTransportConnection | None:
        """The parent connection (weakly referenced: None once it is gone)."""
        return self._connection_ref()

    @property
    def config(self) -> ClientConfig | ServerConfig:
        """The configuration of the connection this session runs on."""
        return self._config

    @property
    def events(self) -> EventEmitter:
        """The session's event emitter (made on first use: nobody listens to most sessions)."""
        return self._events

    @property
    def _events(self) -> EventEmitter:
        emitter = self._emitter
        if emitter is None:
            emitter = self._emitter = EventEmitter()
        return emitter

    def _emit(self, event_type: EventType, data: dict[str, Any]) -> None:
        """Emit ``event_type`` if anyone ever registered with the session's emitter."""
        if self._emitter is not None:
            self._emitter.emit_nowait(event_type, data)

    def has_listeners(self, event_type: EventType) -> bool:
        """Internal (SessionPort): whether a handler listens for ``event_type`` (checked
        before building an event per stream or datagram; makes no emitter)."""
        emitter = self._emitter
        return emitter is not None and emitter.listener_count(event_type) > 0

    @property
    def headers(self) -> Headers:
        """A copy of the headers of the CONNECT request that opened the session."""
        return dict(self._headers)

    @property
    def response_headers(self) -> Headers:
        """A copy of the headers of the response that accepted the session ({} before)."""
        return dict(self._response_headers) if self._response_headers is not None else {}

    @property
    def path(self) -> str:
        return self._path

    @property
    def session_id(self) -> SessionId:
        return self._session_id

    @property
    def state(self) -> SessionState:
        """The engine's state of the session: it changes the moment the engine processed a
        close, before any event about it is delivered."""
        if self._final is not None:
            return self._final.state
        # The engine forgot a closed session; it knew it when this object was made.
        return self._engine.session_state(self._session_id) or SessionState.CLOSED

    @property
    def is_ready(self) -> bool:
        return self.state in (SessionState.CONNECTED, SessionState.DRAINING)

    @property
    def is_closed(self) -> bool:
        return self.state is _CLOSED

    @property
    def close_code(self) -> int | None:
        info = self._closing_info()
        return info[0] if info is not None else None

    @property
    def close_reason(self) -> str | None:
        info = self._closing_info()
        return info[1] if info is not None else None

    @property
    def close_cause(self) -> CloseCause | None:
        """Why the session ended (None while it is open); set before SESSION_CLOSED is emitted."""
        info = self._closing_info()
        return info[2] if info is not None else None

    @property
    def protocol_handler(self) -> WebTransportProtocolHandler | None:
        """The sans-I/O engine under this session (None once the connection is gone)."""
        connection = self.connection
        return connection.protocol_handler if connection is not None else None

    # ------------------------------------------------------------------ parts made on first use

    @property
    def _incoming(self) -> tuple[StreamQueue, StreamQueue]:
        """Streams the peer opened, not yet accepted, with their arrival number so that
        ``incoming_streams()`` yields them in order: ``[False]`` bidirectional, ``[True]``
        unidirectional."""
        queues = self._incoming_queues
        if queues is None:
            queues = self._incoming_queues = (StreamQueue(), StreamQueue())
        return queues

    def _incoming_count(self) -> int:
        """Streams waiting to be accepted (makes no queue)."""
        queues = self._incoming_queues
        return 0 if queues is None else len(queues[False]) + len(queues[True])

    @property
    def _credit_waiters(self) -> tuple[list[asyncio.Future[None]], list[asyncio.Future[None]]]:
        """Tasks waiting for stream credit: ``[False]`` bidirectional, ``[True]`` unidirectional."""
        lists = self._credit_waiter_lists
        if lists is None:
            lists = self._credit_waiter_lists = ([], [])
        return lists

    def _wake_credit_waiters(self, is_unidirectional: bool | None) -> None:
        """Release the tasks waiting for credit of one kind (None: both kinds)."""
        lists = self._credit_waiter_lists
        if lists is None:
            return
        for kind in ((False, True) if is_unidirectional is None else (is_unidirectional,)):
            for waiter in lists[kind]:
                if not waiter.done():
                    waiter.set_result(None)

    @property
    def _wake_connection(self) -> Callable[[], None]:
        """The engine wake-up of this session's connection (see ``watch_writable``)."""
        waker = self._waker
        if waker is None:
            waker = self._waker = _connection_waker(self._loop, self._connection_ref)
        return waker

    # ------------------------------------------------------------------ the engine's view

    def _snapshot(self) -> SessionSnapshot | None:
        """The engine's view of the session now, or the last one once the session ended."""
        if self._final is not None:
            return self._final
        return self._engine.session_snapshot(self._session_id)

    def _wall(self, monotonic: float | None) -> float | None:
        """An engine (monotonic) time as a wall-clock timestamp, for display only."""
        return None if monotonic is None else self._wall_anchor + monotonic

    # ------------------------------------------------------------------ close info

    def _closing_info(self) -> tuple[int, str, CloseCause] | None:
        if self._close_info is not None:
            return self._close_info
        snapshot = self._snapshot()
        if snapshot is None or snapshot.state is not SessionState.CLOSED:
            return None
        return (snapshot.close_code or 0, snapshot.close_reason or "",
                snapshot.close_cause or CloseCause.CONNECTION_CLOSED)

    def closed_error(self, message: str) -> SessionClosedError | None:
        """Internal (SessionPort): the error naming this session's close; None while open."""
        info = self._closing_info()
        if info is None:
            return None
        code, reason, cause = info
        detail = f" (code {code}, {cause.value}{': ' + reason if reason else ''})"
        return session_closed_error(message + detail, error_code=code, reason=reason, cause=cause)

    def _closed_error_or_generic(self, message: str) -> SessionClosedError:
        return self.closed_error(message) or session_closed_error(message, error_code=None, reason="", cause=None)

    def ended_cleanly(self) -> bool:
        """Internal (SessionPort): closed with code 0 by either side, so iterators end quietly."""
        info = self._closing_info()
        return info is not None and info[0] == 0 and info[2] in _CLEAN_CAUSES

    # ------------------------------------------------------------------ checks the operations share

    def _require_connection(self) -> WebTransportConnection:
        connection = self.connection
        if connection is None or connection.is_closed:
            raise self._closed_error_or_generic(f"session {self._session_id}: the connection is closed")
        return connection

    def _require_open(self) -> WebTransportConnection:
        state = self.state
        if state is _CONNECTING:
            raise SessionError(f"session {self._session_id} is not ready yet; await session.ready()")
        if state is _CLOSED:
            raise self._closed_error_or_generic(f"session {self._session_id} is closed")
        return self._require_connection()

    def _flush(self) -> None:
        connection = self._connection_ref()
        if connection is not None:
            connection.process_engine_events()

    def _as_session(self) -> WebTransportSession:
        """This object as the WebTransportSession it is a part of (streams and the datagram
        transport are handed the whole session). Not ``typing.cast``: that is a Python call
        of its own, and every stream opened or accepted passes here."""
        return self  # type: ignore[return-value]

    if TYPE_CHECKING:
        # Provided by other parts of WebTransportSession (session.py, health.py).
        def handle_event(self, event: ev.EngineEvent) -> None: ...

        @property
        def stats(self) -> SessionStats: ...


class StreamQueue:
    """A FIFO of (arrival number, stream): as much of ``collections.deque`` as the incoming
    stream queues use, at a tenth of its size when empty (a deque starts with a 64-slot block)."""

    __slots__ = ("_head", "_items")

    def __init__(self) -> None:
        self._items: list[tuple[int, StreamType] | None] = []
        self._head = 0  # index of the oldest item; the slots before it are None

    def append(self, item: tuple[int, StreamType]) -> None:
        self._items.append(item)

    def popleft(self) -> tuple[int, StreamType]:
        """Remove and return the oldest item; IndexError when empty."""
        items, head = self._items, self._head
        if head >= len(items):
            raise IndexError("pop from an empty StreamQueue")
        item = items[head]
        assert item is not None
        items[head] = None  # the queue keeps no accepted stream alive
        head += 1
        if head == len(items):
            items.clear()
            head = 0
        elif head >= 32 and 2 * head >= len(items):  # drop the consumed front: amortised O(1)
            del items[:head]
            head = 0
        self._head = head
        return item

    def __getitem__(self, index: int) -> tuple[int, StreamType]:
        if not 0 <= index < len(self._items) - self._head:
            raise IndexError("StreamQueue index out of range")
        item = self._items[self._head + index]
        assert item is not None
        return item

    def __len__(self) -> int:
        return len(self._items) - self._head

    def __bool__(self) -> bool:
        return len(self._items) > self._head


def _connection_waker(loop: asyncio.AbstractEventLoop,
                      connection_ref: weakref.ref[WebTransportConnection]) -> Callable[[], None]:
    """A wake-up for the engine (see ``watch_writable``): called from inside another
    connection's engine, it delivers this connection's events on the next loop turn. It holds
    neither the session nor the connection, so the engine keeping it keeps nothing alive."""

    def wake() -> None:
        connection = connection_ref()
        if connection is not None and not connection.is_closed:
            loop.call_soon(connection.process_engine_events)

    return wake
