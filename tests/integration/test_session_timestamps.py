"""A session's timestamps are the moments things happened, even on a quiet connection: the
engine's clock moves with packets, so every call that records a time hands it the time now.

Each test lets the connection go quiet for ``QUIET`` seconds (no packet: keep-alive PINGs
come every 15 s) before the call, then checks the recorded moment against the monotonic clock
read just before it: a moment taken from the last packet would be ``QUIET`` seconds early.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession

from .conftest import running_server

pytestmark = pytest.mark.timeout(60)

QUIET = 0.3  #: seconds the connection stays quiet (lets the clock move; synchronises nothing)
WAIT = 10.0  #: bounds a hang only


async def held(session: WebTransportSession) -> None:
    await session.wait_closed()


async def test_a_local_close_after_a_quiet_spell_is_stamped_when_it_happens(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with (running_server(server_config, {"/h": held}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/h")
        stats = session.stats
        await asyncio.sleep(QUIET)
        before = time.monotonic()
        await session.close()
        after = time.monotonic()
        assert stats.monotonic_ready_at is not None and stats.monotonic_closed_at is not None
        assert before <= stats.monotonic_closed_at <= after
        assert stats.uptime >= QUIET
        assert stats.closed_at is not None and stats.ready_at is not None
        assert stats.closed_at - stats.ready_at >= QUIET
        diagnostics = await session.diagnostics()
        assert diagnostics.closed_at is not None and diagnostics.ready_at is not None
        assert diagnostics.closed_at - diagnostics.ready_at >= QUIET
        assert (await session.get_summary())["uptime"] >= QUIET


async def test_closing_the_connection_after_a_quiet_spell_stamps_its_sessions_when_it_happens(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with running_server(server_config, {"/h": held}) as (_, base):
        client = WebTransportClient(config=client_config)
        async with client:
            session = await client.connect(f"{base}/h")
            await asyncio.sleep(QUIET)
            before = time.monotonic()
        stats = session.stats
        assert session.is_closed
        assert stats.monotonic_closed_at is not None and stats.monotonic_closed_at >= before
        assert stats.uptime >= QUIET


async def test_a_session_requested_on_a_quiet_connection_is_created_when_requested(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with (running_server(server_config, {"/h": held}) as (server, base),
                WebTransportClient(config=client_config) as client):
        first = await client.connect(f"{base}/h")
        connection = first.connection
        assert connection is not None
        host, port = server.local_address
        await asyncio.sleep(QUIET)
        before, wall_before = time.monotonic(), time.time()
        second = connection.request_session(path="/h", authority=f"{host}:{port}")
        snapshot = connection.protocol_handler.session_snapshot(second.session_id)
        assert snapshot is not None and snapshot.created_at >= before
        # The wall-clock views are within a small fraction of QUIET of the request.
        assert abs(second.stats.created_at - wall_before) < QUIET / 3
        assert abs((await second.diagnostics()).created_at - wall_before) < QUIET / 3
        await second.ready(timeout=WAIT)
        await second.close()


async def test_a_session_the_server_accepts_after_a_quiet_spell_is_ready_when_accepted(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    decided: list[float] = []
    ready_at: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()

    async def decider(session: WebTransportSession) -> bool:
        await asyncio.sleep(QUIET)  # deciding takes a while; nothing arrives meanwhile
        decided.append(time.monotonic())
        return True

    async def handler(session: WebTransportSession) -> None:
        ready_at.set_result(session.stats.monotonic_ready_at)
        await session.wait_closed()

    async with (WebTransportServer(config=server_config, handler=handler, decider=decider) as server,
                WebTransportClient(config=client_config) as client):
        host, port = server.local_address
        session = await client.connect(f"https://{host}:{port}/d")
        accepted = await asyncio.wait_for(ready_at, WAIT)
        assert accepted is not None and accepted >= decided[0]
        await session.close()
