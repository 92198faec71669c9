"""Typed events and the emitter that sessions and connections use to report them.

Handlers may be plain functions or coroutines. A handler that raises is logged and never
breaks the library or the other handlers; async handlers run as tracked, named tasks that
``close()`` cancels. A closed emitter is inert: it takes no handlers and calls none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pywebtransport._waiters import wait_future
from pywebtransport.exceptions import TimeoutError

__all__ = ["Event", "EventEmitter", "EventHandler", "EventType"]

logger = logging.getLogger(__name__)


class EventType(str, Enum):
    """Everything the library reports, as dotted lower-case names."""

    CONNECTION_ESTABLISHED = "connection.established"
    CONNECTION_LOST = "connection.lost"
    CONNECTION_CLOSED = "connection.closed"
    CONNECTION_FAILED = "connection.failed"
    SESSION_REQUEST = "session.request"
    SESSION_READY = "session.ready"
    SESSION_DRAINING = "session.draining"
    SESSION_CLOSED = "session.closed"
    SESSION_MAX_DATA_UPDATED = "session.max_data_updated"
    SESSION_MAX_STREAMS_BIDI_UPDATED = "session.max_streams_bidi_updated"
    SESSION_MAX_STREAMS_UNI_UPDATED = "session.max_streams_uni_updated"
    SESSION_DATA_BLOCKED = "session.data_blocked"
    SESSION_STREAMS_BLOCKED = "session.streams_blocked"
    STREAM_OPENED = "stream.opened"
    STREAM_CLOSED = "stream.closed"
    STREAM_DATA_RECEIVED = "stream.data_received"
    STREAM_ERROR = "stream.error"
    DATAGRAM_RECEIVED = "datagram.received"
    DATAGRAM_SENT = "datagram.sent"
    DATAGRAM_ERROR = "datagram.error"
    PROTOCOL_ERROR = "protocol.error"
    TIMEOUT_ERROR = "timeout.error"


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence: its type, a payload (usually a dict) and when it happened."""

    type: EventType | str
    data: Any = None
    source: Any = None
    timestamp: float = field(default_factory=time.time)


EventHandler = Callable[[Event], "Awaitable[None] | None"]


def _key(event_type: EventType | str) -> str:
    # An EventType member is a str holding its value: str.__str__ gives that plain str without
    # Enum's value descriptor, and a plain str hashes in C (Enum.__hash__ is Python). Per datagram.
    return str.__str__(event_type) if isinstance(event_type, str) else str(event_type)


class EventEmitter:
    """Register handlers per event type and emit events to them.

    After ``close()`` the emitter does nothing: registering a handler is ignored, emitting
    calls no handler (the library may still emit into a closed ``session.events``), and
    ``wait_for()`` raises RuntimeError, as does a ``wait_for()`` still pending at the close.
    """

    __slots__ = ("_any", "_closed", "_handlers", "_max_listeners", "_tasks", "_waiters")

    def __init__(self, *, max_listeners: int = 100) -> None:
        self._handlers: dict[str, list[tuple[EventHandler, bool]]] = {}
        self._any: list[EventHandler] = []
        #: Running async handlers; made by the first one (most emitters never run any).
        self._tasks: set[asyncio.Task[None]] | None = None
        #: Pending wait_for() futures and their event type, failed by close().
        self._waiters: dict[asyncio.Future[Event], str] | None = None
        self._max_listeners = max_listeners
        self._closed = False

    # -- registration
    def on(self, event_type: EventType | str, handler: EventHandler) -> None:
        """Call ``handler(event)`` for every event of this type."""
        self._add(event_type, handler, once=False)

    def once(self, event_type: EventType | str, handler: EventHandler) -> None:
        """Call ``handler(event)`` for the next event of this type only."""
        self._add(event_type, handler, once=True)

    def _add(self, event_type: EventType | str, handler: EventHandler, *, once: bool) -> None:
        if self._closed:
            return
        handlers = self._handlers.setdefault(_key(event_type), [])
        handlers.append((handler, once))
        if len(handlers) > self._max_listeners:
            logger.warning("%d listeners for %s: a leak?", len(handlers), _key(event_type))

    def off(self, event_type: EventType | str, handler: EventHandler | None = None) -> None:
        """Remove ``handler`` (every handler of the type when None)."""
        key = _key(event_type)
        if handler is None:
            self._handlers.pop(key, None)
            return
        handlers = self._handlers.get(key, [])
        self._handlers[key] = [(h, once) for h, once in handlers if h is not handler and h != handler]

    def on_any(self, handler: EventHandler) -> None:
        """Call ``handler`` for every event of every type."""
        if not self._closed:
            self._any.append(handler)

    def off_any(self, handler: EventHandler) -> None:
        """Remove ``handler`` from the handlers of every event (an equal bound method too, as ``off()``)."""
        self._any = [h for h in self._any if h is not handler and h != handler]

    def listener_count(self, event_type: EventType | str) -> int:
        # _key inlined: asked per datagram and per stream.
        handlers = self._handlers.get(str.__str__(event_type) if isinstance(event_type, str) else str(event_type))
        return (len(handlers) if handlers else 0) + len(self._any)

    # -- emission
    def emit_nowait(self, event_type: EventType | str, data: Any = None, *, source: Any = None) -> Event:
        """Emit now: sync handlers run at once, async ones are scheduled as tracked tasks."""
        event = Event(type=event_type, data=data, source=source)
        for handler in self._take(event_type):
            self._call(handler, event, schedule=True)
        return event

    async def emit(self, event_type: EventType | str, data: Any = None, *, source: Any = None) -> Event:
        """Emit and wait for async handlers to finish.

        Handlers run one after the other, in registration order: each is called only when
        the one before it (awaited, if async) is done. Cancelling ``emit()`` stops it there,
        as cancellation does in asyncio: the running handler is cancelled and the handlers
        after it are not called at all (no coroutine of theirs is made, so none is leaked);
        ``once()`` handlers count as used by this emit all the same.
        """
        event = Event(type=event_type, data=data, source=source)
        for handler in self._take(event_type):
            if self._closed:  # close() ran while an earlier handler was awaited
                break
            awaitable = self._call(handler, event, schedule=False)
            if awaitable is not None:
                try:
                    await awaitable
                except Exception:
                    logger.exception("event handler for %s failed", _key(event_type))
        return event

    def _take(self, event_type: EventType | str) -> list[EventHandler]:
        key = _key(event_type)
        handlers = self._handlers.get(key)
        chosen = [h for h, _ in handlers] if handlers else []
        if handlers and any(once for _, once in handlers):
            self._handlers[key] = [(h, once) for h, once in handlers if not once]
        return chosen + list(self._any)

    def _call(self, handler: EventHandler, event: Event, *, schedule: bool) -> Awaitable[None] | None:
        try:
            result = handler(event)
        except Exception:
            logger.exception("event handler for %s failed", _key(event.type))
            return None
        if result is None or not asyncio.iscoroutine(result):
            return None
        if not schedule:
            return result
        task: asyncio.Task[None] = asyncio.ensure_future(result)
        task.set_name(f"pywebtransport-event-{_key(event.type)}")
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return None

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("async event handler %s failed", task.get_name(), exc_info=task.exception())

    # -- waiting
    async def wait_for(self, event_type: EventType | str, *, timeout: float | None = None,
                       condition: Callable[[Event], bool] | None = None) -> Event:
        """The next event of this type (that satisfies ``condition``); TimeoutError on expiry,
        RuntimeError if the emitter is closed (now or before the event comes)."""
        if self._closed:
            raise RuntimeError(f"this EventEmitter is closed: no {_key(event_type)} event will come")
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

        def waiter(event: Event) -> None:
            if future.done():
                return
            try:
                if condition is None or condition(event):
                    future.set_result(event)
            except Exception as exc:  # a failing condition fails the wait, not the emitter
                future.set_exception(exc)

        self.on(event_type, waiter)
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = {}
        waiters[future] = _key(event_type)
        try:
            return await wait_future(future, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no {_key(event_type)} event within {timeout}s") from None
        finally:
            waiters.pop(future, None)  # close() may have taken the dict already: then this is a no-op
            self.off(event_type, waiter)

    async def close(self) -> None:
        """Drop every registration, fail pending ``wait_for()`` calls with RuntimeError and
        cancel running async handlers; idempotent. The emitter is inert afterwards."""
        self._closed = True
        self._handlers.clear()
        self._any.clear()
        waiters, self._waiters = self._waiters or {}, None
        for future, key in waiters.items():
            if not future.done():
                future.set_exception(RuntimeError(f"the EventEmitter was closed while wait_for({key!r}) was pending"))
        tasks = list(self._tasks or ())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
