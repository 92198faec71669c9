"""``python -m pywebtransport demo``: server and client in one process, measured."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from typing import Any

from pywebtransport import _wire
from pywebtransport.cli.echo import echo_session
from pywebtransport.cli.progress import Progress
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.events import EventType
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream
from pywebtransport.utils import generate_self_signed_cert

__all__ = ["run_demo"]


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_demo(*, round_trips: int = 200, bulk_mib: int = 16, as_json: bool = False) -> dict[str, Any]:
    """Run the loopback demo, print what happens, and return the numbers."""
    say = (lambda *_: None) if as_json else print
    results: dict[str, Any] = {"implementation": _wire.IMPLEMENTATION}
    closed_on_server: asyncio.Future[tuple[int | None, str | None]] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        def record(_: object) -> None:
            if not closed_on_server.done():
                closed_on_server.set_result((session.close_code, session.close_reason))

        session.events.on(EventType.SESSION_CLOSED, record)
        await echo_session(session)

    with tempfile.TemporaryDirectory(prefix="pywebtransport-demo-") as tmp:
        cert = generate_self_signed_cert("localhost", output_dir=tmp)
        say(f"pywebtransport demo (_wire implementation: {_wire.IMPLEMENTATION})")
        say(f"  certificate: ECDSA P-256, SHA-256 {cert.sha256_hex[:16]}...")
        server = WebTransportServer(config=ServerConfig(host="127.0.0.1", port=0, certfile=str(cert.cert_path),
                                                        keyfile=str(cert.key_path)))
        server.add_route("/echo", handler)
        client_config = ClientConfig(server_certificate_hashes=[cert.sha256])
        async with server, WebTransportClient(config=client_config) as client:
            host, port = server.local_address
            url = f"https://{host}:{port}/echo"
            say(f"  server listening on {host}:{port} (UDP)")
            started = time.perf_counter()
            session = await client.connect(url)
            connect_ms = (time.perf_counter() - started) * 1e3
            connection = session.connection
            dialect = connection.dialect if connection is not None else "?"
            results["connect_ms"] = round(connect_ms, 2)
            say(f"  session {session.session_id} established in {connect_ms:.1f} ms "
                f"(QUIC + TLS 1.3 + HTTP/3 SETTINGS + extended CONNECT; peer dialect {dialect})")

            stream = await session.create_bidirectional_stream()
            await stream.write_all(b"hello over a bidirectional stream", end_stream=True)
            say(f"  bidi echo:     {(await stream.read()).decode()!r}")

            up = await session.create_unidirectional_stream()
            await up.write_all(b"hello over a unidirectional stream", end_stream=True)
            reply = await session.accept_stream(timeout=10)
            assert isinstance(reply, WebTransportReceiveStream)
            say(f"  uni reply:     {(await reply.read()).decode()!r}")

            await session.datagrams.send(b"hello as a datagram")
            say(f"  datagram echo: {(await session.datagrams.receive(timeout=5)).decode()!r} "
                f"(max datagram size {session.datagrams.max_datagram_size} bytes)")

            if round_trips:
                say(f"  measuring {round_trips} round trips of each kind ...")
                stream_rtts: list[float] = []
                datagram_rtts: list[float] = []
                with Progress("round trips", 2 * round_trips, enabled=None if not as_json else False) as progress:
                    for _ in range(round_trips):
                        t0 = time.perf_counter()
                        s = await session.create_bidirectional_stream()
                        s.write(b"x" * 64)
                        await s.close()
                        await s.read()
                        stream_rtts.append((time.perf_counter() - t0) * 1e6)
                        progress.advance()
                    for _ in range(round_trips):
                        t0 = time.perf_counter()
                        await session.datagrams.send(b"y" * 64)
                        await session.datagrams.receive(timeout=5)
                        datagram_rtts.append((time.perf_counter() - t0) * 1e6)
                        progress.advance()
                results["stream_rtt_us"] = {"median": round(statistics.median(stream_rtts), 1),
                                            "p99": round(_percentile(stream_rtts, 0.99), 1)}
                results["datagram_rtt_us"] = {"median": round(statistics.median(datagram_rtts), 1),
                                              "p99": round(_percentile(datagram_rtts, 0.99), 1)}
                say(f"  new stream + 64 B echo: median {results['stream_rtt_us']['median']:.0f} us, "
                    f"p99 {results['stream_rtt_us']['p99']:.0f} us")
                say(f"  64 B datagram echo:     median {results['datagram_rtt_us']['median']:.0f} us, "
                    f"p99 {results['datagram_rtt_us']['p99']:.0f} us")
            else:
                results["stream_rtt_us"] = results["datagram_rtt_us"] = None
                say("  latency: skipped (--round-trips 0)")

            if bulk_mib:
                say(f"  sending {bulk_mib} MiB on one stream ...")
                chunk = b"\xab" * 65536
                t0 = time.perf_counter()
                bulk = await session.create_unidirectional_stream()
                with Progress("sent", bulk_mib * 16, unit="x 64 KiB", enabled=None if not as_json else False) as sent:
                    for _ in range(bulk_mib * 16):
                        bulk.write(chunk)
                        await bulk.drain()
                        sent.advance()
                await bulk.close()
                ack = await session.accept_stream(timeout=60)
                assert isinstance(ack, WebTransportReceiveStream)
                confirmed = (await ack.read()).decode()
                seconds = time.perf_counter() - t0
                results["throughput_mib_s"] = round(bulk_mib / seconds, 2)
                say(f"  throughput: {results['throughput_mib_s']:.1f} MiB/s ({confirmed}, {seconds:.2f} s)")
            else:
                results["throughput_mib_s"] = None
                say("  throughput: skipped (--bulk-mib 0)")

            await session.close(error_code=0, reason="demo done")
            code, reason = await asyncio.wait_for(closed_on_server, 5)
            say(f"  closed; the server saw code {code} and reason {reason!r}")
            results["server_saw_close"] = {"code": code, "reason": reason}
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        say("demo finished: everything above ran over real UDP on 127.0.0.1")
    return results
