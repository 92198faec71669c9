"""What both managers share: a keyed set of closeable resources with a limit, statistics,
removal on the resource's own "closed" events, a periodic sweep and an orderly shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

from pywebtransport.events import EventEmitter, EventType
from pywebtransport.manager.exceptions import ResourceLimitError

__all__: list[str] = []

logger = logging.getLogger(__name__)



class _Managed(Protocol):
    """What a manager needs of a resource: an event emitter and a closed flag."""

    @property
    def events(self) -> EventEmitter: ...

    @property
    def is_closed(self) -> bool: ...


K = TypeVar("K", bound=Hashable)
R = TypeVar("R", bound=_Managed)
M = TypeVar("M", bound="_ResourceManager[Any, Any]")


class _ResourceManager(Generic[K, R]):
    """A manager of resources of one kind, keyed by ``K``.

    Subclasses say how to key, test, close and watch a resource. Every method that reads
    or changes the table takes ``self._lock``; the event handlers that drop a closed
    resource run synchronously inside the emitter and touch the table without awaiting,
    which cannot interleave with a locked section's steps.
    """

    _kind = "resource"
    _limit_error: type[ResourceLimitError] = ResourceLimitError
    _closed_events: tuple[EventType, ...] = ()

    def __init__(self, *, max_resources: int, cleanup_interval: float | None) -> None:
        if isinstance(max_resources, bool) or not isinstance(max_resources, int) or max_resources < 1:
            raise ValueError(f"the maximum number of {self._kind}s must be an int >= 1, got {max_resources!r}")
        if cleanup_interval is not None and not cleanup_interval > 0:
            raise ValueError(f"the {self._kind} cleanup interval must be > 0 seconds, got {cleanup_interval!r}")
        self._max_resources = max_resources
        self._cleanup_interval = cleanup_interval
        self._lock = asyncio.Lock()
        self._resources: dict[K, R] = {}
        self._unsubscribe: dict[K, Callable[[], None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active = False
        self._shutting_down = False
        self._total_created = 0
        self._total_closed = 0
        self._max_concurrent = 0
        self._cleanup_runs = 0

    # ------------------------------------------------------------------ subclass hooks

    def _key_of(self, resource: R) -> K:
        raise NotImplementedError

    async def _close(self, resource: R) -> None:
        raise NotImplementedError

    def _state_name(self, resource: R) -> str:
        raise NotImplementedError

    def _all_states(self) -> list[str]:
        raise NotImplementedError

    def _closed_error(self, resource: R) -> Exception:
        raise NotImplementedError

    def _after_add(self, key: K, resource: R) -> None:
        """Called once a resource is in the table (for secondary indexes)."""

    def _after_forget(self, key: K, resource: R) -> None:
        """Called once a resource has left the table."""

    def _is_closed_resource(self, resource: R) -> bool:
        return resource.is_closed

    # ------------------------------------------------------------------ context manager

    async def __aenter__(self: M) -> M:
        if self._shutting_down:
            raise RuntimeError(f"this {type(self).__name__} was shut down and cannot be used again")
        self._active = True
        if self._cleanup_interval is not None and not self._tasks:
            self._spawn(self._cleanup_loop(), name=f"pywebtransport-{self._kind}-cleanup")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    @property
    def is_active(self) -> bool:
        """True inside ``async with`` until shutdown starts."""
        return self._active and not self._shutting_down

    def _spawn(self, coro: Any, *, name: str) -> asyncio.Task[Any]:
        """The one place background tasks start: named, tracked, cancelled by shutdown()."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ table operations

    def _check_accepting(self) -> None:
        if self._shutting_down:
            raise RuntimeError(f"{type(self).__name__} is shutting down; cannot add a {self._kind}")
        if not self._active:
            raise RuntimeError(f"{type(self).__name__} is not active; use it as `async with manager:` "
                               f"before adding a {self._kind}")

    async def _add(self, resource: R) -> K:
        self._check_accepting()
        async with self._lock:
            self._check_accepting()  # shutdown may have begun while we waited for the lock
            if self._is_closed_resource(resource):
                raise self._closed_error(resource)
            key = self._key_of(resource)
            existing = self._resources.get(key)
            if existing is resource:
                return key
            if existing is not None:
                raise ValueError(f"another {self._kind} with key {key!r} is already managed")
            if len(self._resources) >= self._max_resources:
                raise self._limit_error(f"cannot add {self._kind} {key!r}: the limit of {self._max_resources} "
                                        f"{self._kind}s is reached", limit=self._max_resources)
            self._resources[key] = resource
            self._unsubscribe[key] = self._watch(key, resource)
            self._after_add(key, resource)
            self._total_created += 1
            self._max_concurrent = max(self._max_concurrent, len(self._resources))
        logger.debug("%s %r added (%d managed)", self._kind, key, len(self._resources))
        return key

    def _watch(self, key: K, resource: R) -> Callable[[], None]:
        """Subscribe to the resource's closed events; returns the unsubscriber."""
        emitter = resource.events

        def on_closed(_event: Any) -> None:
            if self._forget(key, resource):
                logger.debug("%s %r closed; removed (%d managed)", self._kind, key, len(self._resources))

        for event_type in self._closed_events:
            emitter.on(event_type, on_closed)

        def unsubscribe() -> None:
            for event_type in self._closed_events:
                emitter.off(event_type, on_closed)

        return unsubscribe

    def _forget(self, key: K, resource: R) -> bool:
        """Drop ``resource`` if it is still the one under ``key`` (synchronous, idempotent)."""
        if self._resources.get(key) is not resource:
            return False
        del self._resources[key]
        unsubscribe = self._unsubscribe.pop(key, None)
        if unsubscribe is not None:
            try:
                unsubscribe()
            except Exception:  # an emitter that cannot unsubscribe must not break removal
                logger.debug("could not unsubscribe from %s %r", self._kind, key, exc_info=True)
        self._total_closed += 1
        self._after_forget(key, resource)
        return True

    async def _remove(self, key: K) -> R | None:
        async with self._lock:
            resource = self._resources.get(key)
            if resource is not None:
                self._forget(key, resource)
            return resource

    async def _cleanup_closed(self) -> int:
        async with self._lock:
            closed = [(key, r) for key, r in self._resources.items() if self._is_closed_resource(r)]
            for key, resource in closed:
                self._forget(key, resource)
        if closed:
            logger.debug("cleanup removed %d closed %ss", len(closed), self._kind)
        return len(closed)

    async def _cleanup_loop(self) -> None:
        assert self._cleanup_interval is not None
        while True:
            await asyncio.sleep(self._cleanup_interval)
            try:
                await self._cleanup_closed()
            except Exception:  # keep sweeping: one bad resource must not end the task
                logger.exception("%s cleanup failed", self._kind)
            self._cleanup_runs += 1

    async def _close_all(self) -> None:
        """Close every managed resource (concurrently) and drop them all."""
        async with self._lock:
            items = list(self._resources.items())
        results = await asyncio.gather(*(self._close(r) for _, r in items), return_exceptions=True)
        for (key, _), result in zip(items, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("closing %s %r failed: %r", self._kind, key, result)
        async with self._lock:
            for key, resource in items:
                self._forget(key, resource)

    async def shutdown(self) -> None:
        """Stop accepting, cancel background tasks, close every managed resource."""
        self._shutting_down = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_all()
        self._active = False
        logger.debug("%s manager shut down", self._kind)

    def _base_stats(self) -> dict[str, Any]:
        states = dict.fromkeys(self._all_states(), 0)
        for resource in self._resources.values():
            name = self._state_name(resource)
            states[name] = states.get(name, 0) + 1
        return {
            "total_created": self._total_created,
            "total_closed": self._total_closed,
            "current_count": len(self._resources),
            "max_concurrent": self._max_concurrent,
            "states": states,
            "active": self.is_active,
            "cleanup_runs": self._cleanup_runs,
        }
