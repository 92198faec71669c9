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
    done: list[str] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.01)
        done.append(event.data)

    emitter.on(EventType.DATAGRAM_RECEIVED, slow)
    emitter.emit_nowait(EventType.DATAGRAM_RECEIVED, "scheduled")
    assert done == []
    await emitter.emit(EventType.DATAGRAM_RECEIVED, "awaited")
    assert "awaited" in done
    await asyncio.sleep(0.05)
    assert "scheduled" in done


async def test_failing_async_handler_does_not_break_emit(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter()

    async def broken(_: Event) -> None:
        raise ValueError("async bug")

    emitter.on("x", broken)
    with caplog.at_level(logging.ERROR):
        await emitter.emit("x")
        emitter.emit_nowait("x")
        await asyncio.sleep(0.01)
    assert caplog.text.count("async bug") >= 2


async def test_wait_for_returns_the_matching_event() -> None:
    emitter = EventEmitter()
    waiter = asyncio.ensure_future(emitter.wait_for("n", timeout=1, condition=lambda e: e.data > 2))
    await asyncio.sleep(0)
    for value in (1, 2, 3, 4):
        emitter.emit_nowait("n", value)
    assert (await waiter).data == 3
    assert emitter.listener_count("n") == 0  # the waiter removed itself


async def test_wait_for_times_out_with_a_builtin_compatible_timeout_error() -> None:
    emitter = EventEmitter()
    with pytest.raises(TimeoutError) as info:
        await emitter.wait_for("never", timeout=0.01)
    assert isinstance(info.value, builtins.TimeoutError)
    assert emitter.listener_count("never") == 0


async def test_cancelled_wait_for_leaves_no_listener() -> None:
    emitter = EventEmitter()
    waiter = asyncio.ensure_future(emitter.wait_for("e"))
    await asyncio.sleep(0)
    assert emitter.listener_count("e") == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert emitter.listener_count("e") == 0


async def test_close_cancels_pending_async_handlers() -> None:
    emitter = EventEmitter()
    started = asyncio.Event()

    async def forever(_: Event) -> None:
        started.set()
        await asyncio.sleep(3600)

    emitter.on("e", forever)
    emitter.emit_nowait("e")
    await started.wait()
    await emitter.close()
    assert not emitter._tasks and emitter.listener_count("e") == 0
