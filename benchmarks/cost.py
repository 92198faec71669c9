"""CPU cost in instructions: what one operation costs each stack, free of the machine's load.

``python -m benchmarks cost`` counts, with valgrind's callgrind, the instructions a child
process executes. Each child (``python -m benchmarks.cost STACK OP COUNT``) starts the
benchmark app's server and one client of ``STACK`` in one process, warms up, then runs the
operation ``OP`` ``COUNT`` times. Every measurement runs two children that differ only in
``COUNT`` (``small`` and ``large``), so start-up, imports and the handshake cancel::

    instructions per operation = (I(large) - I(small)) / (large - small)

That is client and server together, all user-space code (Python, the QUIC library, TLS,
asyncio), no kernel time. Instruction counts do not move with the load of a shared
machine, so two runs agree to about a percent where wall-clock rows move by tens of
percent; they do not see cache misses or system calls, so they complement the ``transport``
rows, not replace them. The operations are the ``transport`` latency rows': 64 B echo on an
open stream, new stream + 64 B echo, 64 B datagram echo.

Needs the ``valgrind`` command (Debian package ``valgrind``). Children run two at a time;
callgrind slows a child about 80 times, so a full run takes several minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from benchmarks.rows import Served, stream_request
from benchmarks.stacks import STACKS
from benchmarks.stacks.base import CMD_ECHO, BenchClient, Certificate

__all__ = ["OPS", "CostOptions", "CostRow", "collected_instructions", "main", "run_cost", "run_ops"]

#: The operations measured, by name: what each row's ``per op`` counts.
OPS: dict[str, str] = {
    "echo": "64 B echo on an open stream",
    "stream_echo": "new stream + 64 B echo",
    "datagram_echo": "64 B datagram echo",
    "session": "connect + session + close",
}
WARM_UP = 30
#: Ops that cost far more than a round trip run this many times fewer (both counts).
_SCALE_DOWN: dict[str, int] = {"session": 5}
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def collected_instructions(callgrind_stderr: str) -> int:
    """The total callgrind prints at exit (``==PID== Collected : N``); ValueError when absent."""
    found = _COLLECTED.findall(callgrind_stderr)
    if not found:
        raise ValueError("no 'Collected : N' line in valgrind's output:\n" + callgrind_stderr[-2000:])
    return int(found[-1])


async def _operation(served: Served, client: BenchClient, op: str) -> Callable[[], Awaitable[None]]:
    """A callable running one ``op`` on ``client`` (a ``session`` op connects a client of its
    own to ``served``); raises RuntimeError on a wrong answer."""
    message = b"m" * 64
    if op == "echo":
        stream = await client.open_stream()
        stream.write(CMD_ECHO)

        async def echo() -> None:
            stream.write(message)
            if await stream.readexactly(64) != message:
                raise RuntimeError("the echo came back different")

        return echo
    if op == "stream_echo":

        async def stream_echo() -> None:
            if await stream_request(client, CMD_ECHO + message) != message:
                raise RuntimeError("the stream echo came back different")

        return stream_echo
    if op == "datagram_echo":

        async def datagram_echo() -> None:
            client.send_datagram(b"e" + message[1:])
            if await client.receive_datagram(30.0) != b"e" + message[1:]:
                raise RuntimeError("the datagram echo came back different")

        return datagram_echo
    if op == "session":

        async def session() -> None:
            fresh = await served.stack.connect(served.port, served.cert)
            await fresh.close()

        return session
    raise ValueError(f"unknown operation {op!r}; choose from {', '.join(OPS)}")


async def run_ops(stack_name: str, op: str, count: int, cert: Certificate, *, warm_up: int = WARM_UP) -> int:
    """Serve the app on ``stack_name``, connect once, run ``op`` ``warm_up + count`` times; returns ``count``."""
    stack = STACKS[stack_name]()
    async with Served(stack, cert) as served:
        client = await served.connect()
        once = await _operation(served, client, op)
        for _ in range(warm_up):
            await once()
        for _ in range(count):
            await once()
    return count


@dataclass(frozen=True, slots=True)
class CostOptions:
    """What ``run_cost`` measures: stacks x ops, each with ``small`` and ``large`` operations."""

    stacks: tuple[str, ...] = ("ours-aioquic", "ours-qh3", "raw-aioquic", "raw-qh3")
    ops: tuple[str, ...] = tuple(OPS)
    small: int = 100
    large: int = 600
    pure: bool = True
    parallel: int = 2
    valgrind: str = "valgrind"


@dataclass(slots=True)
class CostRow:
    """Instructions per operation of one column (a stack, pure or compiled) on one op."""

    column: str
    op: str
    per_op: float | None = None
    error: str | None = None
    counts: dict[int, int] = field(default_factory=dict)


def _child_command(options: CostOptions, stack: str, op: str, count: int) -> list[str]:
    return [options.valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, "-m", "benchmarks.cost", stack, op, str(count)]


def _counts(options: CostOptions, op: str) -> tuple[int, int]:
    """The two operation counts measured for ``op``: ``small`` and ``large``, scaled down for
    expensive ops but always at least one apart."""
    scale = _SCALE_DOWN.get(op, 1)
    small = max(1, options.small // scale)
    return small, max(small + 1, options.large // scale)


def _measure(options: CostOptions, column: str, stack: str, op: str, pure: bool) -> CostRow:
    row = CostRow(column, op)
    env = {**os.environ, "PYWEBTRANSPORT_NO_EXTENSIONS": "1" if pure else "0"}
    small, large = _counts(options, op)
    for count in (small, large):
        done = subprocess.run(_child_command(options, stack, op, count), capture_output=True, text=True,
                              env=env, timeout=1800, check=False)
        if done.returncode != 0:
            row.error = f"{column} {op} x{count} exited {done.returncode}: {done.stderr.strip()[-400:]}"
            return row
        row.counts[count] = collected_instructions(done.stderr)
    row.per_op = (row.counts[large] - row.counts[small]) / (large - small)
    return row


def _columns(options: CostOptions) -> list[tuple[str, str, bool]]:
    columns = []
    for stack in options.stacks:
        columns.append((stack, stack, False))
        if options.pure and stack.startswith("ours"):
            columns.append((f"{stack} (pure)", stack, True))
    return columns


def run_cost(options: CostOptions, *, progress: Callable[[str], None] = lambda _: None) -> list[CostRow]:
    """Measure every column on every op; rows in column-major order."""
    if shutil.which(options.valgrind) is None:
        raise RuntimeError(f"{options.valgrind!r} is not on PATH: install valgrind (Debian: apt-get install valgrind)")
    jobs = [(column, stack, op, pure) for column, stack, pure in _columns(options) for op in options.ops]
    rows = []
    with ThreadPoolExecutor(max_workers=max(1, options.parallel)) as pool:
        futures = [pool.submit(_measure, options, column, stack, op, pure) for column, stack, op, pure in jobs]
        for future in futures:
            row = future.result()
            progress(f"{row.column} {row.op}: " + (row.error or f"{row.per_op:,.0f} instructions/op"))
            rows.append(row)
    return rows


def format_table(rows: list[CostRow]) -> str:
    """A markdown table: one line per op, one column per stack, then ours / raw ratios."""
    columns = list(dict.fromkeys(row.column for row in rows))
    value = {(row.column, row.op): row.per_op for row in rows}
    ratios = [(ours, raw) for ours in columns for raw in columns
              if ours.startswith("ours-") and not ours.endswith("(pure)") and raw == "raw-" + ours[len("ours-"):]]
    ratios += [(f"{c} (pure)", c) for c in columns if f"{c} (pure)" in columns]
    head = ["operation (instructions per op)", *columns, *(f"{a} / {b}" for a, b in ratios)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for op in dict.fromkeys(row.op for row in rows):
        cells = [OPS.get(op, op)]
        cells += ["error" if value.get((c, op)) is None else f"{value[(c, op)]:,.0f}" for c in columns]
        for a, b in ratios:
            top, bottom = value.get((a, op)), value.get((b, op))
            cells.append(f"{top / bottom:.2f}x" if top and bottom else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The child: ``python -m benchmarks.cost STACK OP COUNT``."""
    parser = argparse.ArgumentParser(description="one cost child: run OP COUNT times on STACK")
    parser.add_argument("stack", choices=sorted(STACKS))
    parser.add_argument("op", choices=sorted(OPS))
    parser.add_argument("count", type=int)
    args = parser.parse_args(argv)
    from benchmarks.worker import make_certificate

    with tempfile.TemporaryDirectory(prefix="pwt-cost-") as directory:
        asyncio.run(run_ops(args.stack, args.op, args.count, make_certificate(directory)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
