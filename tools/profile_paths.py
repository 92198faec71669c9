"""Where the time goes on the two hot paths: a 64 B datagram round trip and a 64 KiB stream
echo, client and server in one process over UDP loopback, profiled with cProfile and summed
by layer (aioquic, our engine, _wire, the asyncio API, asyncio itself, the rest).

    python tools/profile_paths.py [--datagrams N] [--streams N]

Prints one table per path with the share of CPU per layer and the wall time per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

LAYERS = (
    ("aioquic", ("aioquic/", "qh3/")),
    ("_wire", ("pywebtransport/_wire/",)),
    ("_protocol", ("pywebtransport/_protocol/",)),
    ("_io", ("pywebtransport/_io/",)),
    ("asyncio API", ("pywebtransport/",)),
    ("asyncio", ("asyncio/",)),
    ("crypto", ("cryptography/", "_cffi", "ssl")),
)


def layer_of(filename: str) -> str:
    for name, needles in LAYERS:
        if any(needle in filename for needle in needles):
            return name
    return "other"


async def run(datagrams: int, streams: int) -> dict[str, float]:
    from pywebtransport import ClientConfig, ServerConfig, WebTransportClient, WebTransportServer
    from pywebtransport.utils import generate_self_signed_cert

    cert = generate_self_signed_cert("localhost", output_dir=tempfile.mkdtemp())

    async def echo(session):  # type: ignore[no-untyped-def]
        async def datagram_echo() -> None:
            async for payload in session.datagrams:
                await session.datagrams.send(payload)

        task = asyncio.ensure_future(datagram_echo())
        try:
            async for stream in session.incoming_streams():
                data = await stream.read()
                await stream.write_all(data, end_stream=True)
        finally:
            task.cancel()

    server = WebTransportServer(config=ServerConfig(host="127.0.0.1", port=0, certfile=str(cert.cert_path),
                                                    keyfile=str(cert.key_path)))
    server.add_route("/echo", echo)
    timings: dict[str, float] = {}
    async with server:
        host, port = server.local_address
        async with WebTransportClient(config=ClientConfig(server_certificate_hashes=[cert.sha256])) as client:
            session = await client.connect(f"https://{host}:{port}/echo")

            async def datagram_rtt() -> None:
                await session.datagrams.send(b"x" * 64)
                await session.datagrams.receive(timeout=5)

            payload = b"y" * 65536

            async def stream_echo() -> None:
                stream = await session.create_bidirectional_stream()
                await stream.write_all(payload, end_stream=True)
                got = await stream.read()
                assert len(got) == len(payload)

            for title, name, count, op in (("64 B datagram round trip", "datagram", datagrams, datagram_rtt),
                                           ("64 KiB stream echo (write, FIN, read back)", "stream", streams,
                                            stream_echo)):
                profile = cProfile.Profile()
                timings[name] = await measure(profile, count, op)
                report(title, pstats.Stats(profile), timings[name])
    return timings


async def measure(profile: cProfile.Profile, count: int, op: Callable[[], Awaitable[None]]) -> float:
    """Seconds per operation over ``count`` runs after a short warm-up, under ``profile``."""
    for _ in range(min(10, count)):
        await op()
    profile.enable()
    start = time.perf_counter()
    for _ in range(count):
        await op()
    elapsed = time.perf_counter() - start
    profile.disable()
    return elapsed / count


def report(title: str, stats: pstats.Stats, per_op: float) -> None:
    totals: dict[str, float] = defaultdict(float)
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _func), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        totals[layer_of(filename)] += tottime
    whole = sum(totals.values()) or 1.0
    print(f"\n{title}: {per_op * 1e6:.0f} µs per operation (under the profiler)")
    for name, value in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:12} {100 * value / whole:5.1f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datagrams", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args()
    import pywebtransport._wire as wire

    print(f"_wire implementation: {wire.IMPLEMENTATION}")
    asyncio.run(run(args.datagrams, args.streams))
    return 0


if __name__ == "__main__":
    sys.exit(main())
