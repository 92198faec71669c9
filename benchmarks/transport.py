"""Transport benchmarks: pywebtransport against raw aioquic QUIC streams, same run, same machine.

Each workload runs twice over UDP on 127.0.0.1: once through our whole stack (client,
server, HTTP/3 engine, session, streams) and once on aioquic's own asyncio QUIC streams
with no HTTP/3 at all, which is the floor any QUIC library in Python stands on. What to read
is the ratio: absolute numbers on a shared 2-core machine are noise.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import DatagramFrameReceived, QuicEvent

from pywebtransport import config, utils
from pywebtransport.cli.echo import echo_session
from pywebtransport.client import WebTransportClient
from pywebtransport.server import WebTransportServer

__all__ = ["TransportResult", "run_transport"]

CHUNK = 64 * 1024


@dataclass
class TransportResult:
    """One workload measured on both stacks."""

    workload: str
    unit: str
    ours: float
    raw_aioquic: float
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        """ours / raw for throughput, raw / ours for latency: 1.0 = as fast as the floor."""
        if self.higher_is_better:
            return self.ours / self.raw_aioquic if self.raw_aioquic else 0.0
        return self.raw_aioquic / self.ours if self.ours else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"workload": self.workload, "unit": self.unit, "ours": round(self.ours, 3),
                "raw_aioquic": round(self.raw_aioquic, 3), "ratio_vs_floor": round(self.ratio, 3)}


# ---------------------------------------------------------------------------- our stack

async def _ours(cert: utils.SelfSignedCertificate, bulk_bytes: int, round_trips: int) -> dict[str, float]:
    server = WebTransportServer(config=config.ServerConfig(host="127.0.0.1", port=0, certfile=str(cert.cert_path),
                                                    keyfile=str(cert.key_path)))
    server.add_route("/bench", echo_session)
    client_config = config.ClientConfig(server_certificate_hashes=[cert.sha256])
    async with server, WebTransportClient(config=client_config) as client:
        port = server.local_address[1]
        session = await client.connect(f"https://127.0.0.1:{port}/bench")
        # bulk: one unidirectional stream, the server reports the byte count back
        payload = b"\xab" * CHUNK
        start = time.perf_counter()
        stream = await session.create_unidirectional_stream()
        sent = 0
        while sent < bulk_bytes:
            stream.write(payload)
            sent += len(payload)
            await stream.drain()
        await stream.close()
        reply = await session.accept_stream(timeout=60)  # the echo service reports the byte count
        assert (await reply.read()).startswith(f"received {bulk_bytes} bytes".encode())  # type: ignore[union-attr]
        bulk = bulk_bytes / (time.perf_counter() - start) / (1 << 20)
        # latency: a new bidirectional stream per small request/response
        stream_rtts = []
        for _ in range(round_trips):
            t0 = time.perf_counter()
            s = await session.create_bidirectional_stream()
            s.write(b"x" * 64)
            await s.close()
            await s.read()
            stream_rtts.append(time.perf_counter() - t0)
        # latency: datagram ping-pong
        datagram_rtts = []
        for _ in range(round_trips):
            t0 = time.perf_counter()
            await session.datagrams.send(b"y" * 64)
            await session.datagrams.receive(timeout=5)
            datagram_rtts.append(time.perf_counter() - t0)
        await session.close()
    return {"bulk": bulk, "stream_rtt": statistics.median(stream_rtts) * 1e6,
            "datagram_rtt": statistics.median(datagram_rtts) * 1e6}


# ---------------------------------------------------------------------------- raw aioquic

class _RawServer(QuicConnectionProtocol):
    """Echo datagrams; streams are handled by the stream_handler given to serve()."""

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, DatagramFrameReceived):
            self._quic.send_datagram_frame(event.data)
            self.transmit()
        super().quic_event_received(event)


class _RawClient(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, DatagramFrameReceived):
            self.datagrams.put_nowait(event.data)
        super().quic_event_received(event)


def _raw_stream_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    async def handle() -> None:
        first = await reader.read(1)
        if first == b"E":  # echo request
            writer.write(await reader.read())
            writer.write_eof()
        else:  # bulk sink: count and report
            total = len(first)
            while chunk := await reader.read(CHUNK):
                total += len(chunk)
            writer.write(str(total).encode())
            writer.write_eof()

    asyncio.ensure_future(handle())


async def _raw(cert: utils.SelfSignedCertificate, bulk_bytes: int, round_trips: int) -> dict[str, float]:
    # Same packet size and windows as our defaults, so only the stacks differ.
    same = {"max_datagram_frame_size": 65536, "max_stream_data": 1 << 20, "max_data": 16 << 20,
            "max_datagram_size": config.ClientConfig().quic_max_datagram_size}
    server_cfg = QuicConfiguration(is_client=False, alpn_protocols=["bench"], **same)
    server_cfg.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    server = await serve("127.0.0.1", 0, configuration=server_cfg, create_protocol=_RawServer,
                         stream_handler=_raw_stream_handler)
    port = server._transport.get_extra_info("sockname")[1]
    client_cfg = QuicConfiguration(is_client=True, alpn_protocols=["bench"], **same)
    client_cfg.load_verify_locations(cafile=str(cert.cert_path))
    client_cfg.server_name = "localhost"
    try:
        async with connect("127.0.0.1", port, configuration=client_cfg, create_protocol=_RawClient) as protocol:
            assert isinstance(protocol, _RawClient)
            payload = b"\xab" * CHUNK
            start = time.perf_counter()
            reader, writer = await protocol.create_stream()
            sent = 0
            while sent < bulk_bytes:
                writer.write(payload)
                sent += len(payload)
                await writer.drain()  # aioquic's drain returns at once: it buffers without bound
            writer.write_eof()
            assert int(await reader.read()) == bulk_bytes
            bulk = bulk_bytes / (time.perf_counter() - start) / (1 << 20)
            stream_rtts = []
            for _ in range(round_trips):
                t0 = time.perf_counter()
                reader, writer = await protocol.create_stream()
                writer.write(b"E" + b"x" * 64)
                writer.write_eof()
                await reader.read()
                stream_rtts.append(time.perf_counter() - t0)
            datagram_rtts = []
            for _ in range(round_trips):
                t0 = time.perf_counter()
                protocol._quic.send_datagram_frame(b"y" * 64)
                protocol.transmit()
                await asyncio.wait_for(protocol.datagrams.get(), 5)
                datagram_rtts.append(time.perf_counter() - t0)
    finally:
        server.close()
    return {"bulk": bulk, "stream_rtt": statistics.median(stream_rtts) * 1e6,
            "datagram_rtt": statistics.median(datagram_rtts) * 1e6}


# ---------------------------------------------------------------------------- runner

async def _best_of(runs: int, fn: Callable[[], Awaitable[dict[str, float]]]) -> dict[str, float]:
    results = [await fn() for _ in range(runs)]
    return {"bulk": max(r["bulk"] for r in results),
            "stream_rtt": min(r["stream_rtt"] for r in results),
            "datagram_rtt": min(r["datagram_rtt"] for r in results)}


async def _run(quick: bool) -> list[TransportResult]:
    bulk_bytes = (8 if quick else 64) << 20
    round_trips = 100 if quick else 500
    runs = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        cert = utils.generate_self_signed_cert("localhost", output_dir=tmp)
        ours = await _best_of(runs, lambda: _ours(cert, bulk_bytes, round_trips))
        raw = await _best_of(runs, lambda: _raw(cert, bulk_bytes, round_trips))
    return [
        TransportResult(f"bulk stream {bulk_bytes >> 20} MiB", "MiB/s", ours["bulk"], raw["bulk"], True),
        TransportResult("stream open+echo 64 B (median)", "us", ours["stream_rtt"], raw["stream_rtt"], False),
        TransportResult("datagram echo 64 B (median)", "us", ours["datagram_rtt"], raw["datagram_rtt"], False),
    ]


def run_transport(quick: bool = False) -> list[TransportResult]:
    """Run every transport workload on both stacks; best of 3 (1 with ``quick``)."""
    return asyncio.run(_run(quick))
