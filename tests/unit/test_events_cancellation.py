"""EventEmitter.emit() cancelled: it stops where it is, and no handler coroutine is leaked.

Handlers run one after the other, each called only when the one before it is done; a
cancelled emit() cancels the handler it waits for and calls none of the later ones, so no
coroutine is made that nobody awaits ("coroutine ... was never awaited").
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings
from collections.abc import Coroutine
from typing import Any

from pywebtransport.events import Event, EventEmitter


async def test_cancelled_emit_makes_no_coroutine_for_the_later_handlers() -> None:
    emitter = EventEmitter()
    started = asyncio.Event()
    cancelled: list[str] = []
    made: list[Coroutine[Any, Any, None]] = []

    async def slow(_: Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set: only the cancellation ends it
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    async def body() -> None:
        pass

    def later(_: Event) -> Coroutine[Any, Any, None]:
        coroutine = body()
        made.append(coroutine)
        return coroutine

    emitter.on("x", slow)
    emitter.on("x", later)
    emitter.on_any(later)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emitting = asyncio.ensure_future(emitter.emit("x"))
        await asyncio.wait_for(started.wait(), 1)
        emitting.cancel()
        await asyncio.gather(emitting, return_exceptions=True)
        assert emitting.cancelled() and cancelled == ["slow"]
        never_run = [c for c in made if inspect.getcoroutinestate(c) == inspect.CORO_CREATED]
        for coroutine in never_run:
            coroutine.close()  # so that a failure here reports once, not as warnings too
        gc.collect()
    assert never_run == [] and made == []
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


async def test_handlers_are_called_one_after_the_other_in_order() -> None:
    emitter = EventEmitter()
    order: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def first(_: Event) -> None:
        order.append("first:start")
        started.set()
        await release.wait()
        order.append("first:end")

    def second(_: Event) -> None:
        order.append("second")

    emitter.on("x", first)
    emitter.on("x", second)
    emitting = asyncio.ensure_future(emitter.emit("x"))
    await asyncio.wait_for(started.wait(), 1)
    assert order == ["first:start"]  # the next handler waits for this one to finish
    release.set()
    await asyncio.wait_for(emitting, 1)
    assert order == ["first:start", "first:end", "second"]
