"""EventEmitter: ordering, once/off, async handlers, failures isolated, wait_for."""

from __future__ import annotations

import asyncio
import builtins
import logging

import pytest

from pywebtransport.events import Event, EventEmitter, EventType
from pywebtransport.exceptions import TimeoutError


async def test_sync_handlers_run_in_registration_order_with_the_event() -> None:
    emitter = EventEmitter()
    seen: list[tuple[str, object]] = []
    emitter.on(EventType.SESSION_READY, lambda e: seen.append(("a", e.data)))
    emitter.on("session.ready", lambda e: seen.append(("b", e.data)))  # the string name is the same event
    event = emitter.emit_nowait(EventType.SESSION_READY, {"id": 1})
    assert seen == [("a", {"id": 1}), ("b", {"id": 1})]
    assert isinstance(event, Event) and event.type is EventType.SESSION_READY and event.timestamp > 0


async def test_once_off_and_on_any() -> None:
    emitter = EventEmitter()
    seen: list[str] = []

    def keep(_: Event) -> None:
        seen.append("keep")

    emitter.once(EventType.STREAM_OPENED, lambda _e: seen.append("once"))
    emitter.on(EventType.STREAM_OPENED, keep)
    emitter.on_any(lambda e: seen.append(f"any:{e.type}"))
    emitter.emit_nowait(EventType.STREAM_OPENED)
    emitter.emit_nowait(EventType.STREAM_OPENED)
    assert seen.count("once") == 1 and seen.count("keep") == 2
    emitter.off(EventType.STREAM_OPENED, keep)
    seen.clear()
    emitter.emit_nowait(EventType.STREAM_OPENED)
    assert seen == [f"any:{EventType.STREAM_OPENED}"]
    assert emitter.listener_count(EventType.STREAM_OPENED) == 1  # only on_any remains
    emitter.off(EventType.SESSION_CLOSED)  # removing what was never added is fine


async def test_a_failing_handler_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter()
    seen: list[str] = []

    def broken(_: Event) -> None:
        raise RuntimeError("handler bug")

    emitter.on(EventType.SESSION_CLOSED, broken)
    emitter.on(EventType.SESSION_CLOSED, lambda _e: seen.append("ok"))
    with caplog.at_level(logging.ERROR, logger="pywebtransport.events"):
        emitter.emit_nowait(EventType.SESSION_CLOSED)
    assert seen == ["ok"]
    assert "handler bug" in caplog.text


async def test_async_handlers_run_as_tasks_and_emit_awaits_them() -> None:
    emitter = EventEmitter()
    release = asyncio.Event()
    started = {"scheduled": asyncio.Event(), "awaited": asyncio.Event()}
    finished = {"scheduled": asyncio.Event(), "awaited": asyncio.Event()}

    async def slow(event: Event) -> None:
        started[event.data].set()
        await release.wait()  # held until the test lets it go
        finished[event.data].set()

    emitter.on(EventType.DATAGRAM_RECEIVED, slow)
    emitter.emit_nowait(EventType.DATAGRAM_RECEIVED, "scheduled")
    assert not started["scheduled"].is_set()  # scheduled as a task, not run inline
    emitting = asyncio.ensure_future(emitter.emit(EventType.DATAGRAM_RECEIVED, "awaited"))
    await asyncio.wait_for(started["scheduled"].wait(), 1)
    await asyncio.wait_for(started["awaited"].wait(), 1)
    assert not emitting.done()  # emit() waits for its handler, which is held
    release.set()
    await asyncio.wait_for(emitting, 1)
    assert finished["awaited"].is_set()  # emit() returned only after its handler finished
    await asyncio.wait_for(finished["scheduled"].wait(), 1)


class _FailureLog(logging.Handler):
    """Counts logged errors that carry ``text`` in their exception; an event at ``wanted``."""

    def __init__(self, text: str, wanted: int) -> None:
        super().__init__(logging.ERROR)
        self.text, self.wanted, self.count = text, wanted, 0
        self.reached = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and self.text in str(record.exc_info[1]):
            self.count += 1
            if self.count >= self.wanted:
                self.reached.set()


async def test_failing_async_handler_does_not_break_emit(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter()

    async def broken(_: Event) -> None:
        raise ValueError("async bug")

    emitter.on("x", broken)
    failures = _FailureLog("async bug", wanted=2)
    events_logger = logging.getLogger("pywebtransport.events")
    events_logger.addHandler(failures)
    try:
        with caplog.at_level(logging.ERROR):
            await emitter.emit("x")
            emitter.emit_nowait("x")
            await asyncio.wait_for(failures.reached.wait(), 1)  # the scheduled task failed and was logged
    finally:
        events_logger.removeHandler(failures)
    assert caplog.text.count("async bug") >= 2


async def test_wait_for_returns_the_matching_event() -> None:
    emitter = EventEmitter()

    def emit_all() -> None:
        for value in (1, 2, 3, 4):
            emitter.emit_nowait("n", value)

    # Runs once wait_for below has registered its listener and is suspended.
    asyncio.get_running_loop().call_soon(emit_all)
    assert (await emitter.wait_for("n", timeout=1, condition=lambda e: e.data > 2)).data == 3
    assert emitter.listener_count("n") == 0  # the waiter removed itself


async def test_wait_for_times_out_with_a_builtin_compatible_timeout_error() -> None:
    emitter = EventEmitter()
    with pytest.raises(TimeoutError) as info:
        await emitter.wait_for("never", timeout=0.01)
    assert isinstance(info.value, builtins.TimeoutError)
    assert emitter.listener_count("never") == 0


async def test_cancelled_wait_for_leaves_no_listener() -> None:
    emitter = EventEmitter()
    listeners_while_waiting: list[int] = []

    def count_and_cancel() -> None:
        listeners_while_waiting.append(emitter.listener_count("e"))
        waiter.cancel()

    async def wait() -> None:
        # Scheduled from inside the task: it runs once wait_for has suspended the task.
        asyncio.get_running_loop().call_soon(count_and_cancel)
        await emitter.wait_for("e")

    waiter = asyncio.ensure_future(wait())
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert listeners_while_waiting == [1]
    assert emitter.listener_count("e") == 0


async def test_close_cancels_pending_async_handlers() -> None:
    emitter = EventEmitter()
    started = asyncio.Event()

    async def forever(_: Event) -> None:
        started.set()
        await asyncio.sleep(3600)  # never finishes by itself: close() must cancel it (the subject here)

    emitter.on("e", forever)
    emitter.emit_nowait("e")
    await started.wait()
    await emitter.close()
    assert not emitter._tasks and emitter.listener_count("e") == 0


class _Listener:
    def __init__(self) -> None:
        self.calls = 0

    def on_event(self, _event: Event) -> None:
        self.calls += 1


async def test_off_any_removes_a_bound_method_handler() -> None:
    emitter = EventEmitter()
    listener = _Listener()
    emitter.on_any(listener.on_event)
    emitter.off_any(listener.on_event)  # a new bound method object, equal to the one registered
    assert emitter.listener_count("x") == 0
    emitter.emit_nowait("x")
    assert listener.calls == 0


async def test_close_fails_a_pending_wait_for_instead_of_leaving_it_hanging() -> None:
    emitter = EventEmitter()
    closing: list[asyncio.Task[None]] = []

    async def wait() -> Event:
        # Scheduled from inside the task: close() starts once wait_for has suspended the task.
        asyncio.get_running_loop().call_soon(lambda: closing.append(asyncio.ensure_future(emitter.close())))
        return await emitter.wait_for("x")

    with pytest.raises(RuntimeError, match=r"closed while wait_for\('x'\) was pending"):
        await asyncio.wait_for(wait(), 5)  # the bound only stops a hang
    await closing[0]
    assert emitter.listener_count("x") == 0


async def test_a_closed_emitter_takes_no_handlers_and_calls_none() -> None:
    emitter = EventEmitter()
    await emitter.close()
    seen: list[str] = []
    emitter.on("x", lambda _e: seen.append("on"))
    emitter.once("x", lambda _e: seen.append("once"))
    emitter.on_any(lambda _e: seen.append("any"))
    assert emitter.listener_count("x") == 0
    assert emitter.emit_nowait("x", 1).data == 1  # emitting still works for the library, reaching no one
    await emitter.emit("x")
    assert seen == []
    with pytest.raises(RuntimeError, match="closed"):
        await emitter.wait_for("x", timeout=5)
    await emitter.close()  # idempotent


async def test_close_during_emit_calls_no_later_handler() -> None:
    emitter = EventEmitter()
    seen: list[str] = []

    async def closes(_: Event) -> None:
        seen.append("first")
        await emitter.close()

    emitter.on("x", closes)
    emitter.on("x", lambda _e: seen.append("second"))
    await emitter.emit("x")
    assert seen == ["first"]
