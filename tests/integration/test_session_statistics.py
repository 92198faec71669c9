"""Session statistics a realtime application reads (``session.get_statistics()``), in both
roles over real UDP: RTT, congestion window, the session's bytes and datagrams."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from pywebtransport._protocol.quic import resolve_backend
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig
from pywebtransport.events import Event, EventType
from pywebtransport.session import WebTransportSession
from pywebtransport.session.stats import SessionStatistics
from pywebtransport.stream import WebTransportStream

from .conftest import running_server

pytestmark = pytest.mark.timeout(60)

PAYLOAD = bytes(range(256)) * 200  # 51,200 bytes on one bidirectional stream, echoed back
DATAGRAMS = [b"d%d" % i * (i + 1) for i in range(3)]


class EchoOnce:
    """Echo one bidi stream and len(DATAGRAMS) datagrams, then report the server's statistics."""

    def __init__(self) -> None:
        self.statistics: asyncio.Future[SessionStatistics] = asyncio.get_running_loop().create_future()

    async def handler(self, session: WebTransportSession) -> None:
        stream = await session.accept_bidirectional_stream(timeout=5)
        assert isinstance(stream, WebTransportStream)
        data = await stream.read()
        await stream.write_all(data, end_stream=True)
        for _ in DATAGRAMS:
            await session.datagrams.send(await session.datagrams.receive(timeout=5))
        self.statistics.set_result(session.get_statistics())
        await session.wait_closed()


def _check_rtt(stats: SessionStatistics) -> None:
    assert stats.backend == resolve_backend()
    # loopback: well under a second (qh3 floors min_rtt at its 1 ms timer granularity, so
    # it may exceed the smoothed RTT there)
    for rtt in (stats.smoothed_rtt, stats.min_rtt, stats.latest_rtt):
        assert 0 < rtt < 1.0
    assert stats.congestion_window >= 2 * 1200  # RFC 9002 §7.2: never below the minimum window
    assert stats.bytes_in_flight >= 0


async def test_statistics_count_the_sessions_bytes_and_datagrams_in_both_roles(server_config, client_config) -> None:
    echo = EchoOnce()
    async with running_server(server_config, {"/stats": echo.handler}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/stats")
        stream = await session.create_bidirectional_stream()
        await stream.write_all(PAYLOAD, end_stream=True)
        assert await stream.read() == PAYLOAD
        for payload in DATAGRAMS:
            await session.datagrams.send(payload)
        assert sorted([await session.datagrams.receive(timeout=5) for _ in DATAGRAMS]) == sorted(DATAGRAMS)
        server_stats = await asyncio.wait_for(echo.statistics, 5)
        stats = session.get_statistics()
        datagram_bytes = sum(len(d) for d in DATAGRAMS)
        for side in (stats, server_stats):
            _check_rtt(side)
            assert side.session_id == session.session_id
            assert (side.stream_bytes_sent, side.stream_bytes_received) == (len(PAYLOAD), len(PAYLOAD))
            assert (side.datagrams_sent, side.datagrams_received) == (len(DATAGRAMS), len(DATAGRAMS))
            assert (side.datagram_bytes_sent, side.datagram_bytes_received) == (datagram_bytes, datagram_bytes)
            assert side.bytes_sent == side.bytes_received == len(PAYLOAD) + datagram_bytes
            assert (side.datagrams_dropped, side.datagrams_receive_dropped) == (0, 0)
        data = stats.to_dict()
        assert data["bytes_sent"] == stats.bytes_sent and data["smoothed_rtt"] == stats.smoothed_rtt
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.smoothed_rtt = 0.0  # type: ignore[misc]
        await session.close()
        closed = session.get_statistics()  # the counts survive the close
        assert closed.stream_bytes_sent == len(PAYLOAD) and closed.datagrams_received == len(DATAGRAMS)


async def test_datagrams_refused_by_a_full_send_queue_are_counted_as_dropped(echo_server, client) -> None:
    _, base = echo_server
    session = await client.connect(f"{base}/echo")
    # no await in between: nothing is transmitted, so QUIC's datagram queue fills (1024)
    results = [session.datagrams.send_nowait(b"flood %d" % i) for i in range(1100)]
    refused = results.count(False)
    assert refused >= 1100 - 1024
    stats = session.get_statistics()
    assert stats.datagrams_sent == results.count(True)
    assert stats.datagrams_dropped >= refused  # plus any in packets loss recovery declares lost
    await session.close()


async def test_datagrams_evicted_from_a_full_receive_buffer_are_counted(server_config, certificate) -> None:
    async def burst(session: WebTransportSession) -> None:
        assert await session.datagrams.receive(timeout=5) == b"go"  # the client is listening now
        for i in range(20):
            await session.datagrams.send(b"burst %d" % i)
        await session.wait_closed()

    config = ClientConfig(server_certificate_hashes=[certificate.sha256], datagram_queue_size=4)
    async with running_server(server_config, {"/burst": burst}) as (_, base), \
            WebTransportClient(config=config) as client:
        session = await client.connect(f"{base}/burst")
        arrived = asyncio.Event()
        count = 0

        def on_datagram(_event: Event) -> None:
            nonlocal count
            count += 1
            if count == 20:
                arrived.set()

        session.events.on(EventType.DATAGRAM_RECEIVED, on_datagram)
        await session.datagrams.send(b"go")
        await asyncio.wait_for(arrived.wait(), 5)  # all arrived; none was read
        stats = session.get_statistics()
        assert (stats.datagrams_received, stats.datagrams_sent) == (20, 1)
        assert stats.datagrams_receive_dropped == 16  # the buffer keeps the newest 4
        assert [session.datagrams.receive_nowait() for _ in range(4)] == [b"burst %d" % i for i in range(16, 20)]
        await session.close()
