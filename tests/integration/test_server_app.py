"""ServerApp over real loopback: routes with parameters, middleware verdicts, hooks, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.events import EventType
from pywebtransport.exceptions import SessionRejectedError
from pywebtransport.server import HeaderAuth, RateLimit, Reject, ServerApp, SessionRequest
from pywebtransport.session import WebTransportSession

pytestmark = pytest.mark.timeout(60)


def make_app(server_config, **kwargs) -> tuple[ServerApp, list[str]]:
    log: list[str] = []
    app = ServerApp(config=server_config, **kwargs)

    @app.route("/rooms/{room}/users/{user}")
    async def room(session: WebTransportSession, room: str, user: str) -> None:
        stream = await session.create_unidirectional_stream()
        await stream.write_all(f"{room}:{user}".encode(), end_stream=True)
        await session.wait_closed()

    @app.on_startup
    def started() -> None:
        log.append("startup")

    @app.on_shutdown
    async def stopped() -> None:
        log.append("shutdown")

    return app, log


async def status_of(client: WebTransportClient, url: str, **kwargs) -> int:
    try:
        session = await client.connect(url, **kwargs)
    except SessionRejectedError as exc:
        return exc.status_code
    await session.close()
    return 200


async def test_routes_pass_path_parameters_and_hooks_run(server_config, client) -> None:
    app, log = make_app(server_config)
    async with app:
        assert log == ["startup"]
        host, port = app.local_address
        session = await client.connect(f"https://{host}:{port}/rooms/lobby/users/ada?ignored=1")
        stream = await session.accept_stream(timeout=5)
        assert await stream.read() == b"lobby:ada"  # type: ignore[union-attr]
        assert await status_of(client, f"https://{host}:{port}/rooms/lobby") == 404
        await session.close()  # else the app's close waits out its whole drain for it
    assert log == ["startup", "shutdown"]


async def test_origin_allow_list_from_the_config(server_config, certificate) -> None:
    app, _ = make_app(server_config.replace(allowed_origins=["https://good.test"]))
    async with app:
        host, port = app.local_address
        url = f"https://{host}:{port}/rooms/a/users/b"
        # No origin header is allowed (native clients); a present, unlisted one is not (draft-15 §3.2).
        for origin, expected in (("https://good.test", 200), ("https://good.test/", 200),
                                 ("https://evil.test", 403), (None, 200)):
            config = ClientConfig(server_certificate_hashes=[certificate.sha256], origin=origin)
            async with WebTransportClient(config=config) as client:
                assert await status_of(client, url) == expected, origin


async def test_header_auth_answers_401_and_403(server_config, client) -> None:
    app, _ = make_app(server_config, middleware=[HeaderAuth("authorization", lambda v: v == "Bearer ok")])
    async with app:
        host, port = app.local_address
        url = f"https://{host}:{port}/rooms/a/users/b"
        assert await status_of(client, url) == 401
        assert await status_of(client, url, headers={"authorization": "Bearer no"}) == 403
        assert await status_of(client, url, headers={"authorization": "Bearer ok"}) == 200


async def test_rate_limit_per_client_address_answers_429(server_config, client) -> None:
    limit = RateLimit(2, 60)
    app, _ = make_app(server_config, middleware=[limit])
    async with app:
        host, port = app.local_address
        url = f"https://{host}:{port}/rooms/a/users/b"
        assert [await status_of(client, url) for _ in range(4)] == [200, 200, 429, 429]
        assert limit.tracked_addresses == 1


async def test_rate_limit_memory_is_bounded() -> None:
    limit = RateLimit(1, 60, max_addresses=3)
    for i in range(10):
        request = SessionRequest(session=None, path="/", headers={}, remote_address=(f"10.0.0.{i}", 1))  # type: ignore[arg-type]
        assert await limit(request) is None
    assert limit.tracked_addresses == 3


async def test_a_middleware_can_raise_reject(server_config, client) -> None:
    async def closed_on_weekends(request: SessionRequest) -> None:
        raise Reject(503, "come back later")

    app, _ = make_app(server_config, middleware=[closed_on_weekends])
    async with app:
        host, port = app.local_address
        assert await status_of(client, f"https://{host}:{port}/rooms/a/users/b") == 503


async def test_graceful_shutdown_drains_sessions(server_config, client) -> None:
    app, log = make_app(server_config)
    await app.start()
    host, port = app.local_address
    session = await client.connect(f"https://{host}:{port}/rooms/a/users/b")
    drained = asyncio.Event()

    def leave(_event: object) -> None:
        drained.set()
        asyncio.ensure_future(session.close(reason="drained"))

    session.events.on(EventType.SESSION_DRAINING, leave)
    await app.close(drain_timeout=5)
    assert drained.is_set() and session.is_closed and session.close_reason == "drained"
    assert log == ["startup", "shutdown"]


def test_route_refuses_a_handler_missing_a_path_parameter(server_config) -> None:
    app = ServerApp(config=server_config)

    async def room(session: WebTransportSession) -> None:
        return None

    with pytest.raises(TypeError, match=r"route '/rooms/\{room\}': handler .*room.* does not take the path "
                                        r"parameter\(s\) 'room'"):
        app.route("/rooms/{room}")(room)
    assert app.server.get_stats()["sessions_accepted"] == 0


def test_route_refuses_a_handler_needing_a_parameter_the_route_lacks(server_config) -> None:
    app = ServerApp(config=server_config)

    async def room(session: WebTransportSession, room: str, user: str) -> None:
        return None

    with pytest.raises(TypeError, match=r"route '/rooms/\{room\}': .* requires parameter\(s\) 'user'"):
        app.add_route("/rooms/{room}", room)


def test_route_accepts_defaults_and_catch_all_keywords(server_config) -> None:
    app = ServerApp(config=server_config)

    @app.route("/a/{x}/{y}")
    async def catch_all(session: WebTransportSession, **params: str) -> None:
        return None

    @app.route("/b/{x}")
    async def with_default(session: WebTransportSession, x: str, y: str = "") -> None:
        return None

    assert catch_all is not None and with_default is not None


def test_server_add_route_refuses_a_handler_that_cannot_take_the_session(server_config) -> None:
    from pywebtransport.server import WebTransportServer

    server = WebTransportServer(config=server_config)

    async def two(session: WebTransportSession, extra: str) -> None:
        return None

    async def none() -> None:
        return None

    with pytest.raises(TypeError, match=r"route '/x': .* requires parameter\(s\) 'extra'"):
        server.add_route("/x", two)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"route '/y': .*cannot be called as handler\(session\)"):
        server.route("/y")(none)  # type: ignore[arg-type]


async def test_a_route_with_a_parameter_reaches_its_handler(server_config, client) -> None:
    app = ServerApp(config=server_config)

    @app.route("/rooms/{room}")
    async def room(session: WebTransportSession, room: str) -> None:
        stream = await session.create_unidirectional_stream()
        await stream.write_all(room.encode(), end_stream=True)
        await session.wait_closed()

    async with app:
        host, port = app.local_address
        session = await client.connect(f"https://{host}:{port}/rooms/lobby")
        stream = await session.accept_stream(timeout=5)
        assert await stream.read() == b"lobby"  # type: ignore[union-attr]
        await session.close()


async def test_shutdown_hooks_run_when_the_caller_of_close_is_cancelled(server_config: ServerConfig,
                                                                        client_config: ClientConfig) -> None:
    # The server's close goes on when its caller is cancelled (a wait_for shorter than the
    # drain, say); the shutdown hooks used to be skipped then, leaving what startup hooks
    # acquired held for good.
    app = ServerApp(config=server_config.replace(close_timeout=1.0))
    hooks_ran = asyncio.Event()
    app.on_shutdown(hooks_ran.set)

    @app.route("/x")
    async def stay(session: WebTransportSession) -> None:
        await session.wait_closed()

    await app.start()
    host, port = app.local_address
    async with WebTransportClient(config=client_config) as client:
        await client.connect(f"https://{host}:{port}/x")  # keeps the drain waiting
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(app.close(drain_timeout=3.0), 0.5)
        await asyncio.wait_for(hooks_ran.wait(), 15)  # the close went on by itself, hooks last
        assert not app.server.is_serving
        await asyncio.wait_for(app.close(), 15)  # a later call waits for the same close
