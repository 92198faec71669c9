"""Two stacks in one event loop, their operations alternated in short blocks.

``python -m benchmarks paired`` answers one question the ``transport`` rows answer noisily:
how one stack's latency compares with another's on the same operation. ``transport`` runs a
whole group (200 round trips) on one stack, then on the next; on a shared machine the load
changes between groups, and the same code's ratio moves by up to 1.5x from one run to the
next. Here both stacks' servers and clients live in one process and one loop, and the
operation alternates between them every ``per_block`` operations (the order flipping each
block), so both see the same seconds of load and most of that drift cancels.

What it adds instead is cross-talk: the idle stack's connection shares the loop and the
heap (a timer of its may fire inside the other's block). Read it beside ``transport``,
not instead of it.

The operations are ``cost``'s (:func:`benchmarks.cost.operation`): 64 B echo on an open
stream, new stream + 64 B echo, 64 B datagram echo, connect + session + close. Each stack
runs ``warm_up`` untimed operations first.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks.cost import OPS, operation
from benchmarks.rows import Served
from benchmarks.stacks import STACKS
from benchmarks.stacks.base import Certificate
from benchmarks.worker import make_certificate

__all__ = ["PairedOptions", "PairedRow", "format_table", "run_pair", "run_paired"]


@dataclass(frozen=True, slots=True)
class PairedOptions:
    """Which two stacks, which operations, and how many blocks of how many operations."""

    stacks: tuple[str, ...] = ("ours-qh3", "raw-qh3")
    ops: tuple[str, ...] = ("echo", "stream_echo", "datagram_echo")
    blocks: int = 20
    per_block: int = 50
    warm_up: int = 100

    def check(self) -> None:
        """ValueError naming what is wrong: an unknown stack or operation, the same stack
        twice, or fewer than one block or operation per block."""
        if len(self.stacks) != 2 or self.stacks[0] == self.stacks[1]:
            raise ValueError(f"paired needs two different stacks, got {', '.join(self.stacks)}")
        for stack in self.stacks:
            if stack not in STACKS:
                raise ValueError(f"unknown stack {stack!r}; choose from {', '.join(STACKS)}")
        for op in self.ops:
            if op not in OPS:
                raise ValueError(f"unknown operation {op!r}; choose from {', '.join(OPS)}")
        if self.blocks < 1 or self.per_block < 1 or self.warm_up < 0:
            raise ValueError(f"blocks and per_block must be >= 1 and warm_up >= 0, got "
                             f"{self.blocks}, {self.per_block}, {self.warm_up}")


@dataclass(slots=True)
class PairedRow:
    """One operation on both stacks: median wall time and mean CPU time per operation (both
    sides of the connection, one process), in microseconds, and how many were timed."""

    op: str
    p50_us: dict[str, float]
    cpu_us: dict[str, float]
    samples: dict[str, int]

    def ratio(self, first: str, second: str) -> tuple[float, float]:
        """(p50 ratio, CPU ratio) of ``first`` over ``second``: above 1, ``first`` is slower."""
        return self.p50_us[first] / self.p50_us[second], self.cpu_us[first] / self.cpu_us[second]


async def run_pair(options: PairedOptions, op: str, cert: Certificate) -> PairedRow:
    """Serve and connect both stacks, warm each up, then time ``op`` in alternating blocks."""
    once: dict[str, Callable[[], Awaitable[None]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for name in options.stacks:
            served = await stack.enter_async_context(Served(STACKS[name](), cert))
            client = await served.connect()
            once[name] = await operation(served, client, op)
            for _ in range(options.warm_up):
                await once[name]()
        walls: dict[str, list[float]] = {name: [] for name in options.stacks}
        cpu = dict.fromkeys(options.stacks, 0.0)
        for block in range(options.blocks):
            order = options.stacks if block % 2 == 0 else options.stacks[::-1]
            for name in order:
                run = once[name]
                times = walls[name]
                started = time.process_time()
                for _ in range(options.per_block):
                    t0 = time.perf_counter()
                    await run()
                    times.append(time.perf_counter() - t0)
                cpu[name] += time.process_time() - started
    return PairedRow(op, {name: statistics.median(walls[name]) * 1e6 for name in options.stacks},
                     {name: cpu[name] / len(walls[name]) * 1e6 for name in options.stacks},
                     {name: len(walls[name]) for name in options.stacks})


def run_paired(options: PairedOptions, *, progress: Callable[[str], None] | None = None) -> list[PairedRow]:
    """Every operation of ``options``, each in a fresh event loop; ValueError for bad options."""
    options.check()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pywebtransport-paired-") as tmp:
        cert = make_certificate(tmp)
        for op in options.ops:
            rows.append(asyncio.run(run_pair(options, op, cert)))
            if progress is not None:
                progress(f"{op}: done")
    return rows


def format_table(rows: list[PairedRow], stacks: tuple[str, ...]) -> str:
    """A Markdown table: per operation, each stack's p50 and CPU, and first / second."""
    first, second = stacks
    lines = [f"| operation | {first} p50 us | {second} p50 us | p50 {first} / {second} | "
             f"{first} CPU us | {second} CPU us | CPU {first} / {second} |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        p50, cpu = row.ratio(first, second)
        lines.append(f"| {OPS[row.op]} | {row.p50_us[first]:.1f} | {row.p50_us[second]:.1f} | {p50:.2f}x | "
                     f"{row.cpu_us[first]:.1f} | {row.cpu_us[second]:.1f} | {cpu:.2f}x |")
    return "\n".join(lines)
