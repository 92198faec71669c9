"""The fan-out relay row: N clients each send a 64-byte record at a fixed rate, the server
writes every record to every other client.

The server runs in the measuring process and its CPU time (``time.process_time()``) is
read while the clients send; the clients run in a child process (``python -m
benchmarks.relay``) so that their CPU is not counted and they do not share the server's
GIL. Latency is receive time minus the sender's timestamp, both ``time.monotonic()``
(one system-wide clock on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from benchmarks.rows import Workload, percentile
from benchmarks.stacks.base import CHUNK, CMD_RELAY, RECORD, RECORD_SIZE, AppStream, Certificate, RelayHub, Stack

__all__ = ["RelayLink", "main", "run_relay"]


class RelayLink(Protocol):
    """One relay member's connection."""

    def send(self, record: bytes) -> None: ...
    async def receive(self) -> list[bytes]: ...
    async def close(self) -> None: ...


class _StreamLink:
    """A relay member over one bidirectional stream of a QUIC stack."""

    def __init__(self, client: Any, stream: AppStream) -> None:
        self._client, self._stream = client, stream
        self._pending = b""

    def send(self, record: bytes) -> None:
        self._stream.write(record)

    async def receive(self) -> list[bytes]:
        """Every whole record that has arrived (at least one): one read, many records."""
        while len(self._pending) < RECORD_SIZE:
            chunk = await self._stream.read(CHUNK)
            if not chunk:
                raise ConnectionError("the relay stream ended")
            self._pending += chunk
        whole = len(self._pending) - len(self._pending) % RECORD_SIZE
        data, self._pending = self._pending[:whole], self._pending[whole:]
        return [data[i:i + RECORD_SIZE] for i in range(0, whole, RECORD_SIZE)]

    async def close(self) -> None:
        await self._client.close()


async def open_link(stack: Stack, port: int, cert: Certificate) -> RelayLink:
    """Join the relay on ``stack``'s server (its own link type if it has one)."""
    opener = getattr(stack, "open_relay_link", None)
    if opener is not None:
        link: RelayLink = await opener(port, cert)
        return link
    client = await stack.connect(port, cert)
    stream = await client.open_stream()
    stream.write(CMD_RELAY)
    return _StreamLink(client, stream)


async def run_relay(stack: Stack, cert: Certificate, w: Workload, loop: str) -> dict[str, float]:
    """Serve the relay here, run the clients in a child process, return the relay metrics."""
    hub = RelayHub()
    server = await stack.start_server(cert, hub)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.relay", "--stack", stack.name, "--port", str(server.port),
        "--cert", str(cert.cert_path), "--key", str(cert.key_path), "--sha256", cert.sha256.hex(),
        "--clients", str(w.relay_clients), "--hz", str(w.relay_hz), "--seconds", str(w.relay_seconds),
        "--loop", loop, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        ready = await asyncio.wait_for(child.stdout.readline(), 60)
        if ready.strip() != b"READY":
            raise RuntimeError(f"relay clients did not start: {ready!r} {(await child.stderr.read())[-400:]!r}"
                               if child.stderr else "relay clients did not start")
        cpu0 = time.process_time()
        line = await asyncio.wait_for(child.stdout.readline(), w.relay_seconds + 60)
        cpu = time.process_time() - cpu0
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await server.close()
    report = json.loads(line)
    if not report["delivered"]:
        raise RuntimeError("no relay message was delivered")
    return {"relay_cpu_us_per_msg": cpu / report["delivered"] * 1e6, "relay_p99_ms": report["p99_ms"],
            "relay_delivered_pct": 100.0 * report["delivered"] / max(1, report["expected"])}


async def _clients(stack: Stack, cert: Certificate, port: int, count: int, hz: float, seconds: float) -> None:
    links = [await open_link(stack, port, cert) for _ in range(count)]
    latencies: list[float] = []
    expected = -1  # known once every sender is done
    all_delivered = asyncio.Event()
    padding = b"\0" * (RECORD_SIZE - RECORD.size)
    sent = 0

    async def sender(index: int, link: RelayLink) -> None:
        nonlocal sent
        period = 1.0 / hz
        next_at = time.monotonic() + random.random() * period  # spread the senders over a tick
        end = time.monotonic() + seconds
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            link.send(RECORD.pack(time.monotonic(), index) + padding)
            sent += 1
            next_at += period

    async def receiver(link: RelayLink) -> None:
        while True:
            records = await link.receive()
            now = time.monotonic()
            latencies.extend(now - RECORD.unpack_from(record)[0] for record in records)
            if len(latencies) >= expected >= 0:
                all_delivered.set()

    print("READY", flush=True)
    receivers = [asyncio.ensure_future(receiver(link)) for link in links]
    await asyncio.gather(*(sender(i, link) for i, link in enumerate(links)))
    expected = sent * (count - 1)
    if len(latencies) < expected:  # stragglers get a bounded grace period
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(all_delivered.wait(), 2.0)
    # Report before closing: the server's CPU window ends at this line, so the closes (not
    # part of relaying) are not counted.
    print(json.dumps({"sent": sent, "expected": expected, "delivered": len(latencies),
                      "p99_ms": percentile(latencies, 0.99) * 1e3 if latencies else 0.0}), flush=True)
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    await asyncio.gather(*(link.close() for link in links), return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    """Child-process entry: connect the relay clients, send, report JSON on stdout."""
    from benchmarks.stacks import STACKS
    from benchmarks.worker import run_on_loop

    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--hz", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--loop", default="asyncio")
    args = parser.parse_args(argv)
    cert = Certificate(Path(args.cert), Path(args.key), bytes.fromhex(args.sha256))
    stack = STACKS[args.stack]()
    run_on_loop(args.loop, _clients(stack, cert, args.port, args.clients, args.hz, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
