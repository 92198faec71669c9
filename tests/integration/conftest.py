"""Loopback fixtures: a real server and client over UDP on 127.0.0.1 (nothing leaves the machine)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import StreamType, WebTransportReceiveStream, WebTransportStream
from pywebtransport.utils import SelfSignedCertificate, generate_self_signed_cert

Handler = Callable[[WebTransportSession], Awaitable[None]]


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, *,
                     interval: float = 0.01) -> None:
    """Wait until ``predicate()`` holds (it may be a coroutine function), checking it every
    ``interval`` seconds; AssertionError if it still does not after ``timeout`` seconds.

    The timeout only bounds a hang: it is generous so that a loaded CI machine, where one
    loop iteration can take a good part of a second, does not fail a condition that holds.

    For conditions the library has no event for (a counter reaching a value, a state that
    changes when a frame arrives over UDP). Where there is an event, a future or
    ``wait_closed()``, wait on that instead.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"condition not reached within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    """One ECDSA P-256 certificate for the whole run (valid 10 days, browser-acceptable)."""
    out: Path = tmp_path_factory.mktemp("cert")
    return generate_self_signed_cert("localhost", output_dir=out)


@pytest.fixture
def server_config(certificate: SelfSignedCertificate) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, certfile=str(certificate.cert_path),
                        keyfile=str(certificate.key_path))


@pytest.fixture
def client_config(certificate: SelfSignedCertificate) -> ClientConfig:
    """A client that pins the test certificate by its SHA-256, as browsers do."""
    return ClientConfig(server_certificate_hashes=[certificate.sha256], connect_timeout=10.0)


async def echo_handler(session: WebTransportSession) -> None:
    """Echo every bidi stream, answer every uni stream on a new uni stream, echo datagrams."""

    async def echo_bidi(stream: WebTransportStream) -> None:
        async for chunk in stream:
            stream.write(chunk)
            await stream.drain()
        await stream.close()

    async def echo_uni(stream: WebTransportReceiveStream) -> None:
        data = await stream.read()
        reply = await session.create_unidirectional_stream()
        await reply.write_all(data, end_stream=True)

    async def echo_datagrams() -> None:
        async for payload in session.datagrams:
            await session.datagrams.send(payload)

    tasks = [asyncio.ensure_future(echo_datagrams())]
    try:
        async for stream in session.incoming_streams():
            if isinstance(stream, WebTransportStream):
                tasks.append(asyncio.ensure_future(echo_bidi(stream)))
            elif isinstance(stream, WebTransportReceiveStream):
                tasks.append(asyncio.ensure_future(echo_uni(stream)))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def serving_route(handler: Callable[[StreamType], Awaitable[object]],
                  outcome: asyncio.Future[BaseException | None]) -> Handler:
    """A route that runs ``session.serve_streams(handler)`` and reports how it ended in
    ``outcome``: None when it returned, else the exception it raised."""

    async def route(session: WebTransportSession) -> None:
        try:
            await session.serve_streams(handler)
        except BaseException as exc:
            outcome.set_result(exc)
            raise
        outcome.set_result(None)

    return route


@asynccontextmanager
async def running_server(config: ServerConfig,
                         routes: dict[str, Handler]) -> AsyncIterator[tuple[WebTransportServer, str]]:
    """A started server with ``routes``; yields it and its base URL (https://127.0.0.1:PORT)."""
    server = WebTransportServer(config=config)
    for path, handler in routes.items():
        server.add_route(path, handler)
    async with server:
        host, port = server.local_address
        yield server, f"https://{host}:{port}"


class ServedStream:
    """What ``serving_one_stream`` yields: both ends of a session, the task running the
    server side's ``serve_streams()``, and the client's stream whose handler has started."""

    def __init__(self, session: WebTransportSession, server_session: WebTransportSession,
                 serving: asyncio.Future[None], stream: StreamType) -> None:
        self.session = session
        self.server_session = server_session
        self.serving = serving
        self.stream = stream


@asynccontextmanager
async def serving_one_stream(server_config: ServerConfig, client_config: ClientConfig,
                             handler: Callable[[StreamType], Awaitable[object]],
                             started: asyncio.Event) -> AsyncIterator[ServedStream]:
    """A server whose session runs ``serve_streams(handler)`` in a task of the test's (the
    route only holds the session), and one bidirectional stream the client opened and wrote
    to, once its handler has set ``started``."""
    arrived: asyncio.Future[WebTransportSession] = asyncio.get_running_loop().create_future()

    async def hold(session: WebTransportSession) -> None:
        arrived.set_result(session)
        await session.wait_closed()

    async with (running_server(server_config, {"/serve": hold}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/serve")
        server_session = await asyncio.wait_for(arrived, 10)
        serving = asyncio.ensure_future(server_session.serve_streams(handler))
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"hold")
        await asyncio.wait_for(started.wait(), 10)
        yield ServedStream(session, server_session, serving, stream)


@pytest.fixture
async def echo_server(server_config: ServerConfig) -> AsyncIterator[tuple[WebTransportServer, str]]:
    async with running_server(server_config, {"/echo": echo_handler}) as (server, base):
        yield server, base


@pytest.fixture
async def client(client_config: ClientConfig) -> AsyncIterator[WebTransportClient]:
    async with WebTransportClient(config=client_config) as c:
        yield c
