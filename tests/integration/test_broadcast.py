"""Broadcast over real loopback: datagrams and streams to many sessions, one of them slow."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pywebtransport.broadcast import BroadcastResult, StreamBroadcaster, broadcast
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import SessionClosedError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream

from .conftest import running_server

pytestmark = pytest.mark.timeout(90)

MESSAGE = 16 * 1024


@asynccontextmanager
async def audience(server_config: ServerConfig, client_config: ClientConfig,
                   count: int) -> AsyncIterator[tuple[list[WebTransportSession], list[WebTransportSession]]]:
    """``count`` client sessions, each on its own connection, and their server-side twins (in
    the same order); the server's handler keeps each session open until the client leaves."""
    arrived = asyncio.Queue[WebTransportSession]()

    async def stay(session: WebTransportSession) -> None:
        await arrived.put(session)
        await session.wait_closed()

    async with running_server(server_config, {"/room": stay}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        clients, servers = [], []
        for _ in range(count):
            clients.append(await client.connect(f"{base}/room"))
            servers.append(await asyncio.wait_for(arrived.get(), 10))
        yield clients, servers


def message(seq: int) -> bytes:
    """A self-delimiting message: its sequence number, then filler to MESSAGE bytes."""
    return struct.pack("!I", seq) + bytes([seq % 251]) * (MESSAGE - 4)


# ---------------------------------------------------------------------------- datagrams


async def test_datagram_broadcast_reaches_everyone_and_counts_closed_sessions(server_config,
                                                                              client_config) -> None:
    async with audience(server_config, client_config, 5) as (clients, servers):
        result = broadcast(servers, "hello, room")  # str: encoded once, UTF-8
        assert (result.sent, result.dropped, result.failed, result.total) == (5, 0, 0, 5)
        for session in clients[:4]:  # the fifth is slow: it never reads its datagrams
            assert await session.datagrams.receive(timeout=10) == b"hello, room"

        await clients[0].close()
        await asyncio.wait_for(servers[0].wait_closed(), 10)
        result = broadcast(servers, b"after a leave")
        assert (result.sent, result.dropped, result.failed) == (4, 0, 1)
        (gone, error), = result.failures
        assert gone is servers[0] and isinstance(error, SessionClosedError)
        for session in clients[1:4]:
            assert await session.datagrams.receive(timeout=10) == b"after a leave"


async def test_a_datagram_burst_drops_what_the_queue_cannot_take_instead_of_blocking(server_config,
                                                                                     client_config) -> None:
    async with audience(server_config, client_config, 3) as (_clients, servers):
        rounds = 3000
        # No await between the calls: nothing is transmitted meanwhile, so the send queues fill.
        results = [broadcast(servers, b"x" * 100) for _ in range(rounds)]
        sent = sum(r.sent for r in results)
        dropped = sum(r.dropped for r in results)
        assert sum(r.failed for r in results) == 0
        assert sent + dropped == 3 * rounds
        assert sent >= 3 and dropped > 0
        assert results[0] == BroadcastResult(sent=3)  # the first ones fit
        assert results[-1].dropped == 3  # the last ones found every queue full


# ---------------------------------------------------------------------------- streams


async def read_messages(stream: WebTransportReceiveStream, into: asyncio.Queue[int]) -> None:
    while True:
        try:
            chunk = await stream.readexactly(MESSAGE)
        except asyncio.IncompleteReadError as exc:
            assert exc.partial == b""  # messages are written whole or not at all
            return
        seq = struct.unpack("!I", chunk[:4])[0]
        assert chunk == message(seq)
        await into.put(seq)


async def test_stream_broadcast_drops_for_a_slow_receiver_only(server_config, client_config) -> None:
    # A small receive window makes the reader that never reads block its stream quickly.
    client_config = client_config.replace(stream_buffer_size=128 * 1024)
    async with audience(server_config, client_config, 5) as (clients, servers), \
            StreamBroadcaster(max_buffer=64 * 1024) as broadcaster:
        fast, slow = clients[:4], clients[4]
        received = [asyncio.Queue[int]() for _ in fast]
        readers: list[asyncio.Task[None]] = []
        rounds = 64
        results = []
        for seq in range(rounds):
            # It never waits for anyone: the slow receiver reads nothing until all rounds were
            # sent, so a send that waited for its room would never return (the bound only
            # stops such a hang; a clock comparison would fail on a loaded machine instead).
            results.append(await asyncio.wait_for(broadcaster.send(servers, message(seq)), 10))
            if seq == 0:
                for session, queue in zip(fast, received, strict=True):
                    stream = await session.accept_stream(timeout=10)
                    assert isinstance(stream, WebTransportReceiveStream)
                    readers.append(asyncio.ensure_future(read_messages(stream, queue)))
            for queue in received:
                assert await asyncio.wait_for(queue.get(), 10) == seq  # every fast reader, in order

        assert all(r.failed == 0 and r.total == 5 for r in results)
        dropped = sum(r.dropped for r in results)
        assert dropped > 0  # all of them for the slow receiver: the fast ones got every message
        slow_sent = sum(r.sent for r in results) - rounds * len(fast)
        assert slow_sent + dropped == rounds
        assert broadcaster.stream_count == 5

        await broadcaster.close()  # FIN on every stream, after what each was given
        late = asyncio.Queue[int]()
        stream = await slow.accept_stream(timeout=10)
        assert isinstance(stream, WebTransportReceiveStream)
        await asyncio.wait_for(read_messages(stream, late), 30)
        seqs = [late.get_nowait() for _ in range(late.qsize())]
        assert len(seqs) == slow_sent and seqs == sorted(set(seqs)) and seqs[0] == 0
        await asyncio.wait_for(asyncio.gather(*readers), 10)  # FIN reached the fast readers too


async def test_stream_broadcast_forgets_sessions_that_left(server_config, client_config) -> None:
    async with audience(server_config, client_config, 3) as (clients, servers):
        broadcaster = StreamBroadcaster()
        assert (await broadcaster.send(servers, b"one\n")).sent == 3
        await clients[1].close()
        await asyncio.wait_for(servers[1].wait_closed(), 10)
        result = await broadcaster.send(servers, b"two\n")
        assert (result.sent, result.failed) == (2, 1)
        assert broadcaster.stream_count == 2 and broadcaster.stream_for(servers[1]) is None
        await broadcaster.discard(servers[0])
        assert broadcaster.stream_count == 1
        stream = await clients[0].accept_stream(timeout=10)
        assert await stream.read() == b"one\ntwo\n"  # type: ignore[union-attr]  # FIN from discard()
        await broadcaster.close()
        with pytest.raises(RuntimeError, match="closed"):
            await broadcaster.send(servers, b"three\n")
    with pytest.raises(ValueError):
        StreamBroadcaster(max_buffer=-1)


async def test_close_during_a_send_finishes_the_stream_that_opens_after_it(server_config, client_config,
                                                                            monkeypatch) -> None:
    async with audience(server_config, client_config, 1) as (clients, servers):
        session = servers[0]
        opening, gate = asyncio.Event(), asyncio.Event()
        create = session.create_unidirectional_stream

        async def gated_create(*, timeout: float | None = None):  # type: ignore[no-untyped-def]
            opening.set()
            await gate.wait()
            return await create(timeout=timeout)

        monkeypatch.setattr(session, "create_unidirectional_stream", gated_create)
        broadcaster = StreamBroadcaster()
        sending = asyncio.ensure_future(broadcaster.send(servers, b"late\n"))
        await asyncio.wait_for(opening.wait(), 10)
        await broadcaster.close()  # while the send waits for the stream to open
        gate.set()
        result = await asyncio.wait_for(sending, 10)
        assert (result.sent, result.failed) == (0, 1) and broadcaster.stream_count == 0

        stream = await clients[0].accept_stream(timeout=10)
        assert isinstance(stream, WebTransportReceiveStream)
        assert await asyncio.wait_for(stream.read(), 10) == b""  # FIN, nothing written after close()
