"""ConnectionManager and SessionManager over real loopback connections and sessions."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.connection import WebTransportConnection
from pywebtransport.exceptions import ConnectionClosedError, SessionClosedError, SessionRejectedError
from pywebtransport.manager import (
    ConnectionLimitError,
    ConnectionManager,
    ResourceLimitError,
    SessionLimitError,
    SessionManager,
)
from pywebtransport.server import ServerApp, WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.types import ConnectionState, SessionState

from .conftest import eventually, running_server

pytestmark = pytest.mark.timeout(60)


def task_names() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks() if not task.done()}


async def open_sessions(client: WebTransportClient, base: str, count: int) -> list[WebTransportSession]:
    """``count`` sessions, each on its own connection (so all have session id 0)."""
    return [await client.connect(f"{base}/echo") for _ in range(count)]


def connection_of(session: WebTransportSession) -> WebTransportConnection:
    connection = session.connection
    assert connection is not None
    return connection


# ---------------------------------------------------------------------------- ConnectionManager


async def test_connection_manager_refuses_connections_outside_async_with(echo_server, client) -> None:
    _, base = echo_server
    (session,) = await open_sessions(client, base, 1)
    manager = ConnectionManager(max_connections=4)
    with pytest.raises(RuntimeError, match="not active") as info:
        await manager.add_connection(connection=connection_of(session))
    assert not isinstance(info.value, ResourceLimitError)
    assert (await manager.get_stats())["current_count"] == 0


async def test_connection_manager_add_get_and_remove(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 2)
    first, second = (connection_of(s) for s in sessions)
    async with ConnectionManager(max_connections=4) as manager:
        assert await manager.add_connection(connection=first) == first.connection_id
        assert await manager.add_connection(connection=second) == second.connection_id
        assert await manager.add_connection(connection=first) == first.connection_id  # again: no-op
        assert await manager.get_resource(resource_id=first.connection_id) is first
        assert await manager.get_resource(resource_id="no-such-id") is None
        assert await manager.get_all_resources() == [first, second]
        assert manager.get_connection_count() == 2

        removed = await manager.remove_connection(connection_id=first.connection_id)
        assert removed is first and not first.is_closed  # removing does not close
        assert await manager.remove_connection(connection_id=first.connection_id) is None
        assert await manager.get_all_resources() == [second]
        stats = await manager.get_stats()
        assert (stats["total_created"], stats["total_closed"], stats["current_count"]) == (2, 1, 1)


async def test_connection_manager_enforces_max_connections(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 3)
    connections = [connection_of(s) for s in sessions]
    async with ConnectionManager(max_connections=2) as manager:
        await manager.add_connection(connection=connections[0])
        await manager.add_connection(connection=connections[1])
        with pytest.raises(ConnectionLimitError, match="limit of 2") as info:
            await manager.add_connection(connection=connections[2])
        assert isinstance(info.value, RuntimeError) and info.value.limit == 2
        assert await manager.get_resource(resource_id=connections[2].connection_id) is None
        # Room again once one leaves.
        await manager.remove_connection(connection_id=connections[0].connection_id)
        await manager.add_connection(connection=connections[2])
        stats = await manager.get_stats()
        assert stats["current_count"] == 2 and stats["max_concurrent"] == 2 and stats["max_connections"] == 2


async def test_closed_connections_leave_the_manager_by_themselves(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 2)
    first, second = (connection_of(s) for s in sessions)
    async with ConnectionManager(max_connections=4) as manager:
        await manager.add_connection(connection=first)
        await manager.add_connection(connection=second)
        await first.close()
        await eventually(lambda: manager.get_connection_count() == 1)
        assert await manager.get_all_resources() == [second]
        stats = await manager.get_stats()
        assert stats["total_closed"] == 1 and stats["max_concurrent"] == 2
        with pytest.raises(ConnectionClosedError):  # a closed connection is not taken in
            await manager.add_connection(connection=first)


async def test_server_side_connections_leave_when_the_client_goes_away(server_config, client_config) -> None:
    manager = ConnectionManager(max_connections=8)
    added: asyncio.Queue[WebTransportConnection] = asyncio.Queue()

    async def handler(session: WebTransportSession) -> None:
        connection = connection_of(session)
        await manager.add_connection(connection=connection)
        await added.put(connection)
        await session.wait_closed()

    async with manager, running_server(server_config, {"/track": handler}) as (_, base):
        async with WebTransportClient(config=client_config) as client:
            await client.connect(f"{base}/track")
            await client.connect(f"{base}/track")
            server_side = [await asyncio.wait_for(added.get(), 5) for _ in range(2)]
            assert {c.connection_id for c in await manager.get_all_resources()} == {
                c.connection_id for c in server_side}
            assert all(not c.is_client for c in server_side)
            stats = await manager.get_stats()
            assert stats["states"][ConnectionState.CONNECTED.value] == 2
        # The client closed both connections: the server sees them lost and drops them.
        await eventually(lambda: manager.get_connection_count() == 0)
        stats = await manager.get_stats()
        assert (stats["total_created"], stats["total_closed"]) == (2, 2)


async def test_connection_manager_stats_break_down_states(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 2)
    async with ConnectionManager(max_connections=5) as manager:
        for session in sessions:
            await manager.add_connection(connection=connection_of(session))
        stats = await manager.get_stats()
        assert set(stats["states"]) == {state.value for state in ConnectionState}
        assert stats["states"]["connected"] == 2 and sum(stats["states"].values()) == 2
        assert stats["total_created"] == 2 and stats["total_closed"] == 0
        assert stats["current_count"] == 2 and stats["max_concurrent"] == 2
        assert stats["max_connections"] == 5 and stats["active"] is True


async def test_connection_manager_shutdown_closes_everything_and_stops_its_task(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 2)
    connections = [connection_of(s) for s in sessions]
    manager = ConnectionManager(max_connections=4, connection_cleanup_interval=0.05)
    async with manager:
        assert "pywebtransport-connection-cleanup" in task_names()
        for connection in connections:
            await manager.add_connection(connection=connection)
        await manager.shutdown()
        assert all(c.is_closed for c in connections)
        assert manager.get_connection_count() == 0 and not manager.is_active
        assert "pywebtransport-connection-cleanup" not in task_names()
        with pytest.raises(RuntimeError, match="shutting down"):
            await manager.add_connection(connection=connections[0])
    await manager.shutdown()  # idempotent
    with pytest.raises(RuntimeError):
        async with manager:
            pass


async def test_connection_manager_leaving_async_with_closes_connections(echo_server, client) -> None:
    _, base = echo_server
    (session,) = await open_sessions(client, base, 1)
    connection = connection_of(session)
    async with ConnectionManager(max_connections=1) as manager:
        await manager.add_connection(connection=connection)
    assert connection.is_closed
    assert session.is_closed
    assert (await manager.get_stats())["current_count"] == 0


# ---------------------------------------------------------------------------- SessionManager


def test_session_manager_is_one_class_with_the_documented_defaults() -> None:
    from pywebtransport import session as session_module

    assert session_module.SessionManager is SessionManager
    params = inspect.signature(SessionManager).parameters
    assert params["max_sessions"].default == 10000
    assert params["session_cleanup_interval"].default == 60.0
    manager = SessionManager.create()
    assert isinstance(manager, SessionManager)
    assert (manager.max_sessions, manager.session_cleanup_interval) == (10000, 60.0)
    custom = SessionManager.create(max_sessions=3, session_cleanup_interval=0.5)
    assert (custom.max_sessions, custom.session_cleanup_interval) == (3, 0.5)
    assert custom.get_session_count() == 0
    with pytest.raises(ValueError):
        SessionManager(max_sessions=0)
    with pytest.raises(ValueError):
        SessionManager(session_cleanup_interval=0)


async def test_session_manager_refuses_sessions_outside_async_with(echo_server, client) -> None:
    _, base = echo_server
    (session,) = await open_sessions(client, base, 1)
    with pytest.raises(RuntimeError, match="not active"):
        await SessionManager.create().add_session(session=session)


async def test_session_manager_lookups_with_repeated_session_ids(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 3)
    assert [s.session_id for s in sessions] == [0, 0, 0]  # one per connection: ids repeat
    async with SessionManager(max_sessions=10) as manager:
        for session in sessions:
            assert await manager.add_session(session=session) == 0
        assert await manager.add_session(session=sessions[0]) == 0  # again: no-op
        assert manager.get_session_count() == 3
        assert await manager.get_session(session_id=0) is sessions[0]  # the first added
        assert await manager.get_resource(resource_id=0) is sessions[0]
        assert await manager.get_session(session_id=0, connection_id=connection_of(sessions[2]).connection_id) \
            is sessions[2]
        assert await manager.get_session(session_id=4) is None
        assert await manager.get_sessions_by_id(session_id=0) == sessions
        assert await manager.get_all_sessions() == sessions
        assert await manager.get_all_resources() == sessions

        assert await manager.remove_session(session_id=0) is sessions[0]
        assert not sessions[0].is_closed  # removing does not close
        assert await manager.get_session(session_id=0) is sessions[1]
        removed = await manager.remove_session(session_id=0, connection_id=connection_of(sessions[2]).connection_id)
        assert removed is sessions[2]
        assert await manager.remove_session(session_id=9) is None
        assert await manager.get_all_sessions() == [sessions[1]]
        stats = await manager.get_stats()
        assert (stats["total_created"], stats["total_closed"], stats["current_count"]) == (3, 2, 1)


async def test_session_manager_enforces_max_sessions(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 3)
    async with SessionManager(max_sessions=2) as manager:
        await manager.add_session(session=sessions[0])
        await manager.add_session(session=sessions[1])
        with pytest.raises(SessionLimitError, match="limit of 2") as info:
            await manager.add_session(session=sessions[2])
        assert isinstance(info.value, RuntimeError)
        assert manager.get_session_count() == 2
        assert sessions[2] not in await manager.get_all_sessions()


async def test_sessions_leave_when_closed_locally_or_by_the_peer(server_config, client_config) -> None:
    close_now = asyncio.Event()

    async def closes_on_request(session: WebTransportSession) -> None:
        await close_now.wait()
        await session.close(error_code=7, reason="server says bye")

    async with SessionManager(max_sessions=10) as manager, \
            running_server(server_config, {"/bye": closes_on_request}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        local, remote = await client.connect(f"{base}/bye"), await client.connect(f"{base}/bye")
        await manager.add_session(session=local)
        await manager.add_session(session=remote)
        await local.close()
        assert await manager.get_all_sessions() == [remote]  # SESSION_CLOSED removed it
        close_now.set()
        await eventually(lambda: manager.get_session_count() == 0)
        assert remote.close_code == 7
        stats = await manager.get_stats()
        assert (stats["total_created"], stats["total_closed"], stats["current_count"]) == (2, 2, 0)
        with pytest.raises(SessionClosedError):
            await manager.add_session(session=local)


async def test_server_side_session_manager_tracks_handler_sessions(server_config, client_config) -> None:
    manager = SessionManager(max_sessions=10, session_cleanup_interval=5.0)
    entered = asyncio.Queue[WebTransportSession]()

    async def handler(session: WebTransportSession) -> None:
        await manager.add_session(session=session)
        await entered.put(session)
        await session.wait_closed()

    async with manager, running_server(server_config, {"/room": handler}) as (_, base):
        async with WebTransportClient(config=client_config) as client:
            for _ in range(3):
                await client.connect(f"{base}/room")
            server_sessions = [await asyncio.wait_for(entered.get(), 5) for _ in range(3)]
            assert manager.get_session_count() == 3
            assert await manager.get_sessions_by_id(session_id=0) == server_sessions
            assert await manager.get_sessions_by_state(state=SessionState.CONNECTED) == server_sessions
        await eventually(lambda: manager.get_session_count() == 0)


async def test_sessions_by_state_and_stats_follow_draining(server_config, client_config) -> None:
    drain_now = asyncio.Event()

    async def drains(session: WebTransportSession) -> None:
        await drain_now.wait()
        await session.drain()
        await session.wait_closed()

    async with SessionManager(max_sessions=10) as manager, \
            running_server(server_config, {"/drain": drains}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        sessions = [await client.connect(f"{base}/drain") for _ in range(2)]
        for session in sessions:
            await manager.add_session(session=session)
        assert await manager.get_sessions_by_state(state=SessionState.CONNECTED) == sessions
        assert await manager.get_sessions_by_state(state=SessionState.DRAINING) == []
        drain_now.set()
        await eventually(lambda: all(s.state is SessionState.DRAINING for s in sessions))
        assert await manager.get_sessions_by_state(state=SessionState.DRAINING) == sessions
        assert await manager.get_sessions_by_state(state=SessionState.CONNECTED) == []
        stats = await manager.get_stats()
        assert stats["states"] == {"connecting": 0, "connected": 0, "draining": 2, "closing": 0, "closed": 0}
        assert stats["max_sessions"] == 10 and stats["session_cleanup_interval"] == 60.0
        assert stats["max_concurrent"] == 2 and stats["total_created"] == 2


async def test_cleanup_task_sweeps_closed_sessions_on_its_interval(echo_server, client, monkeypatch) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 2)
    manager = SessionManager(max_sessions=10, session_cleanup_interval=0.05)
    # Without the event subscription only the periodic sweep can notice a closed session.
    monkeypatch.setattr(manager, "_closed_events", ())
    async with manager:
        assert "pywebtransport-session-cleanup" in task_names()
        for session in sessions:
            await manager.add_session(session=session)
        await sessions[0].close()
        assert manager.get_session_count() == 2  # not noticed yet
        await eventually(lambda: manager.get_session_count() == 1)
        assert await manager.get_all_sessions() == [sessions[1]]
        stats = await manager.get_stats()
        assert stats["cleanup_runs"] >= 1 and stats["total_closed"] == 1
    assert "pywebtransport-session-cleanup" not in task_names()


async def test_cleanup_closed_sessions_returns_how_many_it_dropped(echo_server, client, monkeypatch) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 3)
    manager = SessionManager(max_sessions=10)
    monkeypatch.setattr(manager, "_closed_events", ())  # leave closed sessions for the explicit sweep
    async with manager:
        for session in sessions:
            await manager.add_session(session=session)
        assert await manager.cleanup_closed_sessions() == 0
        await sessions[0].close()
        await sessions[2].close()
        assert await manager.get_sessions_by_state(state=SessionState.CLOSED) == [sessions[0], sessions[2]]
        assert await manager.cleanup_closed_sessions() == 2
        assert await manager.get_all_sessions() == [sessions[1]]
        assert await manager.cleanup_closed_sessions() == 0


async def test_close_all_sessions_closes_them_and_keeps_the_manager_usable(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 3)
    async with SessionManager(max_sessions=10) as manager:
        for session in sessions[:2]:
            await manager.add_session(session=session)
        await manager.close_all_sessions()
        assert all(s.is_closed for s in sessions[:2])
        assert manager.get_session_count() == 0
        await manager.add_session(session=sessions[2])
        assert await manager.get_all_sessions() == [sessions[2]]
        stats = await manager.get_stats()
        assert (stats["total_created"], stats["total_closed"], stats["current_count"]) == (3, 2, 1)


async def test_session_manager_shutdown_cancels_cleanup_and_closes_sessions(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 2)
    manager = SessionManager.create(session_cleanup_interval=0.05)
    async with manager:
        for session in sessions:
            await manager.add_session(session=session)
        assert "pywebtransport-session-cleanup" in task_names()
        await manager.shutdown()
        assert "pywebtransport-session-cleanup" not in task_names()
        assert all(s.is_closed for s in sessions)
        assert manager.get_session_count() == 0 and not manager.is_active
        with pytest.raises(RuntimeError, match="shutting down"):
            await manager.add_session(session=sessions[0])
    stats = await manager.get_stats()
    assert stats["active"] is False and stats["total_closed"] == 2


async def test_leaving_async_with_shuts_the_session_manager_down(echo_server, client) -> None:
    _, base = echo_server
    (session,) = await open_sessions(client, base, 1)
    async with SessionManager(max_sessions=1) as manager:
        await manager.add_session(session=session)
    assert session.is_closed and manager.get_session_count() == 0


async def test_concurrent_adds_respect_the_limit(echo_server, client) -> None:
    _, base = echo_server
    sessions = await open_sessions(client, base, 4)
    async with SessionManager(max_sessions=2) as manager:
        results = await asyncio.gather(*(manager.add_session(session=s) for s in sessions), return_exceptions=True)
        assert sum(isinstance(r, SessionLimitError) for r in results) == 2
        assert manager.get_session_count() == 2
        assert (await manager.get_stats())["max_concurrent"] == 2


def test_connection_manager_validates_its_settings() -> None:
    with pytest.raises(ValueError):
        ConnectionManager(max_connections=0)
    with pytest.raises(ValueError):
        ConnectionManager(max_connections=1, connection_cleanup_interval=-1)
    assert ConnectionManager(max_connections=3).max_connections == 3


# ---------------------------------------------------------------------------- server admission


async def test_a_full_session_manager_refuses_requests_with_503_before_accepting(server_config,
                                                                                 client_config) -> None:
    entered = asyncio.Queue[WebTransportSession]()

    async def handler(session: WebTransportSession) -> None:
        await entered.put(session)
        await session.wait_closed()

    async with SessionManager(max_sessions=2) as manager:
        server = WebTransportServer(config=server_config, session_manager=manager)
        server.add_route("/room", handler)
        async with server, WebTransportClient(config=client_config) as client:
            host, port = server.local_address
            url = f"https://{host}:{port}/room"
            first, _second = await client.connect(url), await client.connect(url)
            server_sessions = [await asyncio.wait_for(entered.get(), 5) for _ in range(2)]
            assert await manager.get_all_sessions() == server_sessions

            with pytest.raises(SessionRejectedError) as info:
                await client.connect(url)
            assert info.value.status_code == 503  # refused, never accepted and then failed
            assert entered.empty() and manager.get_session_count() == 2
            stats = server.get_stats()
            assert (stats["sessions_accepted"], stats["sessions_rejected"]) == (2, 1)

            await first.close()
            await asyncio.wait_for(server_sessions[0].wait_closed(), 5)
            assert manager.get_session_count() == 1  # its slot is free again
            third = await client.connect(url)
            assert third.is_ready
            assert await asyncio.wait_for(entered.get(), 5) in await manager.get_all_sessions()


async def test_an_inactive_session_manager_refuses_with_the_configured_status(server_config, client) -> None:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    manager = SessionManager(max_sessions=5)  # never entered: it accepts nothing
    app = ServerApp(config=server_config, session_manager=manager)
    app.add_route("/room", handler)
    async with app:
        host, port = app.local_address
        with pytest.raises(SessionRejectedError) as info:
            await client.connect(f"https://{host}:{port}/room")
        assert info.value.status_code == 503
    server = WebTransportServer(config=server_config, session_manager=manager, session_limit_status=429)
    server.add_route("/room", handler)
    async with server:
        host, port = server.local_address
        with pytest.raises(SessionRejectedError) as info:
            await client.connect(f"https://{host}:{port}/room")
        assert info.value.status_code == 429
    with pytest.raises(ValueError):
        WebTransportServer(config=server_config, session_manager=manager, session_limit_status=200)
