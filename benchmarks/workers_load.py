"""A load process of the ``workers`` benchmark: ``python -m benchmarks.workers_load``.

Several of these run at once so that the clients are not held to one core. Each prepares
(imports, connects the bulk sessions), prints ``ready``, waits for a line on stdin, runs
its share of the work and prints one JSON line with what it measured. Times are
``time.monotonic()``, which on Linux is one clock for every process, so the runner can take
the span from the first start to the last finish over all load processes.

``connect``: ``--count`` connects at once; each one's latency (connect to session ready),
or the error that ended it. ``bulk``: ``--connections`` sessions, each uploading ``--bytes``
on one stream at the same time; the bytes the server counted, and the pid of the worker
that served each session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

from benchmarks.stacks.base import CHUNK, CMD_UPLOAD
from benchmarks.workers_server import PATH, PID_PATH

__all__ = ["main"]


def _client_config(cert_hash: str, backend: str | None, connect_timeout: float) -> Any:
    from pywebtransport.config import ClientConfig

    extra: dict[str, Any] = {} if backend is None else {"quic_backend": backend}
    return ClientConfig(server_certificate_hashes=[bytes.fromhex(cert_hash)], keep_alive_interval=None,
                        connect_timeout=connect_timeout, close_timeout=1.0, max_retries=0, **extra)


async def _go() -> None:
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise SystemExit("the runner went away before saying go")


async def _connect(args: argparse.Namespace) -> dict[str, Any]:
    from pywebtransport.client import WebTransportClient

    client = WebTransportClient(config=_client_config(args.cert_hash, args.backend, args.timeout))
    url = f"https://127.0.0.1:{args.port}{PATH}"
    latencies: list[float] = []
    errors: dict[str, int] = {}
    finished: list[float] = []

    async def one() -> None:
        t0 = time.monotonic()
        try:
            await client.connect(url)
        except Exception as exc:
            key = f"{type(exc).__name__}: {exc}"[:160]
            errors[key] = errors.get(key, 0) + 1
            return
        now = time.monotonic()
        latencies.append(now - t0)
        finished.append(now)

    await _go()
    start, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(one() for _ in range(args.count)))
    cpu = time.process_time() - cpu
    await client.close()
    return {"start": start, "end": max(finished, default=start), "latencies": latencies, "errors": errors,
            "count": args.count, "cpu": cpu}


async def _bulk(args: argparse.Namespace) -> dict[str, Any]:
    from pywebtransport.client import WebTransportClient
    from pywebtransport.stream import WebTransportReceiveStream

    client = WebTransportClient(config=_client_config(args.cert_hash, args.backend, args.timeout))
    url = f"https://127.0.0.1:{args.port}{PID_PATH}"
    sessions = []
    pids = []
    for _ in range(args.connections):
        session = await client.connect(url)
        async for stream in session.incoming_streams():  # the server's first: its pid
            if isinstance(stream, WebTransportReceiveStream):
                pids.append(int(await stream.read()))
            break
        sessions.append(session)

    async def upload(session: Any) -> int:
        stream = await session.create_bidirectional_stream()
        stream.write(CMD_UPLOAD)
        payload = b"\xab" * CHUNK
        sent = 0
        while sent < args.bytes:
            piece = payload if args.bytes - sent >= CHUNK else payload[: args.bytes - sent]
            stream.write(piece)
            sent += len(piece)
            await stream.drain()
        await stream.close()
        counted = int(await stream.read())
        if counted != args.bytes:
            raise RuntimeError(f"the server counted {counted} bytes, {args.bytes} were sent")
        return counted

    await _go()
    start = time.monotonic()
    counted = await asyncio.gather(*(upload(s) for s in sessions))
    end = time.monotonic()
    await client.close()
    return {"start": start, "end": end, "bytes": sum(counted), "pids": pids}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers_load")
    parser.add_argument("mode", choices=("connect", "bulk"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-hash", required=True)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--count", type=int, default=1, help="connect: connects at once")
    parser.add_argument("--connections", type=int, default=1, help="bulk: sessions uploading at once")
    parser.add_argument("--bytes", type=int, default=1 << 20, help="bulk: bytes per session")
    parser.add_argument("--timeout", type=float, default=60.0, help="connect timeout (s)")
    args = parser.parse_args(argv)
    # One warning per connection closed under overload would flood the report; errors still show.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    run = _connect if args.mode == "connect" else _bulk
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
