"""Cancelling ``serve_streams()`` ends its handlers at once, wherever it is cancelled, and
leaves no peer waiting on a stream nobody serves any more.

- Cancelled during the ``close_timeout`` grace it gives handlers after the session closed
  (``server.close()`` does exactly that: it closes every connection, then cancels the session
  handlers), its handlers were left running, never cancelled nor awaited.
- Cancelled while the session stays open, its handlers were cancelled but their streams were
  neither reset nor queued for ``accept_*``: the peer's request was never answered.
"""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import StreamResetError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import StreamType
from tests.integration.conftest import running_server, serving_one_stream

pytestmark = pytest.mark.timeout(60)


class _Blocked:
    """A handler that waits on something that never happens (a backend, say), and records
    its task and whether it was cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.tasks: list[asyncio.Task[object]] = []

    async def __call__(self, stream: StreamType) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def end(self) -> None:
        """Cancel and await what is still running (so a failing test leaks no task)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def test_cancelling_serve_streams_during_its_close_grace_cancels_its_handlers(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    handler = _Blocked()
    # A grace far longer than the test: the cancellation lands inside it.
    async with serving_one_stream(server_config.replace(close_timeout=30.0), client_config, handler,
                                  handler.started) as served:
        await served.session.close()
        await asyncio.wait_for(served.server_session.wait_closed(), 10)
        assert not served.serving.done()  # giving the handler its grace
        served.serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(served.serving, 10)
        try:
            assert handler.cancelled.is_set() and all(task.done() for task in handler.tasks), handler.tasks
        finally:
            await handler.end()


async def test_server_close_leaves_no_stream_handler_running(server_config: ServerConfig,
                                                             client_config: ClientConfig) -> None:
    handler = _Blocked()

    async def route(session: WebTransportSession) -> None:
        await session.serve_streams(handler)

    async with WebTransportClient(config=client_config) as client:
        async with running_server(server_config, {"/s": route}) as (_, base):
            session = await client.connect(f"{base}/s")
            stream = await session.create_bidirectional_stream()
            await stream.write_all(b"hold")
            await asyncio.wait_for(handler.started.wait(), 10)
        # The server is closed: server.close() closed the session, then cancelled its handler.
        try:
            assert handler.cancelled.is_set() and all(task.done() for task in handler.tasks), handler.tasks
        finally:
            await handler.end()


async def test_streams_whose_handlers_are_cancelled_with_serving_are_reset_for_the_peer(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    handler = _Blocked()
    async with serving_one_stream(server_config, client_config, handler, handler.started) as served:
        served.serving.cancel()  # the application stops serving; the session stays up
        with pytest.raises(asyncio.CancelledError):
            await served.serving
        with pytest.raises(StreamResetError) as reset:
            await asyncio.wait_for(served.stream.read(), 10)
        assert reset.value.error_code == 1
        assert not served.server_session.is_closed
        await served.session.close()
