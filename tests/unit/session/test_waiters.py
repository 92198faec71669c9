"""Latch and Waiters: every waiter wakes, a cancelled wait leaves nothing, nothing is made
until a task waits (pywebtransport/_waiters.py)."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport._waiters import Latch, Waiters, wait_for_any


async def test_latch_set_releases_every_waiting_task() -> None:
    latch = Latch()
    tasks = [asyncio.ensure_future(latch.wait()) for _ in range(3)]
    assert latch.waiting == 3 and not any(task.done() for task in tasks)
    latch.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert latch.is_set() and latch.waiting == 0


async def test_latch_wait_after_set_is_done_at_once() -> None:
    latch = Latch()
    latch.set()
    latch.set()  # idempotent
    assert latch.wait().done()


async def test_latch_makes_nothing_until_a_task_waits() -> None:
    latch = Latch()
    assert latch._futures is None
    waiter = latch.wait()
    assert latch._futures == [waiter]
    latch.set()
    assert latch._futures is None and waiter.done()


async def test_a_cancelled_latch_wait_leaves_the_others_waiting() -> None:
    latch = Latch()
    kept = asyncio.ensure_future(latch.wait())
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(latch.wait(), 0.01)
    assert latch.waiting == 1 and not kept.done()
    latch.set()
    await asyncio.wait_for(kept, 1)


async def test_latch_waits_that_time_out_do_not_pile_up() -> None:
    latch = Latch()
    for _ in range(200):
        waiter = latch.wait()
        waiter.cancel()  # what wait_for does on a timeout
    assert latch._futures is not None and len(latch._futures) <= 16
    assert latch.waiting == 0


async def test_waiters_wake_releases_the_tasks_waiting_then() -> None:
    waiters = Waiters()
    loop = asyncio.get_running_loop()
    started = [loop.create_future() for _ in range(2)]

    async def wait_after(flag: asyncio.Future[None]) -> None:
        flag.set_result(None)  # then, in the same step, it registers its wait
        await waiters.wait()

    tasks = [asyncio.ensure_future(wait_after(flag)) for flag in started]
    await asyncio.wait_for(asyncio.gather(*started), 1)  # both tasks are inside wait() now
    assert len(waiters) == 2
    waiters.wake()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert len(waiters) == 0 and waiters._futures is None


async def test_a_cancelled_untimed_wait_leaves_the_other_waiter_to_be_woken() -> None:
    waiters = Waiters()
    loop = asyncio.get_running_loop()
    started = [loop.create_future() for _ in range(2)]

    async def wait_after(flag: asyncio.Future[None]) -> None:
        flag.set_result(None)
        await waiters.wait()  # no timeout: the future itself is awaited

    cancelled, kept = (asyncio.ensure_future(wait_after(flag)) for flag in started)
    await asyncio.wait_for(asyncio.gather(*started), 1)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert len(waiters) == 1  # the cancelled wait took its future away with it
    waiters.wake()
    await asyncio.wait_for(kept, 1)
    assert waiters._futures is None


async def test_waiters_make_nothing_until_a_task_waits_and_clean_up_after_a_timeout() -> None:
    waiters = Waiters()
    waiters.wake()  # nobody waits: nothing happens, nothing is made
    assert waiters._futures is None and len(waiters) == 0
    with pytest.raises(asyncio.TimeoutError):
        await waiters.wait(0.01)
    assert waiters._futures is None


async def test_one_future_given_to_two_latches_is_done_by_the_first_set() -> None:
    first, second = Latch(), Latch()
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    first.add_waiter(waiter)
    second.add_waiter(waiter)
    assert first.waiting == second.waiting == 1
    second.set()
    assert waiter.done() and waiter.result() is None
    first.set()  # the future is done already: nothing to settle, no error
    assert first._futures is None and second._futures is None


async def test_add_waiter_on_a_set_latch_settles_at_once_unless_done() -> None:
    latch = Latch()
    latch.set()
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    latch.add_waiter(waiter)
    assert waiter.done() and latch._futures is None
    cancelled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cancelled.cancel()
    latch.add_waiter(cancelled)  # no InvalidStateError
    assert cancelled.cancelled()


async def test_remove_waiter_forgets_the_future_and_nothing_else() -> None:
    latch = Latch()
    loop = asyncio.get_running_loop()
    kept: asyncio.Future[None] = loop.create_future()
    gone: asyncio.Future[None] = loop.create_future()
    latch.add_waiter(kept)
    latch.add_waiter(gone)
    latch.remove_waiter(gone)
    latch.remove_waiter(gone)  # unknown now: no-op
    assert latch._futures == [kept]
    latch.remove_waiter(kept)
    assert latch._futures is None  # nothing held once nobody waits
    latch.set()
    assert not kept.done() and not gone.done()


async def test_wait_for_any_returns_when_the_first_latch_is_set_and_leaves_nothing_behind() -> None:
    first, second = Latch(), Latch()
    loop = asyncio.get_running_loop()
    entered = loop.create_future()

    async def wait() -> bool:
        entered.set_result(None)  # the same step then enters wait_for_any
        return await wait_for_any((first, second), 5.0)

    task = asyncio.ensure_future(wait())
    await asyncio.wait_for(entered, 1)
    assert (first.waiting, second.waiting) == (1, 1)
    second.set()
    assert await asyncio.wait_for(task, 1) is True
    assert (first._futures, second._futures) == (None, None)


async def test_wait_for_any_times_out_and_a_cancelled_wait_leaves_nothing_behind() -> None:
    latch = Latch()
    assert await wait_for_any((latch,), 0.0) is False
    assert latch._futures is None
    entered = asyncio.get_running_loop().create_future()

    async def wait() -> bool:
        entered.set_result(None)
        return await wait_for_any((latch,), None)

    task = asyncio.ensure_future(wait())
    await asyncio.wait_for(entered, 1)
    assert latch.waiting == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert latch._futures is None
    latch.set()
    assert await wait_for_any((latch,), 0.0) is True  # set already: at once


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["untimed", "timed"])
async def test_a_woken_wait_resumes_on_the_next_loop_turn_with_or_without_a_timeout(timeout: float | None) -> None:
    # asyncio.wait_for(future, timeout) took one turn more on Python 3.10/3.11 (the future's
    # callback wakes wait_for's own waiter, whose callback wakes the task): every read, drain
    # or datagram receive given a timeout paid it.
    waiters = Waiters()
    task = asyncio.ensure_future(waiters.wait(timeout))
    await asyncio.sleep(0)  # one loop turn: the task's first step arms its future
    assert len(waiters) == 1 and not task.done()
    resumed: list[bool] = []
    waiters.wake()  # schedules the task's step for the next turn...
    asyncio.get_running_loop().call_soon(lambda: resumed.append(task.done()))  # ...and this after it
    await task
    assert resumed == [True]


async def test_a_timed_wait_times_out_and_a_zero_timeout_does_not_wait() -> None:
    waiters = Waiters()
    with pytest.raises(asyncio.TimeoutError):
        await waiters.wait(0.01)
    assert len(waiters) == 0
    task = asyncio.ensure_future(waiters.wait(0))
    with pytest.raises(asyncio.TimeoutError):
        await task
    assert len(waiters) == 0
