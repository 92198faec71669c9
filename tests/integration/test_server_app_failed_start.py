"""A ServerApp whose start fails part-way over real loopback: nothing is left listening, and
the shutdown hooks release what the startup hooks set up, whether it was started with
``start()``, ``async with``, ``serve_until_signalled()`` or ``run()``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import ServerError, WebTransportError
from pywebtransport.server import ServerApp
from pywebtransport.session import WebTransportSession

pytestmark = pytest.mark.timeout(60)


class Announcing(RuntimeError):
    """What the failing hooks of these tests raise."""


def make_app(config: ServerConfig) -> tuple[ServerApp, list[str]]:
    log: list[str] = []
    app = ServerApp(config=config)

    @app.route("/x")
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    @app.on_startup
    def open_pool() -> None:
        log.append("startup")

    @app.on_shutdown
    async def close_pool() -> None:
        log.append("shutdown")

    return app, log


def fail() -> None:
    raise Announcing("announcing failed")


@pytest.fixture
def port_in_use() -> Iterator[int]:
    """A UDP port on 127.0.0.1 that another socket holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        yield busy.getsockname()[1]


async def test_a_ready_hook_that_raises_in_async_with_closes_the_app(server_config) -> None:
    app, log = make_app(server_config)
    app.on_ready(fail)
    with pytest.raises(Announcing):
        async with app:
            pytest.fail("the body of a failed `async with app` must not run")
    assert not app.server.is_serving
    assert log == ["startup", "shutdown"]


async def test_a_client_cannot_open_a_session_on_an_app_whose_ready_hook_raised(
        server_config, client_config: ClientConfig) -> None:
    app, _ = make_app(server_config)
    addresses: list[tuple[str, int]] = []
    app.on_ready(lambda: addresses.append(app.local_address))
    app.on_ready(fail)
    with pytest.raises(Announcing):
        await app.start()
    host, port = addresses[0]
    async with WebTransportClient(config=client_config.replace(connect_timeout=1.0)) as client:
        with pytest.raises((WebTransportError, TimeoutError, ConnectionError)):
            await client.connect(f"https://{host}:{port}/x")
    assert app.server.get_stats()["sessions_accepted"] == 0


async def test_a_taken_port_runs_the_shutdown_hooks_after_the_startup_hooks(server_config, port_in_use) -> None:
    app, log = make_app(server_config.replace(port=port_in_use))
    with pytest.raises(ServerError, match="cannot listen"):
        await app.serve_until_signalled()
    assert log == ["startup", "shutdown"]
    assert not app.server.is_serving


async def test_a_failing_later_startup_hook_runs_the_shutdown_hooks(server_config) -> None:
    app, log = make_app(server_config)
    app.on_startup(fail)
    with pytest.raises(Announcing):
        await app.start()
    assert log == ["startup", "shutdown"]
    assert not app.server.is_serving


async def test_a_failing_first_startup_hook_has_nothing_to_shut_down(server_config) -> None:
    log: list[str] = []
    app = ServerApp(config=server_config)
    app.on_startup(fail)
    app.on_shutdown(lambda: log.append("shutdown"))
    with pytest.raises(Announcing):
        await app.start()
    assert log == []
    assert not app.server.is_serving


async def test_a_shutdown_hook_that_fails_after_a_failed_start_does_not_hide_the_start_error(
        server_config, port_in_use) -> None:
    app, log = make_app(server_config.replace(port=port_in_use))
    app.on_shutdown(fail)
    with pytest.raises(ServerError, match="cannot listen"):
        await app.start()
    assert log == ["startup", "shutdown"]


async def test_a_start_cancelled_in_a_ready_hook_closes_the_app(server_config) -> None:
    app, log = make_app(server_config)
    ready = asyncio.Event()

    async def slow_announcement() -> None:
        ready.set()
        await asyncio.Event().wait()

    app.on_ready(slow_announcement)
    starting = asyncio.ensure_future(app.start())
    await asyncio.wait_for(ready.wait(), 10)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert log == ["startup", "shutdown"]
    assert not app.server.is_serving


def test_run_on_a_taken_port_runs_the_shutdown_hooks(server_config, port_in_use) -> None:
    app, log = make_app(server_config.replace(port=port_in_use))
    with pytest.raises(ServerError, match="cannot listen"):
        app.run(drain_timeout=0.0)
    assert log == ["startup", "shutdown"]
