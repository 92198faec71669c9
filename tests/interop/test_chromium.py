"""Headless Chromium (a browser we did not write) against our server over QUIC on 127.0.0.1.

The page is served over plain HTTP from 127.0.0.1 (a secure context) and connects with
``new WebTransport(url, {serverCertificateHashes})`` to our server. Every scenario returns
JSON to Python, where it is asserted together with what our server saw.
If Chromium cannot start the suite FAILS (it is never skipped): see tests/interop/chromium.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pywebtransport.config import ServerConfig
from pywebtransport.exceptions import StreamResetError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream, WebTransportStream
from pywebtransport.utils import SelfSignedCertificate, generate_self_signed_cert

from .chromium import Chromium

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

PAGE = (Path(__file__).parent / "page.html").read_text()


@dataclass
class Observed:
    """What our server saw, for the tests to assert."""

    sessions: list[dict[str, Any]] = field(default_factory=list)
    closes: list[tuple[int | None, str | None]] = field(default_factory=list)
    uni_payloads: list[bytes] = field(default_factory=list)
    bidi_answers: list[bytes] = field(default_factory=list)
    resets: list[int | None] = field(default_factory=list)
    datagram_sizes: list[int] = field(default_factory=list)
    events: dict[str, asyncio.Event] = field(default_factory=dict)

    def flag(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())


def build_server(config: ServerConfig, seen: Observed) -> WebTransportServer:
    server = WebTransportServer(config=config)

    def remember(session: WebTransportSession) -> None:
        seen.sessions.append({"path": session.path, "headers": session.headers})

    async def watch_close(session: WebTransportSession) -> None:
        await session.wait_closed()
        seen.closes.append((session.close_code, session.close_reason))
        seen.flag("closed").set()

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

        tasks = [asyncio.ensure_future(echo_datagrams()), asyncio.ensure_future(watch_close(session))]
        try:
            async for stream in session.incoming_streams():
                if isinstance(stream, WebTransportStream):
                    tasks.append(asyncio.ensure_future(echo_stream(stream)))
        finally:
            await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()

    @server.route("/uni")
    async def uni(session: WebTransportSession) -> None:
        remember(session)
        stream = await session.accept_stream(timeout=10)
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
        seen.bidi_answers.append(await asyncio.wait_for(stream.read(), 10))
        await session.wait_closed()

    @server.route("/close-watch")
    async def close_watch(session: WebTransportSession) -> None:
        remember(session)
        await watch_close(session)

    @server.route("/server-closes")
    async def server_closes(session: WebTransportSession) -> None:
        remember(session)
        await asyncio.sleep(0.2)
        await session.close(error_code=4321, reason="server closing now")

    @server.route("/reset-watch")
    async def reset_watch(session: WebTransportSession) -> None:
        remember(session)
        stream = await session.accept_stream(timeout=10)
        assert isinstance(stream, WebTransportStream)
        try:
            while await stream.read(1024):
                pass
        except StreamResetError as exc:
            seen.resets.append(exc.error_code)
            seen.flag("reset").set()
        await session.wait_closed()

    @server.route("/server-resets")
    async def server_resets(session: WebTransportSession) -> None:
        remember(session)
        stream = await session.accept_stream(timeout=10)
        assert isinstance(stream, WebTransportStream)
        await stream.readexactly(len(b"please reset me"))
        stream.abort(1234)
        await session.wait_closed()

    return server


async def serve_page(page: str) -> asyncio.AbstractServer:
    body = page.encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            status = b"200 OK" if request.startswith(b"GET / ") else b"404 Not Found"
            content = body if status == b"200 OK" else b""
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\n"
                         b"Content-Length: " + str(len(content)).encode() + b"\r\nConnection: close\r\n\r\n" + content)
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@dataclass
class Rig:
    chrome: Chromium
    base: str
    seen: Observed
    server: WebTransportServer

    async def run(self, call: str, *args: Any) -> Any:
        arguments = ", ".join(json.dumps(a) for a in args)
        return await self.chrome.evaluate(f"tests.{call}({arguments})", timeout=120)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    return generate_self_signed_cert("localhost", output_dir=tmp_path_factory.mktemp("interop-cert"))


@pytest.fixture
async def rig(cert: SelfSignedCertificate) -> AsyncIterator[Rig]:
    seen = Observed()
    config = ServerConfig(host="127.0.0.1", port=0, certfile=str(cert.cert_path), keyfile=str(cert.key_path))
    server = build_server(config, seen)
    await server.start()
    port = server.local_address[1]
    page_server = await serve_page(PAGE.replace("__HASH__", json.dumps(list(cert.sha256))))
    page_port = page_server.sockets[0].getsockname()[1]
    chrome = Chromium()
    try:
        await chrome.start()
        await chrome.navigate(f"http://127.0.0.1:{page_port}/")
        assert await chrome.evaluate("typeof WebTransport") == "function", "the page has no WebTransport"
        yield Rig(chrome, f"https://127.0.0.1:{port}", seen, server)
    finally:
        await chrome.close()
        page_server.close()
        await server.close()


async def test_session_is_established_and_the_server_sees_path_headers_origin(rig: Rig) -> None:
    assert await rig.run("ready", f"{rig.base}/echo?from=browser") == {"ok": True}
    assert rig.seen.sessions, "our server saw no session"
    session = rig.seen.sessions[0]
    assert session["path"] == "/echo?from=browser"
    assert session["headers"]["origin"].startswith("http://127.0.0.1:")
    assert session["headers"][":protocol"] == "webtransport"
    assert session["headers"].get("sec-webtransport-http3-draft02") == "1"


async def test_bidirectional_echo_including_one_mebibyte(rig: Rig) -> None:
    result = await rig.run("bidiEcho", f"{rig.base}/echo", 1 << 20)
    assert result == {"small": "hello from chromium", "bigLength": 1 << 20, "bigEqual": True}


async def test_unidirectional_streams_both_ways(rig: Rig) -> None:
    result = await rig.run("uniBothWays", f"{rig.base}/uni")
    assert rig.seen.uni_payloads == [b"uni from chromium"]
    assert result == {"received": "server got: uni from chromium"}


async def test_server_initiated_bidirectional_stream_is_read_by_the_page(rig: Rig) -> None:
    result = await rig.run("serverBidi", f"{rig.base}/server-bidi")
    assert result == {"received": "opened by the server"}
    assert rig.seen.bidi_answers == [b"page answers: opened by the server"]


async def test_datagrams_both_ways_at_the_browsers_max_size(rig: Rig) -> None:
    result = await rig.run("datagrams", f"{rig.base}/echo")
    max_size = result["maxDatagramSize"]
    assert 1000 < max_size < 1500
    assert "dgram-small" in result["echoed"]
    assert f"X*{max_size}" in result["echoed"]
    assert max_size in rig.seen.datagram_sizes


async def test_close_from_the_page_carries_code_and_reason_to_our_server(rig: Rig) -> None:
    result = await rig.run("closeFromPage", f"{rig.base}/close-watch", 3003, "page is done")
    assert result == {"closeCode": 3003, "reason": "page is done"}
    await asyncio.wait_for(rig.seen.flag("closed").wait(), 10)
    assert rig.seen.closes == [(3003, "page is done")]


async def test_close_from_our_server_carries_code_and_reason_to_the_page(rig: Rig) -> None:
    result = await rig.run("closeFromServer", f"{rig.base}/server-closes")
    assert result == {"closeCode": 4321, "reason": "server closing now"}


async def test_a_rejected_path_makes_ready_reject(rig: Rig) -> None:
    result = await rig.run("rejected", f"{rig.base}/no-such-path")
    assert result["rejected"] is True
    assert not any(s["path"] == "/no-such-path" for s in rig.seen.sessions)


async def test_one_hundred_parallel_bidirectional_streams(rig: Rig) -> None:
    assert await rig.run("parallel", f"{rig.base}/echo", 100) == {"ok": 100}


async def test_reset_from_the_page_is_seen_with_its_code(rig: Rig) -> None:
    await rig.run("resetFromPage", f"{rig.base}/reset-watch", 42)
    await asyncio.wait_for(rig.seen.flag("reset").wait(), 10)
    assert rig.seen.resets == [42]


async def test_our_abort_code_is_seen_by_the_page(rig: Rig) -> None:
    result = await rig.run("resetFromServer", f"{rig.base}/server-resets")
    assert result["reset"] is True
    assert result["streamErrorCode"] == 1234
