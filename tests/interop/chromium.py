"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe).

Chromium reads commands from fd 3 and writes replies to fd 4, each a JSON message ended by
a NUL byte. That needs no websocket client and no downloaded browser: Debian's chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

# The flags PROTOCOL.md lists for this closed network; never --disable-quic.
BASE_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
]


class ChromiumError(RuntimeError):
    """Chromium could not be started or a DevTools command failed."""


def find_chromium() -> str:
    for path in (os.environ.get("PYWEBTRANSPORT_CHROMIUM", ""), *CHROMIUM_CANDIDATES):
        if path and os.path.exists(path):
            return path
    found = shutil.which("chromium")
    if found:
        return found
    raise ChromiumError("Chromium is not installed (apt-get install chromium); the interop suite needs it")


def _above(fd: int, minimum: int = 10) -> int:
    """A duplicate of ``fd`` numbered at least ``minimum``; the original is closed."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, minimum)
    os.close(fd)
    return high


class Chromium:
    """One headless Chromium with one page; ``evaluate`` runs JavaScript and awaits it."""

    def __init__(self, extra_flags: list[str] | None = None) -> None:
        self._extra = extra_flags or []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._session_id: str | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.console: list[str] = []

    async def start(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="pwt-chromium-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Move the child's ends above fd 10 so that putting them at 3 and 4 cannot clobber one.
        to_chrome_r, from_chrome_w = _above(to_chrome_r), _above(from_chrome_w)
        flags = [*BASE_FLAGS, f"--user-data-dir={self._profile}", *self._extra, "about:blank"]

        def child_fds() -> None:  # runs in the child: put the pipes at fd 3 and 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        # stderr goes to a file: a pipe nobody drains could stall the browser.
        self._stderr = open(os.path.join(self._profile, "stderr.log"), "w+b")  # noqa: SIM115, ASYNC230
        try:
            self._process = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
                [find_chromium(), *flags], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self._stderr, preexec_fn=child_fds, pass_fds=(3, 4, to_chrome_r, from_chrome_w))
        except OSError as exc:
            raise ChromiumError(f"cannot start Chromium: {exc}") from exc
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._write_fd = to_chrome_w
        loop = asyncio.get_running_loop()
        self._reader = asyncio.StreamReader(limit=1 << 26)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self._reader), os.fdopen(from_chrome_r, "rb"))
        self._reader_task = asyncio.ensure_future(self._read_loop())
        try:
            version = await self.send("Browser.getVersion", timeout=30)
        except Exception as exc:
            self._stderr.seek(0)
            stderr = self._stderr.read()[-2000:]
            await self.close()
            raise ChromiumError(f"Chromium did not answer on its DevTools pipe ({exc}); stderr: "
                                f"{stderr.decode(errors='replace')}") from exc
        self.version = version.get("product", "?")
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        self._session_id = attached["sessionId"]
        await self.send("Runtime.enable", session=True)
        await self.send("Page.enable", session=True)

    async def _read_loop(self) -> None:
        while True:
            try:
                raw = await self._reader.readuntil(b"\0")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                break
            message = json.loads(raw[:-1])
            future = self._pending.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
            elif message.get("method") == "Runtime.consoleAPICalled":
                args = message["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ChromiumError("Chromium closed its DevTools pipe"))

    async def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False,
                   timeout: float = 60) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise ChromiumError(f"{method} failed: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url}, session=True)
        for _ in range(100):
            ready = await self.evaluate("document.readyState")
            if ready == "complete":
                return
            await asyncio.sleep(0.05)
        raise ChromiumError(f"page {url} did not finish loading")

    async def evaluate(self, expression: str, *, timeout: float = 60) -> Any:
        """Evaluate JavaScript in the page, await its promise, return the JSON value."""
        result = await self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                     "returnByValue": True}, session=True, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"JavaScript failed: {text}")
        return result.get("result", {}).get("value")

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                await asyncio.get_running_loop().run_in_executor(None, process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
        if getattr(self, "_write_fd", None) is not None:
            with contextlib.suppress(OSError):
                os.close(self._write_fd)
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
        shutil.rmtree(getattr(self, "_profile", ""), ignore_errors=True)
