"""A set of futures woken together: lets any number of tasks wait for "something changed"."""

from __future__ import annotations

import asyncio

__all__ = ["Waiters"]


class Waiters:
    """Tasks call ``wait()``; ``wake()`` releases every task waiting at that moment."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: set[asyncio.Future[None]] = set()

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until the next ``wake()``; asyncio.TimeoutError after ``timeout`` seconds."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.add(future)
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._futures.discard(future)

    def wake(self) -> None:
        for future in self._futures:
            if not future.done():
                future.set_result(None)

    def __len__(self) -> int:
        return len(self._futures)
