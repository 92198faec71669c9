"""Bounded buffered bytes over real UDP (issue #10): per connection and per server.

A peer that stops reading must not make us hold more than ``max_connection_send_buffer``
for one connection, or ``max_server_send_buffer`` for all of a server's connections; the
writers resume and every byte arrives once the peer reads. Early streams of all a server's
connections share ``max_server_receive_buffer``.

These need the server to hand its ``SharedBudgets`` to each connection's engine and the
connection to pass ``max_connection_send_buffer`` on (the wiring in server.py and
connection.py); the engine-level tests are in tests/unit/protocol/test_engine_budgets.py.
"""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport import constants as c
from pywebtransport._wire import frames
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection import WebTransportConnection
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream, WebTransportSendStream

from .conftest import eventually, running_server

pytestmark = pytest.mark.timeout(60)

KIB = 1024
WAIT = 10.0


def engine_of(connection: WebTransportConnection | None):  # type: ignore[no-untyped-def]
    assert connection is not None
    return connection.protocol_handler


def pattern(index: int, size: int) -> bytes:
    """``size`` bytes that differ from stream to stream."""
    return (index.to_bytes(2, "big") + b"-payload") * (size // 10) + b"!" * (size % 10)


async def test_fifty_streams_blocked_by_a_peer_that_does_not_read_hold_at_most_the_connection_bound(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    bound, window, size, count = 256 * KIB, 16 * KIB, 96 * KIB, 50
    reading = asyncio.Event()
    received: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()

    async def lazy_reader(session: WebTransportSession) -> None:
        streams = [await session.accept_unidirectional_stream(timeout=WAIT) for _ in range(count)]
        await reading.wait()

        async def drain_one(stream: WebTransportReceiveStream) -> None:
            await received.put((stream.stream_id, await stream.read()))

        await asyncio.gather(*(drain_one(stream) for stream in streams))
        await session.wait_closed()

    async with running_server(server_config.replace(stream_buffer_size=window), {"/r": lazy_reader}) as (_, base), \
            WebTransportClient(config=client_config.replace(max_connection_send_buffer=bound)) as client:
        session = await client.connect(f"{base}/r")
        engine = engine_of(session.connection)
        streams: list[WebTransportSendStream] = [await session.create_unidirectional_stream() for _ in range(count)]
        payloads = {stream.stream_id: pattern(index, size) for index, stream in enumerate(streams)}
        writers = [asyncio.ensure_future(stream.write_all(payloads[stream.stream_id], end_stream=True))
                   for stream in streams]
        try:
            # The peer holds one window per stream and reads nothing: once the connection
            # holds its bound, the writers wait (a few may have queued all of theirs).
            await eventually(lambda: engine.send_buffer_room() == 0, WAIT)
            done, _ = await asyncio.wait(writers, timeout=0.5)
            assert len(done) <= bound // (size - window)
            held = sum(engine.stream_send_buffered(stream.stream_id) for stream in streams)  # QUIC's own buffers
            assert held <= bound
            assert engine.send_buffered_total <= bound
            assert engine.send_buffered_peak <= bound

            reading.set()
            await asyncio.wait_for(asyncio.gather(*writers), WAIT)
            got = dict([await asyncio.wait_for(received.get(), WAIT) for _ in range(count)])
            assert got == payloads
            assert engine.send_buffered_peak <= bound
        finally:
            for writer in writers:
                writer.cancel()
            await asyncio.gather(*writers, return_exceptions=True)


async def test_the_server_send_budget_bounds_all_its_connections_together(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    budget_limit, bound, size, per_client = 256 * KIB, 192 * KIB, 96 * KIB, 6
    async def pusher(session: WebTransportSession) -> None:
        streams = [await session.create_unidirectional_stream() for _ in range(per_client)]
        await asyncio.gather(*(stream.write_all(pattern(i, size), end_stream=True) for i, stream in enumerate(streams)))
        await session.wait_closed()

    config = server_config.replace(max_server_send_buffer=budget_limit, max_connection_send_buffer=bound)
    lazy = client_config.replace(stream_buffer_size=16 * KIB)
    async with running_server(config, {"/p": pusher}) as (server, base), \
            WebTransportClient(config=lazy) as one, WebTransportClient(config=lazy) as two:
        sessions = [await one.connect(f"{base}/p"), await two.connect(f"{base}/p")]
        await eventually(lambda: len(server.connections) == 2, WAIT)
        engines = [engine_of(connection) for connection in server.connections]
        budget = engines[0].budgets.send
        assert budget is not None and budget is engines[1].budgets.send  # one budget, shared
        assert budget.limit == budget_limit
        # Both clients hold their windows and read nothing: the server's writers wait.
        await eventually(lambda: all(engine.send_buffer_room() == 0 for engine in engines), WAIT)
        headers = 2 * per_client * 3  # stream headers may be written while the budget is spent
        assert budget.peak <= budget_limit + headers
        assert all(engine.send_buffered_peak <= bound for engine in engines)
        assert budget.used == sum(engine.send_buffered_total for engine in engines)

        async def read_all(session: WebTransportSession) -> dict[bytes, int]:
            streams = [await session.accept_unidirectional_stream(timeout=WAIT) for _ in range(per_client)]
            return {await stream.read(): stream.stream_id for stream in streams}

        results = await asyncio.wait_for(asyncio.gather(*(read_all(s) for s in sessions)), WAIT)
        for got in results:
            assert set(got) == {pattern(i, size) for i in range(per_client)}
        assert budget.peak <= budget_limit + headers
        for session in sessions:
            await session.close()
        await eventually(lambda: not server.connections or budget.used == 0, WAIT)


async def test_budget_freed_by_one_connection_wakes_writers_of_another_at_once(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    budget_limit, size, per_client = 128 * KIB, 96 * KIB, 6

    async def pusher(session: WebTransportSession) -> None:
        streams = [await session.create_unidirectional_stream() for _ in range(per_client)]
        base = 0 if session.path == "/one" else 100
        await asyncio.gather(*(stream.write_all(pattern(base + i, size), end_stream=True)
                               for i, stream in enumerate(streams)))
        await session.wait_closed()

    async def read_all(session: WebTransportSession) -> set[bytes]:
        streams = [await session.accept_unidirectional_stream(timeout=WAIT) for _ in range(per_client)]
        return {await stream.read() for stream in streams}

    config = server_config.replace(max_server_send_buffer=budget_limit, max_connection_send_buffer=4 * budget_limit)
    lazy = client_config.replace(stream_buffer_size=16 * KIB)
    async with running_server(config, {"/one": pusher, "/two": pusher}) as (server, base), \
            WebTransportClient(config=lazy) as one, WebTransportClient(config=lazy) as two:
        first = await one.connect(f"{base}/one")
        await eventually(lambda: len(server.connections) == 1, WAIT)
        first_engine = engine_of(server.connections[0])
        budget = first_engine.budgets.send
        assert budget is not None
        await eventually(lambda: first_engine.send_buffer_room() == 0, WAIT)  # its peer reads nothing
        # ... and what it sent is acknowledged: no later ACK frees budget for the second.
        await eventually(lambda: first_engine.quic.rtt().bytes_in_flight == 0, WAIT)
        second = await two.connect(f"{base}/two")
        await eventually(lambda: len(server.connections) == 2, WAIT)
        second_engine = engine_of(next(c for c in server.connections if engine_of(c) is not first_engine))
        second_reader = asyncio.ensure_future(read_all(second))
        try:
            # The second peer reads all it gets; the server's writers to it wait for budget
            # that the first connection holds, and its own bytes are all acknowledged: no
            # packet of its own will come to wake them.
            await eventually(lambda: second_engine.send_buffered_total == 0 and second_engine.send_buffer_room() == 0,
                             WAIT)
            assert not second_reader.done()
            # The first peer reads: its acknowledgements free the budget, and the writers of
            # the second connection are told at once (not at its next keep-alive).
            assert await asyncio.wait_for(read_all(first), WAIT) == {pattern(i, size) for i in range(per_client)}
            assert await asyncio.wait_for(second_reader, WAIT) == {pattern(100 + i, size) for i in range(per_client)}
            # Payload never passes the budget; the second connection's stream headers (3 bytes
            # each) were written while it was spent: opening a stream does not wait for room.
            assert budget.peak <= budget_limit + per_client * 3
        finally:
            second_reader.cancel()
            await asyncio.gather(second_reader, return_exceptions=True)


async def test_early_streams_of_all_connections_share_the_server_receive_budget(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    budget_limit = 6 * KIB

    async def hold(session: WebTransportSession) -> None:
        await session.wait_closed()

    config = server_config.replace(max_server_receive_buffer=budget_limit)
    async with running_server(config, {"/hold": hold}) as (server, base), \
            WebTransportClient(config=client_config) as one, WebTransportClient(config=client_config) as two:
        sessions = [await client.connect(f"{base}/hold") for client in (one, two)]
        await eventually(lambda: len(server.connections) == 2, WAIT)
        server_engines = [engine_of(connection) for connection in server.connections]
        budget = server_engines[0].budgets.receive
        assert budget is not None and budget is server_engines[1].budgets.receive
        assert budget.limit == budget_limit
        connections = [session.connection for session in sessions]

        def early_stream(connection: WebTransportConnection | None, size: int) -> None:
            """Bytes for a session the client has not asked for yet (the next request
            stream): the server must hold them as an early stream (draft-15 §4.6)."""
            assert connection is not None
            quic = engine_of(connection).quic
            session_id = quic.next_stream_id(is_unidirectional=False)
            stream_id = quic.get_next_available_stream_id(is_unidirectional=True)
            header = frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, session_id)
            quic.send_stream_data(stream_id, header + b"e" * size)
            connection.schedule_flush()

        early_stream(connections[0], 4 * KIB)
        await eventually(lambda: budget.used == 4 * KIB, WAIT)
        early_stream(connections[1], 3 * KIB)  # 4 + 3 KiB: over the server's budget
        await eventually(lambda: budget.refusals == 1, WAIT)
        assert budget.used == 4 * KIB
        assert sorted(engine.receive_budget_refusals for engine in server_engines) == [0, 1]
        assert all(engine.early_stream_count <= 1 for engine in server_engines)
        # The connection holding the budget goes away: it is returned.
        assert connections[0] is not None
        await connections[0].close()
        await eventually(lambda: budget.used == 0, WAIT)
        early_stream(connections[1], 3 * KIB)
        await eventually(lambda: budget.used == 3 * KIB, WAIT)
        assert budget.refusals == 1
