"""Deciding on session requests over real loopback: what a decider or a middleware may
answer, and how long a decision may take (it ends with its request, and at connect_timeout)."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection import WebTransportConnection
from pywebtransport.exceptions import SessionRejectedError, WebTransportError
from pywebtransport.server import Reject, ServerApp, SessionRequest, WebTransportServer
from pywebtransport.session import WebTransportSession

from .conftest import eventually

pytestmark = pytest.mark.timeout(90)

SERVER_LOGGER = "pywebtransport.server.server"
APP_LOGGER = "pywebtransport.server.app"

#: Answers that are not verdicts, for a decider and a middleware alike: statuses that cannot
#: refuse a request (2xx, 0, over 599), and values that are not statuses at all.
NOT_VERDICTS: list[object] = [200, 0, 299, 600, 999, -403, "403", 3.5, b"403", object()]


async def status_of(client: WebTransportClient, url: str) -> int:
    """The status the server answered ``url`` with (200 when it accepted the session)."""
    try:
        session = await client.connect(url)
    except SessionRejectedError as exc:
        return exc.status_code
    await session.close()
    return 200


async def wait_closed_handler(session: WebTransportSession) -> None:
    await session.wait_closed()


@pytest.fixture
async def impatient_client(client_config: ClientConfig) -> AsyncIterator[WebTransportClient]:
    """A client that gives up on a CONNECT within 5 s: an unanswered request fails the test
    soon instead of waiting out the default."""
    async with WebTransportClient(config=client_config.replace(connect_timeout=5.0)) as c:
        yield c


class Hung:
    """A decider (or middleware) that never answers; it says when it was asked and when it
    was cancelled."""

    def __init__(self) -> None:
        self.asked = asyncio.Queue[WebTransportSession]()
        self.cancelled = asyncio.Queue[str]()

    async def decide(self, session: WebTransportSession) -> int | None:
        await self.asked.put(session)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.put_nowait(session.path)
            raise
        return None  # pragma: no cover - never reached

    async def middleware(self, request: SessionRequest) -> int | None:
        return await self.decide(request.session)


@asynccontextmanager
async def serving(config: ServerConfig, decider: Callable[[WebTransportSession], Awaitable[object]],
                  ) -> AsyncIterator[tuple[WebTransportServer, str]]:
    server = WebTransportServer(config=config, handler=wait_closed_handler, decider=decider)  # type: ignore[arg-type]
    async with server:
        host, port = server.local_address
        yield server, f"https://{host}:{port}"


# ---------------------------------------------------------------------------- verdicts


async def test_a_decider_answer_that_is_not_a_verdict_is_rejected_with_500_and_logged(
        server_config, impatient_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")
    bad: dict[str, object] = {f"/bad/{i}": value for i, value in enumerate(NOT_VERDICTS)}
    good: dict[str, object] = {"/true": True, "/none": None, "/false": False, "/401": 401, "/307": 307, "/599": 599}
    answers = {**bad, **good}

    async def decider(session: WebTransportSession) -> object:
        return answers[session.path]

    async with serving(server_config, decider) as (server, base):
        got = {path: await status_of(impatient_client, base + path) for path in answers}
        assert server.sessions_rejected == len(answers) - 2
    # The documented verdicts keep their meaning; anything else fails closed.
    assert {path: got[path] for path in good} == {
        "/true": 200, "/none": 200, "/false": 403, "/401": 401, "/307": 307, "/599": 599}
    assert {path: got[path] for path in bad} == dict.fromkeys(bad, 500)
    logged = [r for r in caplog.records if r.name == SERVER_LOGGER and r.levelno == logging.ERROR]
    for record, (path, value) in zip(logged, bad.items(), strict=True):
        message = record.getMessage()
        assert path in message and repr(value) in message and "rejecting with 500" in message
        assert record.exc_info is None  # a wrong answer is not an exception: no traceback


async def test_a_middleware_answer_that_is_not_a_verdict_is_rejected_with_500_and_logged(
        server_config, impatient_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")
    # A bool is no middleware verdict either: True must not wave the request past the
    # middleware after it, and False is not a status.
    answers = [*NOT_VERDICTS, True, False]
    later: list[str] = []

    async def answering(request: SessionRequest) -> object:
        return answers[int(request.params["index"])]

    async def after(request: SessionRequest) -> None:
        later.append(request.path)

    app = ServerApp(config=server_config, middleware=[answering, after])  # type: ignore[list-item]

    @app.route("/answer/{index}")
    async def answer(session: WebTransportSession, index: str) -> None:
        await session.wait_closed()

    async with app:
        host, port = app.local_address
        got = [await status_of(impatient_client, f"https://{host}:{port}/answer/{i}") for i in range(len(answers))]
    assert got == [500] * len(answers)
    assert later == []
    logged = [r for r in caplog.records if r.name == APP_LOGGER and r.levelno == logging.ERROR]
    for i, (record, value) in enumerate(zip(logged, answers, strict=True)):
        message = record.getMessage()
        assert f"/answer/{i}" in message and repr(value) in message and "rejected with 500" in message


async def test_middleware_statuses_and_reject_still_refuse_with_their_status(server_config, impatient_client) -> None:
    async def refusing(request: SessionRequest) -> int | None:
        kind, status = request.params["kind"], int(request.params["status"])
        if kind == "raise":
            raise Reject(status)
        return status

    app = ServerApp(config=server_config, middleware=[refusing])

    @app.route("/{kind}/{status}")
    async def refused(session: WebTransportSession, kind: str, status: str) -> None:
        await session.wait_closed()

    async with app:
        host, port = app.local_address
        base = f"https://{host}:{port}"
        got = [await status_of(impatient_client, f"{base}/{kind}/{status}")
               for kind in ("return", "raise") for status in (300, 429, 599)]
    assert got == [300, 429, 599] * 2


@pytest.mark.parametrize("status", [42, 200, 299, 600, 0, -1, True, "403", 403.0, None])
def test_reject_refuses_a_status_that_cannot_refuse_a_request(status: object) -> None:
    with pytest.raises(ValueError, match=r"Reject needs an int HTTP status in 300-599, got"):
        Reject(status)  # type: ignore[arg-type]


def test_reject_keeps_a_valid_status_and_its_reason() -> None:
    exc = Reject(503, "come back later")
    assert (exc.status, str(exc)) == (503, "come back later")
    assert str(Reject(300)) == "rejected with 300"


# ---------------------------------------------------------------------------- bounded decisions


async def test_a_hung_decider_is_cancelled_when_the_client_withdraws_its_request(
        server_config, client: WebTransportClient) -> None:
    hung = Hung()

    async def decider(session: WebTransportSession) -> int | None:
        return None if session.path == "/fast" else await hung.decide(session)

    async with serving(server_config, decider) as (server, base):
        first = await client.connect(f"{base}/fast")
        connection = first.connection
        assert connection is not None
        host, port = server.local_address
        opening = asyncio.ensure_future(connection.open_session(path="/waiting", authority=f"{host}:{port}"))
        asked = await asyncio.wait_for(hung.asked.get(), 10)
        opening.cancel()  # the client gives up on this session; its connection stays
        with pytest.raises(asyncio.CancelledError):
            await opening
        assert await asyncio.wait_for(hung.cancelled.get(), 10) == "/waiting"
        assert asked.is_closed and not connection.is_closed
        await eventually(lambda: server.get_stats()["tasks"] == 1)  # the handler of /fast
        assert (server.sessions_accepted, server.sessions_rejected) == (1, 0)
        await first.close()


async def test_hung_deciders_of_clients_that_left_hold_no_task_and_no_connection(
        server_config, client_config) -> None:
    hung = Hung()
    clients = 5
    connections: list[weakref.ref[WebTransportConnection]] = []
    async with serving(server_config, hung.decide) as (server, base):
        for _ in range(clients):
            async with WebTransportClient(config=client_config) as leaving:
                attempt = asyncio.ensure_future(leaving.connect(f"{base}/waiting"))
                asked = await asyncio.wait_for(hung.asked.get(), 10)
                connection = asked.connection
                assert connection is not None
                connections.append(weakref.ref(connection))
                del asked, connection
            # Leaving the client closed its connection under the request.
            with pytest.raises(WebTransportError):  # the client was closed while connecting
                await attempt
        cancelled = [await asyncio.wait_for(hung.cancelled.get(), 10) for _ in range(clients)]
        assert cancelled == ["/waiting"] * clients
        await eventually(lambda: server.get_stats()["tasks"] == 0)

        def all_collected() -> bool:
            gc.collect()
            return all(ref() is None for ref in connections)

        await eventually(all_collected, interval=0.1)
        assert (server.sessions_accepted, server.sessions_rejected) == (0, 0)


async def test_decisions_cut_short_together_log_one_warning_that_counts_the_rest(
        server_config, client_config, caplog) -> None:
    # A client can make requests that time out as fast as it likes; each had logged a
    # WARNING of its own (100 per connection in a bug hunt's run).
    caplog.set_level(logging.INFO, logger="pywebtransport")
    hung = Hung()
    config = server_config.replace(connect_timeout=0.5)
    async with (WebTransportClient(config=client_config.replace(connect_timeout=30.0)) as client,
                serving(config, hung.decide) as (server, base)):
        statuses = await asyncio.gather(*(status_of(client, f"{base}/slow") for _ in range(5)))
        stats = server.get_stats()
    assert statuses == [503] * 5 and stats["sessions_rejected"] == 5
    warnings = [r.getMessage() for r in caplog.records if r.name == SERVER_LOGGER and r.levelno == logging.WARNING]
    # All five time out within a second of each other: one line (two if they straddle the
    # end of that second, the second one counting those held back).
    assert 1 <= len(warnings) <= 2, warnings


@pytest.mark.parametrize("layer", ["decider", "middleware"])
async def test_a_decision_longer_than_connect_timeout_is_rejected_with_503_and_cancelled(
        server_config, client_config, caplog, layer: str) -> None:
    caplog.set_level(logging.INFO, logger="pywebtransport")
    hung = Hung()
    config = server_config.replace(connect_timeout=1.0)
    async with WebTransportClient(config=client_config.replace(connect_timeout=30.0)) as client:
        if layer == "decider":
            async with serving(config, hung.decide) as (server, base):
                status = await status_of(client, f"{base}/slow")
                stats = server.get_stats()
        else:
            app = ServerApp(config=config, middleware=[hung.middleware])
            app.add_route("/slow", wait_closed_handler)
            async with app:
                host, port = app.local_address
                status = await status_of(client, f"https://{host}:{port}/slow")
                stats = app.server.get_stats()
    assert status == 503
    assert await asyncio.wait_for(hung.cancelled.get(), 10) == "/slow"
    assert (stats["sessions_rejected"], stats["sessions_accepted"]) == (1, 0)
    warnings = [r for r in caplog.records if r.name == SERVER_LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "/slow" in warnings[0].getMessage() and "503" in warnings[0].getMessage()
    assert "connect_timeout" in warnings[0].getMessage()
