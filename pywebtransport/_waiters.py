"""Waiting primitives that cost nothing until a task waits.

Every session holds a few of these. ``asyncio.Event`` allocates a waiter deque (over 600
bytes) per object whether or not anyone ever waits; these allocate only while a task waits.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

__all__ = ["Latch", "Waiters", "wait_for_any", "wait_future"]

_T = TypeVar("_T")


class Waiters:
    """Tasks call ``wait()``; ``wake()`` releases every task waiting at that moment.

    The set of waiting futures exists only while some task waits.
    """

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: set[asyncio.Future[None]] | None = None

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until the next ``wake()``; asyncio.TimeoutError after ``timeout`` seconds."""
        future = self.arm()
        try:
            await wait_future(future, timeout)
        finally:
            self.disarm(future)

    def arm(self) -> asyncio.Future[None]:
        """A future the next ``wake()`` completes, registered now: for a waiter that must be
        in place before it calls whatever may wake it at once. ``disarm`` it when done."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._futures is None:
            self._futures = set()
        self._futures.add(future)
        return future

    def wake(self) -> None:
        if self._futures:
            for future in self._futures:
                if not future.done():
                    future.set_result(None)

    def disarm(self, future: asyncio.Future[None]) -> None:
        """Forget a future from ``arm()`` (done or not)."""
        futures = self._futures
        if futures is not None:
            futures.discard(future)
            if not futures:
                self._futures = None

    def __len__(self) -> int:
        return len(self._futures) if self._futures is not None else 0


class Latch:
    """A flag set once that tasks can wait for: ``asyncio.Event`` without ``clear()``.

    ``set()`` releases every waiting task, and every later ``wait()`` is done at once.
    ``wait()`` hands out a plain future, not a coroutine: an idle session's waiters (a
    handler in ``wait_closed()``) cost a future each and no coroutine frame.
    """

    __slots__ = ("_futures", "_is_set")

    def __init__(self) -> None:
        self._is_set = False
        # A list: usually one task waits (a set costs four times a one-item list). Futures
        # whose waiter gave up (cancelled) are pruned as the list grows, see wait().
        self._futures: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        """Set the latch and release every waiting task (idempotent)."""
        if self._is_set:
            return
        self._is_set = True
        futures, self._futures = self._futures, None
        if futures:
            for future in futures:
                if not future.done():
                    future.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        """A future done once the latch is set (done already if it is). Awaiting it may be
        cancelled (``asyncio.wait_for``, a cancelled task): that affects no other waiter."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.add_waiter(future)
        return future

    def add_waiter(self, future: asyncio.Future[None]) -> None:
        """Settle ``future`` (result None, unless it is done by then) when the latch is set, at
        once if it is. One future given to several latches is done when the first is set: a
        task waits for whichever comes first with no task or future per latch."""
        if self._is_set:
            if not future.done():
                future.set_result(None)
            return
        futures = self._futures
        if futures is None:
            futures = self._futures = []
        elif len(futures) >= 8 and not len(futures) & (len(futures) - 1):
            # At each power of two, drop the futures of waits that were cancelled: the list
            # stays within twice the tasks waiting, however often waits time out.
            futures[:] = [f for f in futures if not f.done()]
        futures.append(future)

    def remove_waiter(self, future: asyncio.Future[None]) -> None:
        """Forget a future given to ``add_waiter`` (its task stopped waiting; no-op if unknown)."""
        futures = self._futures
        if futures is not None and future in futures:
            futures.remove(future)
            if not futures:
                self._futures = None

    @property
    def waiting(self) -> int:
        """Tasks waiting now."""
        return sum(not f.done() for f in self._futures) if self._futures is not None else 0


async def wait_future(future: asyncio.Future[_T], timeout: float | None) -> _T:
    """Await ``future`` and return its result, at most ``timeout`` seconds (asyncio.TimeoutError
    after, which is then also ``future``'s exception: it must be a future of this wait alone).

    The future is awaited directly either way. ``asyncio.wait_for`` costs a loop turn on
    Python 3.10 and 3.11: the future's done callback wakes a waiter future of its own, whose
    callback wakes the task a turn later (on 3.12+ it enters a timeout scope instead); every
    read, drain or datagram receive given a timeout took that extra turn."""
    if timeout is None or future.done():
        return await future
    if timeout <= 0:
        raise asyncio.TimeoutError
    expiry = future.get_loop().call_later(timeout, _expire, future)
    try:
        return await future
    finally:
        expiry.cancel()


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


async def wait_for_any(latches: tuple[Latch, ...], timeout: float | None) -> bool:
    """Wait until one of ``latches`` is set (True) or ``timeout`` seconds pass first (False).

    One future settled by whichever comes first, given to every latch: no task per latch and
    no extra loop pass to hand the result on; nothing is left on the latches afterwards,
    also when the wait is cancelled."""
    if any(latch.is_set() for latch in latches):
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    for latch in latches:
        latch.add_waiter(waiter)
    timer = None if timeout is None else loop.call_later(timeout, _settle, waiter)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for latch in latches:
            latch.remove_waiter(waiter)
    return any(latch.is_set() for latch in latches)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
