"""The tasks of ``WebTransportSession.serve_streams()``: one per stream the peer opens, started
as the stream arrives, each watched until it ends; when the session closes they get a grace
to end by themselves, and are then cancelled, as they are at once when serving is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pywebtransport.exceptions import WebTransportError

if TYPE_CHECKING:
    from pywebtransport.stream import StreamType

__all__ = ["HANDLER_FAILED_CODE", "StreamHandler", "StreamHandlerTasks"]

logger = logging.getLogger("pywebtransport.session")

#: What serve_streams() calls with each incoming stream.
StreamHandler = Callable[["StreamType"], Awaitable[object]]
#: The application error code a stream is reset (and stopped) with when its handler raised:
#: the code a failed session handler closes its session with.
HANDLER_FAILED_CODE = 1


class StreamHandlerTasks:
    """Runs ``handler(stream)`` in a task per stream and keeps the tasks still running.

    A handler that raises has its exception logged (with the traceback, unless the stream or
    its session had already ended, which is how a peer leaving shows) and its stream reset
    with ``HANDLER_FAILED_CODE``, so that the peer is not left waiting on it; so has one that
    ends by a CancelledError of its own, and one ``stop`` cancelled while its stream and its
    session were still open (serving was cancelled: nothing else will serve that stream).
    """

    __slots__ = ("_handler", "_loop", "_session_id", "_stopping", "_tasks")

    def __init__(self, handler: StreamHandler, loop: asyncio.AbstractEventLoop, session_id: int) -> None:
        self._handler = handler
        self._loop = loop
        self._session_id = session_id
        self._tasks: dict[asyncio.Task[object], StreamType] = {}
        self._stopping = False

    @property
    def running(self) -> int:
        """Handlers started and not yet finished."""
        return len(self._tasks)

    def start(self, stream: StreamType) -> None:
        """Start ``handler(stream)``; its first step runs on the next loop turn."""
        task: asyncio.Task[object] = self._loop.create_task(self._run(stream))
        self._tasks[task] = stream
        task.add_done_callback(self._finished)

    async def _run(self, stream: StreamType) -> object:
        return await self._handler(stream)

    def _finished(self, task: asyncio.Task[object]) -> None:
        stream = self._tasks.pop(task, None)
        if stream is None:
            return
        if task.cancelled():
            if self._stopping:  # stop() cancelled it
                if not (stream.is_closed or stream.session.is_closed):
                    # Serving was cancelled with the session open: the stream is in no accept
                    # queue and nothing else will answer the peer on it.
                    _reset(stream)
                return
            logger.warning("session %d: the handler of stream %d ended by a CancelledError of its own; "
                           "resetting the stream", self._session_id, stream.stream_id)
            _reset(stream)
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, WebTransportError) and (stream.is_closed or stream.session.is_closed):
            logger.info("session %d: the handler of stream %d ended with the stream: %r", self._session_id,
                        stream.stream_id, exc)
            return
        logger.error("session %d: the handler of stream %d failed; resetting the stream", self._session_id,
                     stream.stream_id, exc_info=exc)
        _reset(stream)

    async def finish(self, grace: float) -> None:
        """The session closed: let the handlers end by themselves for ``grace`` seconds (their
        streams are over, so reads and writes raise the session's close), then ``stop``."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        await self.stop(grace)

    async def stop(self, grace: float) -> None:
        """Cancel every handler still running and wait for them, at most ``grace`` seconds: one
        that will not stop is logged and left running (nothing waits on it for good)."""
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=grace)
        if stuck:
            logger.warning("session %d: %d stream handler(s) did not stop within %.1fs of being cancelled; "
                           "left running", self._session_id, len(stuck), grace)


def _reset(stream: StreamType) -> None:
    """Reset what is still open of ``stream`` (RESET_STREAM, STOP_SENDING) with HANDLER_FAILED_CODE."""
    for name in ("abort", "stop_receiving"):  # a send, a receive or a bidirectional stream
        end = getattr(stream, name, None)
        if end is not None:
            with contextlib.suppress(WebTransportError):  # that side ended meanwhile
                end(HANDLER_FAILED_CODE)
