"""The transport rows: what is measured, with which workload, and how.

A *group* is one measurement procedure that yields one or more *metrics* (the rows of the
report); ``--rows`` selects groups. Every group gets a fresh server and client on the stack
it measures, so nothing carries over from one stack or group to the next.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.stacks.base import (
    CHUNK,
    CMD_COUNT,
    CMD_DOWNLOAD,
    CMD_ECHO,
    CMD_UPLOAD,
    DATAGRAM_SINK,
    BenchClient,
    Certificate,
    RelayHub,
    Stack,
)

__all__ = ["GROUPS", "METRICS", "Metric", "Served", "Workload", "percentile", "run_group", "stream_request"]


@dataclass(frozen=True)
class Metric:
    """One row of the report."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    group: str


@dataclass(frozen=True)
class Workload:
    """How much work each group does; ``quick()`` is the smoke-test size."""

    handshakes: int = 30
    concurrent: int = 30
    round_trips: int = 200
    bulk_bytes: int = 4 << 20
    parallel_streams: int = 100
    datagrams: int = 2000
    relay_clients: int = 20
    relay_hz: float = 60.0
    relay_seconds: float = 1.0
    idle_sessions: int = 1000

    @classmethod
    def quick(cls) -> Workload:
        return cls(handshakes=3, concurrent=4, round_trips=20, bulk_bytes=256 << 10, parallel_streams=100,
                   datagrams=100, relay_clients=4, relay_seconds=0.2, idle_sessions=5)


METRICS: tuple[Metric, ...] = (
    Metric("handshake_p50_ms", "handshake p50", "ms", False, "handshake"),
    Metric("handshake_p99_ms", "handshake p99", "ms", False, "handshake"),
    Metric("sequential_sessions_per_s", "sequential sessions/s (open+close)", "1/s", True, "handshake"),
    Metric("concurrent_handshakes_per_s", "concurrent handshakes/s", "1/s", True, "concurrent"),
    Metric("echo_open_p50_us", "64 B echo, open stream p50", "us", False, "echo"),
    Metric("echo_open_p99_us", "64 B echo, open stream p99", "us", False, "echo"),
    Metric("echo_open_cpu_us", "64 B echo, open stream: CPU (both sides, user + system)", "us", False, "echo"),
    Metric("echo_new_p50_us", "new stream + 64 B echo p50", "us", False, "stream_echo"),
    Metric("echo_new_p99_us", "new stream + 64 B echo p99", "us", False, "stream_echo"),
    Metric("echo_new_cpu_us", "new stream + 64 B echo: CPU (both sides, user + system)", "us", False, "stream_echo"),
    Metric("datagram_echo_p50_us", "64 B datagram echo p50", "us", False, "datagram_echo"),
    Metric("datagram_echo_cpu_us", "64 B datagram echo: CPU (both sides, user + system)", "us", False,
           "datagram_echo"),
    Metric("upload_1_mib_s", "bulk upload, 1 stream", "MiB/s", True, "bulk"),
    Metric("download_1_mib_s", "bulk download, 1 stream", "MiB/s", True, "bulk"),
    Metric("upload_100_mib_s", "bulk upload, 100 streams", "MiB/s", True, "bulk"),
    Metric("download_100_mib_s", "bulk download, 100 streams", "MiB/s", True, "bulk"),
    Metric("datagrams_64_per_s", "datagrams/s delivered, 64 B", "1/s", True, "datagram_rate"),
    Metric("datagrams_64_delivered_pct", "datagrams delivered, 64 B", "%", True, "datagram_rate"),
    Metric("datagrams_1200_per_s", "datagrams/s delivered, 1200 B", "1/s", True, "datagram_rate"),
    Metric("datagrams_1200_delivered_pct", "datagrams delivered, 1200 B", "%", True, "datagram_rate"),
    Metric("relay_cpu_us_per_msg", "fan-out relay: server CPU per delivered msg", "us", False, "relay"),
    Metric("relay_p99_ms", "fan-out relay: p99 latency", "ms", False, "relay"),
    Metric("relay_delivered_pct", "fan-out relay: delivered", "%", True, "relay"),
    Metric("memory_kib_per_session", "memory per idle session (client+server)", "KiB", False, "memory"),
    Metric("loop_wakeups_echo", "loop wake-ups per 64 B echo, open stream (both sides)", "n", False, "iterations"),
    Metric("loop_wakeups_new_stream", "loop wake-ups per new stream + echo (both sides)", "n", False, "iterations"),
    Metric("loop_wakeups_datagram", "loop wake-ups per datagram echo (both sides)", "n", False, "iterations"),
    Metric("callbacks_echo", "loop callbacks run per 64 B echo, open stream", "n", False, "iterations"),
    Metric("callbacks_datagram", "loop callbacks run per datagram echo", "n", False, "iterations"),
)

GroupResult = dict[str, float]
GroupFn = Callable[[Stack, Certificate, Workload, str], Awaitable[GroupResult]]


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))]


class Served:
    """A server of ``stack`` for the duration of one group."""

    def __init__(self, stack: Stack, cert: Certificate, hub: RelayHub | None = None) -> None:
        self.stack, self.cert, self.hub = stack, cert, hub or RelayHub()
        self.port = 0
        self._server: Any = None
        self._clients: list[BenchClient] = []

    async def __aenter__(self) -> Served:
        self._server = await self.stack.start_server(self.cert, self.hub)
        self.port = self._server.port
        return self

    async def connect(self) -> BenchClient:
        client = await self.stack.connect(self.port, self.cert)
        self._clients.append(client)
        return client

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.close() for c in self._clients), return_exceptions=True)
        await _settle(self.stack)
        await self._server.close()


async def _settle(stack: Stack) -> None:
    """Wait for closes a stack finishes in the background (outside any timed region)."""
    wait_closed = getattr(stack, "wait_closed", None)
    if wait_closed is not None:
        await wait_closed()


async def stream_request(client: BenchClient, payload: bytes) -> bytes:
    """Open a stream, send ``payload`` and FIN, read the answer to EOF."""
    stream = await client.open_stream()
    stream.write(payload)
    await stream.finish()
    parts = []
    while chunk := await stream.read(CHUNK):
        parts.append(chunk)
    return b"".join(parts)


# ---------------------------------------------------------------------------- groups

async def _handshake(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    async with Served(stack, cert) as served:
        await (await stack.connect(served.port, cert)).close()  # warm-up: imports, first-use caches
        samples: list[float] = []
        start = time.perf_counter()
        for _ in range(w.handshakes):
            t0 = time.perf_counter()
            client = await stack.connect(served.port, cert)
            samples.append(time.perf_counter() - t0)
            await client.close()
        elapsed = time.perf_counter() - start
    return {"handshake_p50_ms": statistics.median(samples) * 1e3, "handshake_p99_ms": percentile(samples, 0.99) * 1e3,
            "sequential_sessions_per_s": w.handshakes / elapsed}


async def _concurrent(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    async with Served(stack, cert) as served:
        await (await stack.connect(served.port, cert)).close()
        start = time.perf_counter()
        clients = await asyncio.gather(*(stack.connect(served.port, cert) for _ in range(w.concurrent)))
        elapsed = time.perf_counter() - start
        await asyncio.gather(*(c.close() for c in clients))
    return {"concurrent_handshakes_per_s": w.concurrent / elapsed}


async def _echo(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    async with Served(stack, cert) as served:
        client = await served.connect()
        stream = await client.open_stream()
        stream.write(CMD_ECHO)
        message = b"m" * 64
        samples = []
        cpu = time.process_time()
        for _ in range(w.round_trips):
            t0 = time.perf_counter()
            stream.write(message)
            await stream.readexactly(64)
            samples.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu
        await stream.finish()
    return {"echo_open_p50_us": statistics.median(samples) * 1e6, "echo_open_p99_us": percentile(samples, 0.99) * 1e6,
            "echo_open_cpu_us": cpu / w.round_trips * 1e6}


async def _stream_echo(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    async with Served(stack, cert) as served:
        client = await served.connect()
        request = CMD_ECHO + b"m" * 64
        samples = []
        cpu = time.process_time()
        for _ in range(w.round_trips):
            t0 = time.perf_counter()
            answer = await stream_request(client, request)
            samples.append(time.perf_counter() - t0)
            if len(answer) != 64:
                raise RuntimeError(f"echo returned {len(answer)} bytes, expected 64")
        cpu = time.process_time() - cpu
    return {"echo_new_p50_us": statistics.median(samples) * 1e6, "echo_new_p99_us": percentile(samples, 0.99) * 1e6,
            "echo_new_cpu_us": cpu / w.round_trips * 1e6}


async def _datagram_echo(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    async with Served(stack, cert) as served:
        client = await served.connect()
        samples = []
        cpu = time.process_time()
        for seq in range(w.round_trips):
            tag = b"e" + seq.to_bytes(4, "big")
            t0 = time.perf_counter()
            client.send_datagram(tag + b"d" * 59)
            try:
                while (await client.receive_datagram(0.5))[:5] != tag:
                    pass  # a late echo of an earlier, timed-out datagram
            except (asyncio.TimeoutError, TimeoutError):
                continue  # lost on the way: not a latency sample
            samples.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu
    if len(samples) < w.round_trips // 2:
        raise RuntimeError(f"only {len(samples)} of {w.round_trips} datagram echoes came back")
    # A lost echo waits out its timeout idle: the CPU is spread over the echoes that came back.
    return {"datagram_echo_p50_us": statistics.median(samples) * 1e6, "datagram_echo_cpu_us": cpu / len(samples) * 1e6}


async def _upload(client: BenchClient, size: int) -> None:
    stream = await client.open_stream()
    stream.write(CMD_UPLOAD)
    payload = b"\xab" * CHUNK
    sent = 0
    while sent < size:
        piece = payload if size - sent >= CHUNK else payload[: size - sent]
        stream.write(piece)
        sent += len(piece)
        await stream.drain()
    await stream.finish()
    parts = []
    while chunk := await stream.read(CHUNK):
        parts.append(chunk)
    if int(b"".join(parts)) != size:
        raise RuntimeError(f"the server counted {b''.join(parts)!r} bytes, {size} were sent")


async def _download(client: BenchClient, size: int) -> None:
    stream = await client.open_stream()
    stream.write(CMD_DOWNLOAD + size.to_bytes(8, "big"))
    await stream.finish()
    received = 0
    while chunk := await stream.read(CHUNK):
        received += len(chunk)
    if received != size:
        raise RuntimeError(f"downloaded {received} bytes, expected {size}")


async def _bulk(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    result: GroupResult = {}
    mib = w.bulk_bytes / (1 << 20)
    per_stream = w.bulk_bytes // w.parallel_streams
    async with Served(stack, cert) as served:
        client = await served.connect()
        for key, transfer in (("upload", _upload), ("download", _download)):
            t0 = time.perf_counter()
            await transfer(client, w.bulk_bytes)
            result[f"{key}_1_mib_s"] = mib / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            await asyncio.gather(*(transfer(client, per_stream) for _ in range(w.parallel_streams)))
            result[f"{key}_100_mib_s"] = per_stream * w.parallel_streams / (1 << 20) / (time.perf_counter() - t0)
    return result


async def _datagram_rate(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    result: GroupResult = {}
    async with Served(stack, cert) as served:
        client = await served.connect()
        for size in (64, 1200):
            payload = DATAGRAM_SINK + b"s" * (size - 1)
            t0 = time.perf_counter()
            for i in range(1, w.datagrams + 1):
                client.send_datagram(payload)  # a full local queue drops it: counted as not delivered
                if i % 16 == 0:
                    await asyncio.sleep(0)  # let the loop transmit and read, as a real sender would
            # Ask for the count until it is complete or stops growing: a small stream frame can
            # overtake datagrams that did not fit in a packet's remainder, so one query is not enough.
            delivered, idle, done_at = 0, 0, time.perf_counter()
            while delivered < w.datagrams and idle < 2:
                got = int(await stream_request(client, CMD_COUNT))
                if got:
                    delivered, idle, done_at = delivered + got, 0, time.perf_counter()
                else:
                    idle += 1
            elapsed = done_at - t0
            result[f"datagrams_{size}_per_s"] = delivered / elapsed
            result[f"datagrams_{size}_delivered_pct"] = 100.0 * delivered / w.datagrams
    return result


async def _relay(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    from benchmarks.relay import run_relay

    return await run_relay(stack, cert, w, loop)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


async def _memory(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    if _rss_bytes() is None:
        raise NotImplementedError("no /proc/self/statm to read the resident set size from")
    async with Served(stack, cert) as served:
        await (await stack.connect(served.port, cert)).close()
        gc.collect()
        before = _rss_bytes()
        clients: list[BenchClient] = []
        batch = 50
        for start in range(0, w.idle_sessions, batch):
            count = min(batch, w.idle_sessions - start)
            clients.extend(await asyncio.gather(*(stack.connect(served.port, cert) for _ in range(count))))
        gc.collect()
        after = _rss_bytes()
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await _settle(stack)
    assert before is not None and after is not None
    return {"memory_kib_per_session": (after - before) / 1024 / w.idle_sessions}


class _LoopCounter:
    """Counts the event loop's wake-ups (selector polls) and the callbacks it runs.

    Client and server share the loop in a run, so a count is both sides of one exchange.
    Only asyncio's own loop can be counted (its selector and ready queue are Python objects);
    uvloop's are not.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        selector = getattr(loop, "_selector", None)
        if selector is None or not hasattr(loop, "_ready"):
            raise RuntimeError("only asyncio's selector loop can be counted")
        self.wakeups = 0
        self.callbacks = 0
        self._selector = selector
        self._select = selector.select
        self._loop = loop

        def select(timeout: float | None = None) -> Any:
            self.wakeups += 1
            events = self._select(timeout)
            return events

        selector.select = select
        counter = self

        class CountingQueue(collections.deque):  # type: ignore[type-arg]
            """The loop's ready queue: every callback the loop runs is popped from it."""

            def popleft(self) -> Any:
                counter.callbacks += 1
                return super().popleft()

        self._ready = loop._ready
        loop._ready = CountingQueue(self._ready)

    def snapshot(self) -> tuple[int, int]:
        return self.wakeups, self.callbacks

    def close(self) -> None:
        self._selector.select = self._select
        counting = self._loop._ready
        self._ready.clear()
        self._ready.extend(counting)
        self._loop._ready = self._ready


async def _iterations(stack: Stack, cert: Certificate, w: Workload, loop: str) -> GroupResult:
    if loop != "asyncio":
        raise RuntimeError("loop wake-ups are counted on asyncio's loop only")
    counter = _LoopCounter(asyncio.get_running_loop())
    n = max(20, w.round_trips // 2)
    try:
        async with Served(stack, cert) as served:
            client = await served.connect()
            stream = await client.open_stream()
            stream.write(CMD_ECHO)
            message = b"m" * 64
            for _ in range(10):  # warm-up
                stream.write(message)
                await stream.readexactly(64)
            w0, c0 = counter.snapshot()
            for _ in range(n):
                stream.write(message)
                await stream.readexactly(64)
            w1, c1 = counter.snapshot()
            await stream.finish()
            for _ in range(5):
                await stream_request(client, CMD_ECHO + message)
            w2, _ = counter.snapshot()
            for _ in range(n):
                await stream_request(client, CMD_ECHO + message)
            w3, _ = counter.snapshot()
            for seq in range(10):
                client.send_datagram(b"w" + seq.to_bytes(4, "big") + b"d" * 59)
                await client.receive_datagram(2.0)
            w4, c4 = counter.snapshot()
            received = 0
            for seq in range(n):
                tag = b"e" + seq.to_bytes(4, "big")
                client.send_datagram(tag + b"d" * 59)
                try:
                    while (await client.receive_datagram(2.0))[:5] != tag:
                        pass
                    received += 1
                except (asyncio.TimeoutError, TimeoutError):
                    continue
            w5, c5 = counter.snapshot()
    finally:
        counter.close()
    if received < n // 2:
        raise RuntimeError(f"only {received} of {n} datagram echoes came back")
    return {"loop_wakeups_echo": (w1 - w0) / n, "callbacks_echo": (c1 - c0) / n,
            "loop_wakeups_new_stream": (w3 - w2) / n,
            "loop_wakeups_datagram": (w5 - w4) / received, "callbacks_datagram": (c5 - c4) / received}


#: Every group, in report order: name -> (procedure, per-group timeout in seconds).
GROUPS: dict[str, GroupFn] = {
    "handshake": _handshake,
    "concurrent": _concurrent,
    "echo": _echo,
    "stream_echo": _stream_echo,
    "datagram_echo": _datagram_echo,
    "bulk": _bulk,
    "datagram_rate": _datagram_rate,
    "relay": _relay,
    "memory": _memory,
    "iterations": _iterations,
}


async def run_group(group: str, stack: Stack, cert: Certificate, workload: Workload, loop: str, *,
                    timeout: float = 120.0) -> GroupResult | str:
    """One group on one stack: its metrics, or why it could not be measured."""
    rows = getattr(stack, "rows", None)
    if rows is not None and group not in rows:
        return "not measured on this stack"
    try:
        return await asyncio.wait_for(GROUPS[group](stack, cert, workload, loop), timeout)
    except (asyncio.TimeoutError, TimeoutError):
        return f"timed out after {timeout:g} s"
    except NotImplementedError as exc:
        return str(exc)
    except Exception as exc:
        return f"failed: {type(exc).__name__}: {exc}"
