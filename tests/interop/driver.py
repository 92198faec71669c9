"""The test's HTTP endpoint on 127.0.0.1: it serves the page, hands it work, takes its results.

The page (tests/interop/page.html) polls ``GET /next`` for a command, runs it and posts the
outcome to ``POST /result``; ``POST /log`` carries its console lines. Any browser that can
load a page can be driven this way, so Chromium and Firefox run the very same scenarios.
Plain HTTP on 127.0.0.1 is a secure context, which ``WebTransport`` requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any

__all__ = ["PageDriver", "PageError"]

logger = logging.getLogger(__name__)

#: How long one ``GET /next`` is held open before the page is told to ask again.
POLL_SECONDS = 15.0


class PageError(RuntimeError):
    """The page reported an exception, went away, or did not answer in time."""


class PageDriver:
    """Serves ``page`` at ``/`` and runs commands, one at a time, in the page polling ``/next``."""

    def __init__(self, page: str) -> None:
        self._page = page.encode()
        self._ids = itertools.count(1)
        self._commands: list[dict[str, Any]] = []
        self._new_command = asyncio.Event()
        self._results: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._polled = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.loads = 0
        self.console: list[str] = []

    @property
    def port(self) -> int:
        if self._server is None:
            raise PageError("the page server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for future in self._results.values():
            if not future.done():
                future.cancel()

    async def wait_polled(self, timeout: float) -> None:
        """Wait until a page asks for work (it loaded and its script runs)."""
        await asyncio.wait_for(self._polled.wait(), timeout)

    def submit(self, call: str, *args: Any) -> asyncio.Future[dict[str, Any]]:
        """Queue ``tests[call](...args)`` for the page; the future gets the page's report."""
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._results[command_id] = future
        self._commands.append({"id": command_id, "call": call, "args": list(args)})
        self._new_command.set()
        return future

    async def run(self, call: str, *args: Any, timeout: float = 60.0) -> Any:
        """Run ``tests[call](...args)`` in the page and return its JSON value."""
        future = self.submit(call, *args)
        try:
            report = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            # Drop it, so that a page that lost it gets the next command instead.
            self._commands = [c for c in self._commands if self._results.get(c["id"]) is not future]
            raise
        if not report.get("ok"):
            raise PageError(f"{call} failed in the page: {report.get('error')}")
        return report.get("value")

    # -- HTTP
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._respond(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # close() cancels held polls; asyncio's stream callback would log a cancelled
            # handler as an error, so the handler ends normally instead.
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        length = 0
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        if method == "GET" and path == "/":
            self.loads += 1
            await self._send(writer, b"200 OK", "text/html; charset=utf-8", self._page)
        elif method == "GET" and path == "/next":
            self._polled.set()
            await self._send(writer, b"200 OK", "application/json", json.dumps(await self._next_command()).encode())
        elif method == "POST" and path == "/result":
            report = json.loads(body)
            command_id = int(report["id"])
            self._commands = [c for c in self._commands if c["id"] != command_id]
            future = self._results.pop(command_id, None)
            if future is not None and not future.done():
                future.set_result(report)
            await self._send(writer, b"204 No Content", "text/plain", b"")
        elif method == "POST" and path == "/log":
            self.console.append(body.decode(errors="replace"))
            logger.debug("page: %s", self.console[-1])
            await self._send(writer, b"204 No Content", "text/plain", b"")
        else:
            await self._send(writer, b"404 Not Found", "text/plain", b"")

    async def _next_command(self) -> dict[str, Any]:
        # The oldest command without a result: the page runs one command at a time and posts
        # its result before it asks again, so a poll that died on the way (the page navigated,
        # a connection dropped) loses nothing; the next poll gets the same command.
        deadline = asyncio.get_running_loop().time() + POLL_SECONDS
        while not self._commands:
            self._new_command.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return {"id": 0, "call": "poll", "args": []}
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._new_command.wait(), remaining)
        command = self._commands[0]
        logger.debug("page gets command %d: %s", command["id"], command["call"])
        return command

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: bytes, content_type: str, body: bytes) -> None:
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type.encode()
                     + b"\r\nCache-Control: no-store\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
