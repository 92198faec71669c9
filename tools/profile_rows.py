"""What bounds a benchmark row: one operation of the transport benchmark, profiled on ours and
on the raw QUIC library beneath it, in one process over UDP loopback, summed by layer.

    python tools/profile_rows.py [--op new_stream|datagram|connect|all] [--backend aioquic|qh3] [-n N]

For each stack it prints the profiled time per operation by layer (the QUIC library, our
engine, _io, the asyncio API layer, asyncio, the rest) and the Python function calls per
operation, ours and the library's. cProfile inflates every call, so read the shares and the
call counts, not the absolute times; the benchmark (``python -m benchmarks transport``)
gives the real ones.

- ``new_stream``: open a bidirectional stream, send 64 B and FIN, read the echo to EOF.
- ``datagram``: a 64 B datagram to the server's sink (the datagrams/s row), sent 16 at a
  time between loop turns, as the row does.
- ``connect``: a new connection and session (the handshake row), then its close.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.rows import Served, stream_request
from benchmarks.stacks import STACKS
from benchmarks.stacks.base import CMD_ECHO, DATAGRAM_SINK, Certificate
from benchmarks.worker import make_certificate
from tools.profile_paths import layer_of

__all__ = ["main"]

OPS = ("new_stream", "datagram", "connect")


async def _profile(stack_name: str, op: str, count: int, cert: Certificate) -> tuple[pstats.Stats, int]:
    """Profile ``count`` operations of ``op`` on ``stack_name`` (after a warm-up)."""
    stack = STACKS[stack_name]()
    async with Served(stack, cert) as served:
        client = await served.connect()
        step: Callable[[], Awaitable[Any]]
        if op == "new_stream":
            async def step() -> None:
                await stream_request(client, CMD_ECHO + b"m" * 64)
        elif op == "datagram":
            payload = DATAGRAM_SINK + b"s" * 63

            async def step() -> None:
                for _ in range(16):
                    client.send_datagram(payload)
                await asyncio.sleep(0)  # a loop turn, as the datagrams/s row gives one every 16
            count //= 16
        else:
            async def step() -> None:
                await (await stack.connect(served.port, cert)).close()
        for _ in range(20):
            await step()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(count):
            await step()
        profile.disable()
    if op == "datagram":
        count *= 16
    return pstats.Stats(profile), count


def _report(stack_name: str, stats: pstats.Stats, count: int) -> None:
    by_layer: dict[str, float] = defaultdict(float)
    calls = ours = 0
    raw_stats: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, ncalls, tottime, _cum, _callers) in raw_stats.items():
        by_layer[layer_of(filename)] += tottime
        calls += ncalls
        if "pywebtransport" in filename:
            ours += ncalls
    total = sum(by_layer.values())
    print(f"  {stack_name}: {total / count * 1e6:.0f} us per op under the profiler, "
          f"{calls / count:.0f} Python calls per op ({ours / count:.0f} in pywebtransport)")
    for layer, seconds in sorted(by_layer.items(), key=lambda item: -item[1]):
        print(f"    {layer:12s} {100 * seconds / total:5.1f}%  {seconds / count * 1e6:7.1f} us")


async def _run(ops: list[str], backend: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        cert = make_certificate(directory)
        for op in ops:
            print(f"{op} on {backend} ({count} operations)")
            for stack_name in (f"ours-{backend}", f"raw-{backend}"):
                stats, done = await _profile(stack_name, op, count, cert)
                _report(stack_name, stats, done)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", choices=(*OPS, "all"), default="all")
    parser.add_argument("--backend", choices=("aioquic", "qh3"), default="aioquic")
    parser.add_argument("-n", type=int, default=0, help="operations (default: 1000, 20000 datagrams, 100 connects)")
    args = parser.parse_args(argv)
    ops = list(OPS) if args.op == "all" else [args.op]
    for op in ops:
        count = args.n or {"new_stream": 1000, "datagram": 20000, "connect": 100}[op]
        asyncio.run(_run([op], args.backend, count))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
