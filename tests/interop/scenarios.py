"""The interop scenarios, one list for every browser, and the server they talk to.

Each scenario runs one function of tests/interop/page.html in the browser against a fresh
pywebtransport server on 127.0.0.1 and asserts what the page reported together with what
the server saw. tests/interop/test_browsers.py runs every scenario in every browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pywebtransport.config import ServerConfig
from pywebtransport.exceptions import StreamResetError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream, WebTransportStream
from pywebtransport.utils import SelfSignedCertificate

from .browsers import BrowserProcess
from .driver import PageDriver

__all__ = ["SCENARIOS", "Observed", "Rig", "Scenario", "build_server", "serving"]

#: A scenario: an async function of the rig that raises AssertionError when it fails.
Scenario = Callable[["Rig"], Awaitable[None]]
SCENARIOS: list[Scenario] = []

#: How long a scenario waits for the server to see something the page did.
SERVER_WAIT = 10.0
#: Whether each browser sends the page's `protocols` offer as WT-Available-Protocols (measured:
#: see docs/browsers.md); the subprotocol scenario fails when a browser changes.
SUBPROTOCOL_SUPPORT = {"chromium": True, "firefox": False}


def scenario(function: Scenario) -> Scenario:
    """Add ``function`` to SCENARIOS (its name, minus ``scenario_``, is the test id)."""
    SCENARIOS.append(function)
    return function


@dataclass
class Observed:
    """What our server saw, for the scenarios to assert."""

    sessions: list[dict[str, Any]] = field(default_factory=list)
    closes: list[tuple[int | None, str | None]] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    uni_payloads: list[bytes] = field(default_factory=list)
    bidi_answers: list[bytes] = field(default_factory=list)
    resets: list[int | None] = field(default_factory=list)
    datagram_sizes: list[int] = field(default_factory=list)
    live: list[WebTransportSession] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    events: dict[str, asyncio.Event] = field(default_factory=dict)

    def flag(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def wait(self, name: str, timeout: float = SERVER_WAIT) -> None:
        """Wait for the flag ``name``; TimeoutError says which one never came."""
        try:
            await asyncio.wait_for(self.flag(name).wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"the server did not see {name!r} within {timeout}s; it saw {len(self.sessions)} "
                               f"session(s) and these closes: {self.closes}") from None


def build_server(config: ServerConfig, seen: Observed) -> WebTransportServer:
    """A server with one route per scenario, recording into ``seen``."""
    server = WebTransportServer(config=config, protocols=["chat.v2", "chat.v1"])

    def remember(session: WebTransportSession) -> None:
        connection = session.connection
        assert connection is not None
        seen.sessions.append({"path": session.path, "headers": session.headers, "dialect": connection.dialect,
                              "peer_settings": connection.diagnostics()["peer_settings"]})
        seen.live.append(session)
        seen.flag("session").set()

    def record_close(session: WebTransportSession) -> None:
        seen.closes.append((session.close_code, session.close_reason))
        seen.ends.append(time.monotonic())
        seen.flag("closed").set()
        seen.flag(f"closed-{len(seen.closes)}").set()

    async def watch_close(session: WebTransportSession) -> None:
        await session.wait_closed()
        record_close(session)

    @server.route("/echo")
    async def echo(session: WebTransportSession) -> None:
        remember(session)

        async def echo_stream(stream: WebTransportStream) -> None:
            async for chunk in stream:
                stream.write(chunk)
                await stream.drain()
            await stream.close()

        async def echo_datagrams() -> None:
            async for payload in session.datagrams:
                seen.datagram_sizes.append(len(payload))
                await session.datagrams.send(payload)

        tasks = [asyncio.ensure_future(echo_datagrams())]
        try:
            async for stream in session.incoming_streams():
                if isinstance(stream, WebTransportStream):
                    tasks.append(asyncio.ensure_future(echo_stream(stream)))
            await session.wait_closed()
        finally:
            # However the handler ends (the iterator may raise once the peer closed), a
            # closed session is recorded here, before anything can cancel the handler.
            if session.is_closed:
                record_close(session)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @server.route("/uni")
    async def uni(session: WebTransportSession) -> None:
        remember(session)
        stream = await session.accept_stream(timeout=SERVER_WAIT)
        assert isinstance(stream, WebTransportReceiveStream)
        payload = await stream.read()
        seen.uni_payloads.append(payload)
        reply = await session.create_unidirectional_stream()
        await reply.write_all(b"server got: " + payload, end_stream=True)
        await session.wait_closed()

    @server.route("/server-bidi")
    async def server_bidi(session: WebTransportSession) -> None:
        remember(session)
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"opened by the server", end_stream=True)
        seen.bidi_answers.append(await asyncio.wait_for(stream.read(), SERVER_WAIT))
        await session.close(error_code=7, reason="answer read")

    @server.route("/close-watch")
    async def close_watch(session: WebTransportSession) -> None:
        remember(session)
        await watch_close(session)

    @server.route("/server-closes")
    async def server_closes(session: WebTransportSession) -> None:
        remember(session)
        code, reason = seen.options.get("close-with", (4321, "server closing now"))
        await session.close(error_code=code, reason=reason)

    @server.route("/server-closes-connection")
    async def server_closes_connection(session: WebTransportSession) -> None:
        remember(session)
        await session.close(error_code=5678, reason="closing the connection too", close_connection=True)

    @server.route("/reset-watch")
    async def reset_watch(session: WebTransportSession) -> None:
        remember(session)
        stream = await session.accept_stream(timeout=SERVER_WAIT)
        assert isinstance(stream, WebTransportStream)
        try:
            while await stream.read(1024):
                pass
        except StreamResetError as exc:
            seen.resets.append(exc.error_code)
            seen.flag("reset").set()
        await session.close(error_code=0, reason="reset seen")

    @server.route("/server-resets")
    async def server_resets(session: WebTransportSession) -> None:
        remember(session)
        stream = await session.accept_stream(timeout=SERVER_WAIT)
        assert isinstance(stream, WebTransportStream)
        await stream.readexactly(len(b"please reset me"))
        stream.abort(seen.options.get("abort-code", 42))
        await session.wait_closed()

    @server.route("/hold")
    async def hold(session: WebTransportSession) -> None:
        remember(session)
        await watch_close(session)

    return server


@contextlib.asynccontextmanager
async def serving(cert: SelfSignedCertificate, **changes: Any) -> AsyncIterator[tuple[WebTransportServer, Observed]]:
    """A started server on 127.0.0.1 with the scenario routes; ``changes`` go to ServerConfig."""
    seen = Observed()
    config = ServerConfig(host="127.0.0.1", port=0, certfile=str(cert.cert_path), keyfile=str(cert.key_path),
                          **changes)
    server = build_server(config, seen)
    await server.start()
    try:
        yield server, seen
    finally:
        await server.close()


@dataclass
class Rig:
    """One browser's page, a fresh server for the scenario, and what that server saw."""

    browser: BrowserProcess
    page: PageDriver
    server: WebTransportServer
    seen: Observed
    cert: SelfSignedCertificate

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server.local_address[1]}"

    async def run(self, call: str, *args: Any, timeout: float = 60.0) -> Any:
        """Run ``tests[call](...args)`` in the page; a timeout shows the browser's output."""
        if self.browser.exited:
            raise AssertionError(f"{self.browser.name} has exited; its output:\n{self.browser.log_tail()}")
        try:
            return await self.page.run(call, *args, timeout=timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.browser.name}: {call} did not report within {timeout}s; page console: "
                                 f"{self.page.console[-5:]}; browser output:\n{self.browser.log_tail()}") from None


# -- the scenarios -------------------------------------------------------------------------


@scenario
async def scenario_session_is_established_and_the_server_sees_path_headers_origin(rig: Rig) -> None:
    assert await rig.run("ready", f"{rig.base}/echo?from=browser") == {"ok": True}
    assert rig.seen.sessions, "our server saw no session"
    session = rig.seen.sessions[0]
    assert session["path"] == "/echo?from=browser"
    assert session["headers"]["origin"] == rig.page.url.rstrip("/")
    assert session["headers"][":protocol"] == "webtransport"
    # Both browsers speak the draft-02 dialect: SETTINGS_ENABLE_WEBTRANSPORT (0x2b603742) = 1,
    # and a header saying so.
    assert session["headers"].get("sec-webtransport-http3-draft02") == "1"
    assert session["dialect"] == "draft-02", session["peer_settings"]
    assert session["peer_settings"].get(0x2B603742) == 1, session["peer_settings"]


@scenario
async def scenario_subprotocols_offered_by_the_page_reach_the_server_when_the_browser_sends_them(rig: Rig) -> None:
    # Draft-15 §3.3 / the W3C `protocols` option. Whether the page's offer reaches us is the
    # browser's business: the result is recorded per browser (docs/browsers.md), and when an
    # offer arrives, our answer must come back as the page's `protocol`.
    result = await rig.run("protocols", f"{rig.base}/echo", ["chat.v2", "chat.v1"])
    offered = rig.seen.sessions[-1]["headers"].get("wt-available-protocols") if rig.seen.sessions else None
    expected = SUBPROTOCOL_SUPPORT[rig.browser.name]
    assert (offered is not None) == expected, (rig.browser.name, offered, result)
    if expected:
        assert result == {"constructed": True, "ready": True, "protocol": "chat.v2"}, result
    else:
        assert result["ready"] is True, result


@scenario
async def scenario_without_certificate_hashes_our_self_signed_certificate_is_refused(rig: Rig) -> None:
    # The control for every other scenario: the page reaches our server only because of
    # serverCertificateHashes (docs/browsers.md, "Certificates in Firefox").
    result = await rig.run("readyWithoutHashes", f"{rig.base}/echo")
    assert result["ok"] is False, result
    assert rig.seen.sessions == []


@scenario
async def scenario_bidirectional_echo_including_one_mebibyte(rig: Rig) -> None:
    result = await rig.run("bidiEcho", f"{rig.base}/echo", 1 << 20)
    assert result == {"small": "hello from the page", "bigLength": 1 << 20, "bigEqual": True}


@scenario
async def scenario_unidirectional_streams_both_ways(rig: Rig) -> None:
    result = await rig.run("uniBothWays", f"{rig.base}/uni")
    assert rig.seen.uni_payloads == [b"uni from the page"]
    assert result == {"received": "server got: uni from the page"}


@scenario
async def scenario_server_initiated_bidirectional_stream_is_read_and_answered_by_the_page(rig: Rig) -> None:
    result = await rig.run("serverBidi", f"{rig.base}/server-bidi")
    assert result == {"received": "opened by the server",
                      "closed": {"resolved": True, "closeCode": 7, "reason": "answer read"}}
    assert rig.seen.bidi_answers == [b"page answers: opened by the server"]


@scenario
async def scenario_datagrams_both_ways_at_the_browsers_max_size(rig: Rig) -> None:
    result = await rig.run("datagrams", f"{rig.base}/echo")
    max_size = result["maxDatagramSize"]
    # Chromium reports 1211 bytes, Firefox 1024 against the default ServerConfig.
    assert 1000 < max_size < 1500
    assert "dgram-small" in result["echoed"]
    assert f"X*{max_size}" in result["echoed"]
    assert max_size in rig.seen.datagram_sizes


@scenario
async def scenario_close_from_the_page_carries_code_and_reason_to_our_server(rig: Rig) -> None:
    result = await rig.run("closeFromPage", f"{rig.base}/close-watch", 3003, "page is done")
    assert result == {"resolved": True, "closeCode": 3003, "reason": "page is done"}
    await rig.seen.wait("closed")
    assert rig.seen.closes == [(3003, "page is done")]


@scenario
async def scenario_close_from_the_page_with_the_largest_code_and_a_1024_byte_reason(rig: Rig) -> None:
    reason = "r" * 1024  # the longest reason WebTransport allows (in UTF-8 bytes)
    result = await rig.run("closeFromPage", f"{rig.base}/close-watch", 2**32 - 1, reason)
    assert result == {"resolved": True, "closeCode": 2**32 - 1, "reason": reason}
    await rig.seen.wait("closed")
    assert rig.seen.closes == [(2**32 - 1, reason)]


@scenario
async def scenario_close_from_our_server_carries_code_and_reason_to_the_page(rig: Rig) -> None:
    result = await rig.run("awaitClose", f"{rig.base}/server-closes")
    result.pop("draining", None)
    assert result == {"resolved": True, "closeCode": 4321, "reason": "server closing now"}


@scenario
async def scenario_close_from_our_server_with_the_largest_code_and_a_1024_byte_reason(rig: Rig) -> None:
    rig.seen.options["close-with"] = (2**32 - 1, "s" * 1024)
    result = await rig.run("awaitClose", f"{rig.base}/server-closes")
    result.pop("draining", None)
    assert result == {"resolved": True, "closeCode": 2**32 - 1, "reason": "s" * 1024}


@scenario
async def scenario_session_close_with_close_connection_still_gives_the_page_code_and_reason(rig: Rig) -> None:
    # session.close(error_code, reason, close_connection=True): the page's `closed` must
    # resolve with the code and reason, not reject because the connection went away.
    result = await rig.run("awaitClose", f"{rig.base}/server-closes-connection")
    result.pop("draining", None)
    assert result == {"resolved": True, "closeCode": 5678, "reason": "closing the connection too"}, result


@scenario
async def scenario_server_close_with_drain_timeout_closes_the_page_session_cleanly(rig: Rig) -> None:
    # server.close(drain_timeout=...): GOAWAY and WT_DRAIN_SESSION, then, as the page does not
    # leave by itself, WT_CLOSE_SESSION (0, "") before the connection closes. The page's
    # `closed` must resolve with that clean close.
    pending = rig.page.submit("awaitClose", f"{rig.base}/hold")
    await rig.seen.wait("session")
    await rig.server.close(drain_timeout=1.0)
    report = await asyncio.wait_for(pending, SERVER_WAIT)
    assert report["ok"], report
    result = report["value"]
    result.pop("draining", None)
    assert result == {"resolved": True, "closeCode": 0, "reason": ""}, result
    await rig.seen.wait("closed")


@scenario
async def scenario_a_rejected_path_makes_ready_reject(rig: Rig) -> None:
    result = await rig.run("rejected", f"{rig.base}/no-such-path")
    assert result["rejected"] is True
    assert not any(s["path"] == "/no-such-path" for s in rig.seen.sessions)


@scenario
async def scenario_one_hundred_parallel_bidirectional_streams(rig: Rig) -> None:
    assert await rig.run("parallel", f"{rig.base}/echo", 100) == {"ok": 100}


@scenario
async def scenario_three_sessions_at_once_from_one_page(rig: Rig) -> None:
    result = await rig.run("threeSessions", f"{rig.base}/echo")
    assert result["echoed"] == ["session 0", "session 1", "session 2"]
    assert result["closed"] == [{"resolved": True, "closeCode": 10 + i, "reason": f"bye {i}"} for i in range(3)]
    assert sorted(s["path"] for s in rig.seen.sessions) == ["/echo?n=0", "/echo?n=1", "/echo?n=2"]
    await rig.seen.wait("closed-3")
    assert sorted(rig.seen.closes) == [(10, "bye 0"), (11, "bye 1"), (12, "bye 2")]


@scenario
async def scenario_reset_from_the_page_is_seen_with_its_code(rig: Rig) -> None:
    result = await rig.run("resetFromPage", f"{rig.base}/reset-watch", 42)
    await rig.seen.wait("reset")
    assert rig.seen.resets == [42]
    assert result == {"aborted": True, "closed": {"resolved": True, "closeCode": 0, "reason": "reset seen"}}


@scenario
async def scenario_page_abort_codes_above_255_arrive_as_255(rig: Rig) -> None:
    # Both browsers speak draft-02, whose stream error codes are 8 bits: they clamp.
    await rig.run("resetFromPage", f"{rig.base}/reset-watch", 1000)
    await rig.seen.wait("reset")
    assert rig.seen.resets == [255]


#: Whether the page's WebTransportError carries our RESET_STREAM code when the page has a
#: read waiting for it (as here). Firefox ESR 153 rejects that read with ``TypeError: Error in
#: input stream`` and no code; the reset itself arrives. (A reset that arrives before the page
#: reads is reported with its code in both browsers: docs/browsers.md.)
PAGE_SEES_RESET_CODE = {"chromium": True, "firefox": False}


@scenario
async def scenario_our_abort_is_seen_by_the_page(rig: Rig) -> None:
    result = await rig.run("resetFromServer", f"{rig.base}/server-resets")
    assert result["reset"] is True, result
    if PAGE_SEES_RESET_CODE[rig.browser.name]:
        assert result.get("streamErrorCode") == 42, result
    else:
        assert "streamErrorCode" not in result, f"{rig.browser.name} now reports the code: update the table"


#: The navigate-away scenario's server: a short QUIC idle timeout and keep-alive, so that the
#: bound it asserts is a few seconds.
NAVIGATE_IDLE_TIMEOUT = 3.0
NAVIGATE_KEEP_ALIVE = 1.0


@scenario
async def scenario_navigating_away_ends_the_session_within_the_idle_bound(rig: Rig) -> None:
    # A page holding a session navigates away. The session must end at our server within
    # the configured bound: at once when the browser closes it, or at the latest when the
    # QUIC idle timeout expires. Chromium closes the session (code 0) as the page unloads.
    # Firefox ESR 153 does not: it sends no WT_CLOSE_SESSION, no FIN or reset on the CONNECT
    # stream and no CONNECTION_CLOSE, and keeps the connection alive with a PING every half
    # idle timeout (docs/browsers.md, "Firefox keeps sessions of pages it left"), so only the
    # server's session inactivity bound (session_idle_timeout) can notice it.
    async with serving(rig.cert, idle_timeout=NAVIGATE_IDLE_TIMEOUT, keep_alive_interval=NAVIGATE_KEEP_ALIVE,
                       session_idle_timeout=NAVIGATE_IDLE_TIMEOUT) as (server, seen):
        base = f"https://127.0.0.1:{server.local_address[1]}"
        assert await rig.run("hold", f"{base}/hold") == {"held": 1}
        await seen.wait("session")
        loads = rig.page.loads
        await rig.run("navigate", f"{rig.page.url}?navigated")
        left_at = time.monotonic()
        await rig.run("poll")  # the next page is up and asks for work
        assert rig.page.loads == loads + 1
        bound = NAVIGATE_IDLE_TIMEOUT + NAVIGATE_KEEP_ALIVE + 1.0
        try:
            await seen.wait("closed", timeout=bound)
        except TimeoutError:
            session = seen.live[0]
            connection = session.connection
            raise AssertionError(
                f"{rig.browser.name}: {bound:.0f}s after the page navigated away our server still has the session "
                f"open (closed={session.is_closed}, connection "
                f"{'gone' if connection is None else connection.diagnostics()['state']}); the browser sent no "
                "close and kept the connection alive") from None
        assert seen.ends[0] - left_at < bound
