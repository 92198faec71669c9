"""Start Debian's headless Chromium or Firefox ESR on one URL, and kill it by process group.

No DevTools, no WebDriver: the page the browser opens fetches its work from the test's
HTTP endpoint and posts the results back (tests/interop/driver.py). Each browser runs in
a fresh profile directory, in its own session (process group), so that one ``killpg``
ends it and every helper process it forked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

__all__ = ["BROWSERS", "CHROMIUM_FLAGS", "FIREFOX_PREFS", "BrowserError", "BrowserProcess", "find_browser"]

#: The browsers the interop suite drives, in the order the tests run them.
BROWSERS = ("chromium", "firefox")

_CANDIDATES = {
    "chromium": ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"),
    "firefox": ("/usr/bin/firefox-esr", "/usr/bin/firefox"),
}
_PACKAGES = {"chromium": "chromium", "firefox": "firefox-esr"}

#: Chromium on a closed network; never --disable-quic. The host resolver maps every name
#: away so that the browser does not try to reach anything but 127.0.0.1.
CHROMIUM_FLAGS = (
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
)

#: Firefox ESR preferences written to the fresh profile's user.js. The first block is what
#: WebTransport needs; the rest keeps DNS off the loopback-only machine and stops the
#: background services that would otherwise try to reach the internet.
FIREFOX_PREFS: dict[str, bool | int | str] = {
    "network.webtransport.enabled": True,
    "network.http.http3.enable": True,
    # DNS: 5 = TRR (DNS over HTTPS) off by choice; no prefetching.
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    # Page console output on stdout, so a failing run shows what the page logged.
    "devtools.console.stdout.content": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "app.update.enabled": False,
    "app.normandy.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "media.gmp-manager.updateEnabled": False,
}


class BrowserError(RuntimeError):
    """The browser is not installed, could not start or exited early."""


def find_browser(name: str) -> str:
    """Path of the ``name`` browser executable (``PYWEBTRANSPORT_<NAME>`` overrides it)."""
    override = os.environ.get(f"PYWEBTRANSPORT_{name.upper()}", "")
    for path in (override, *_CANDIDATES[name]):
        if path and os.path.exists(path):
            return path
    raise BrowserError(f"{name} is not installed (apt-get install {_PACKAGES[name]}, or run .ci/browsers.sh); "
                       "the interop suite needs it")


def _user_js(prefs: dict[str, bool | int | str]) -> str:
    def literal(value: bool | int | str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f'user_pref("{name}", {literal(value)});\n' for name, value in prefs.items())


class BrowserProcess:
    """One headless browser showing ``url``, with its own profile and process group.

    ``prefs`` are added to (or override) FIREFOX_PREFS; Chromium ignores them.
    """

    def __init__(self, name: str, url: str, *, prefs: dict[str, bool | int | str] | None = None) -> None:
        if name not in _CANDIDATES:
            raise ValueError(f"unknown browser {name!r}; expected one of {BROWSERS}")
        self.name = name
        self.url = url
        self.prefs = {**FIREFOX_PREFS, **(prefs or {})}
        self.profile = Path(tempfile.mkdtemp(prefix=f"pwt-{name}-"))
        self.log_path = self.profile / "output.log"
        self._process: asyncio.subprocess.Process | None = None

    def command(self) -> list[str]:
        """The command line; for Firefox this also writes the profile's user.js."""
        executable = find_browser(self.name)
        if self.name == "chromium":
            return [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--enable-logging=stderr",
                    "--v=0", self.url]
        (self.profile / "user.js").write_text(_user_js(self.prefs))
        return [executable, "--headless", "--no-remote", "--profile", str(self.profile), self.url]

    async def start(self) -> None:
        env = dict(os.environ, MOZ_CRASHREPORTER_DISABLE="1", MOZ_HEADLESS="1", HOME=str(self.profile))
        # Output goes to a file: a pipe nobody drains could stall the browser.
        with open(self.log_path, "wb") as log:  # noqa: ASYNC230 - opened once, before the browser runs
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *self.command(), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                    start_new_session=True)
            except OSError as exc:
                raise BrowserError(f"cannot start {self.name}: {exc}") from exc

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def exited(self) -> bool:
        return self._process is not None and self._process.returncode is not None

    async def wait_exit(self) -> int:
        """Wait until the browser's main process exits; its exit status."""
        if self._process is None:
            raise BrowserError(f"{self.name} was never started")
        return await self._process.wait()

    def log_tail(self, size: int = 4000) -> str:
        """The end of the browser's stdout and stderr, for failure messages."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode(errors="replace")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def close(self, *, grace: float = 5.0) -> None:
        """SIGTERM to the whole process group, SIGKILL after ``grace`` seconds, remove the profile."""
        process = self._process
        if process is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, sig)
                try:
                    await asyncio.wait_for(process.wait(), grace)
                    break
                except asyncio.TimeoutError:
                    continue
            # Helpers may outlive the main process for a moment; the group is gone after this.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(self.profile, ignore_errors=True)
