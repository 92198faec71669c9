"""Requests whose decision goes wrong or comes late are still answered, and answered no.

- A decider or middleware that ends by a CancelledError of its own (it awaited something its
  owner cancelled) is a bug like any exception: the request is rejected with 500 at once and
  the bug logged. The request used to go unanswered until the client's own timeout.
- A decision that lands while the server closes (``close(drain_timeout=...)``) no longer
  accepts the request and starts its handler: it is refused with 503.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from pywebtransport import ClientConfig, ServerConfig, WebTransportClient, WebTransportServer, WebTransportSession
from pywebtransport.events import EventType
from pywebtransport.exceptions import SessionRejectedError, WebTransportError
from pywebtransport.server import ServerApp, SessionRequest

pytestmark = pytest.mark.timeout(60)


async def cancelled_helper() -> None:
    helper: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    helper.cancel()  # e.g. a shared lookup that its owner cancelled
    await helper


async def stay(session: WebTransportSession) -> None:
    await session.wait_closed()


async def status_within(client: WebTransportClient, url: str, seconds: float) -> int:
    try:
        session = await asyncio.wait_for(client.connect(url), seconds)
    except SessionRejectedError as exc:
        return exc.status_code
    await session.close()
    return 200


async def test_a_decider_ending_by_its_own_cancelled_error_is_rejected_with_500(
        server_config: ServerConfig, client_config: ClientConfig, caplog: pytest.LogCaptureFixture) -> None:
    async def decider(session: WebTransportSession) -> bool:
        await cancelled_helper()
        return True

    # connect_timeout bounds the decision at 5 s; the answer (500) is due at once.
    server = WebTransportServer(config=server_config.replace(connect_timeout=5.0), decider=decider)
    server.add_route("/x", stay)
    caplog.set_level(logging.ERROR, logger="pywebtransport.server.server")
    async with server, WebTransportClient(config=client_config.replace(connect_timeout=20.0)) as client:
        host, port = server.local_address
        assert await status_within(client, f"https://{host}:{port}/x", 4.0) == 500  # TimeoutError today
        assert server.sessions_rejected == 1
    assert any("decider" in r.getMessage() for r in caplog.records)


async def test_a_middleware_ending_by_its_own_cancelled_error_is_rejected_with_500(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async def middleware(request: SessionRequest) -> int | None:
        await cancelled_helper()
        return None

    app = ServerApp(config=server_config.replace(connect_timeout=5.0), middleware=[middleware])
    app.add_route("/x", stay)
    async with app, WebTransportClient(config=client_config.replace(connect_timeout=20.0)) as client:
        host, port = app.local_address
        assert await status_within(client, f"https://{host}:{port}/x", 4.0) == 500
        await app.close(drain_timeout=0)


async def test_a_request_decided_after_close_began_is_not_accepted(server_config: ServerConfig,
                                                                  client_config: ClientConfig) -> None:
    asked = asyncio.Event()
    answer = asyncio.Event()
    handled: list[str] = []

    async def decider(session: WebTransportSession) -> bool:
        if session.path == "/late":
            asked.set()
            await answer.wait()
        return True

    async def handler(session: WebTransportSession) -> None:
        handled.append(session.path)
        await session.wait_closed()

    server = WebTransportServer(config=server_config.replace(close_timeout=1.0), decider=decider)
    server.add_route("/early", handler)
    server.add_route("/late", handler)
    await server.start()
    host, port = server.local_address
    async with WebTransportClient(config=client_config) as client:
        early = await client.connect(f"https://{host}:{port}/early")  # keeps the drain waiting
        late = asyncio.ensure_future(client.connect(f"https://{host}:{port}/late"))
        await asyncio.wait_for(asked.wait(), 10)
        closing = asyncio.ensure_future(server.close(drain_timeout=3.0))
        draining = asyncio.Event()
        early.events.on(EventType.SESSION_DRAINING, lambda _e: draining.set())
        await asyncio.wait_for(draining.wait(), 10)  # the close is under way: the drain was sent
        assert not server.is_serving
        answer.set()  # the decision lands during the drain
        outcome: object
        try:
            outcome = await asyncio.wait_for(late, 10)
        except WebTransportError as exc:
            outcome = exc
        await asyncio.wait_for(closing, 20)
        assert handled == ["/early"], f"a handler was started after close() began: {handled}"
        assert server.sessions_accepted == 1
        assert isinstance(outcome, WebTransportError), f"the late request was accepted: {outcome!r}"
