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
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks.rows import Served, stream_request
from benchmarks.stacks import STACKS
from benchmarks.stacks.base import CMD_ECHO, BenchClient, Certificate

__all__ = ["OPS", "CostOptions", "CostRow", "QuicTally", "collected_instructions", "format_pattern_table", "main",
           "operation", "parse_tally", "QUIC_PACKAGES", "quic_package", "run_cost", "run_ops"]

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
#: The line a child prints on stdout with its QUIC call counts (``QuicTally.line``).
_TALLY = "quic-calls "


def collected_instructions(callgrind_stderr: str) -> int:
    """The total callgrind prints at exit (``==PID== Collected : N``); ValueError when absent."""
    found = _COLLECTED.findall(callgrind_stderr)
    if not found:
        raise ValueError("no 'Collected : N' line in valgrind's output:\n" + callgrind_stderr[-2000:])
    return int(found[-1])


async def operation(served: Served, client: BenchClient, op: str) -> Callable[[], Awaitable[None]]:
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


class QuicTally:
    """Counts the calls a process makes to one QUIC library's ``QuicConnection``: datagrams
    it was handed (``receive_datagram``) and transmit passes (``datagrams_to_send``).

    Both benchmark stacks of a library go through these two methods (ours subclasses the
    library's class and calls up), so the counts compare like with like. The wrappers cost a
    few hundred instructions per call, well under a thousandth of an operation.
    """

    METHODS = ("receive_datagram", "datagrams_to_send")

    def __init__(self, package: str) -> None:
        import importlib

        self.calls = dict.fromkeys(self.METHODS, 0)
        self._cls: Any = importlib.import_module(f"{package}.quic.connection").QuicConnection
        self._originals: dict[str, Any] = {}

    def install(self) -> None:
        """Wrap the two methods on the class (for the rest of the process, or ``remove``)."""
        for name in self.METHODS:
            original = self._originals[name] = getattr(self._cls, name)
            setattr(self._cls, name, self._counting(name, original))

    def remove(self) -> None:
        for name, original in self._originals.items():
            setattr(self._cls, name, original)
        self._originals.clear()

    def _counting(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        calls = self.calls

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(*args, **kwargs)

        return counted

    def line(self) -> str:
        """What the child prints: ``quic-calls {"receive_datagram": R, "datagrams_to_send": P}``."""
        return _TALLY + json.dumps(self.calls)


def parse_tally(stdout: str) -> dict[str, int]:
    """The counts in a child's ``quic-calls`` line; ValueError when it printed none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(_TALLY):
            counts = json.loads(line[len(_TALLY):])
            return {name: int(counts[name]) for name in QuicTally.METHODS}
    raise ValueError("the child printed no 'quic-calls' line:\n" + stdout[-2000:])


#: The QUIC libraries whose stacks the suite measures (``ours-X`` and ``raw-X``).
QUIC_PACKAGES = ("aioquic", "qh3")


def quic_package(stack: str) -> str:
    """The QUIC library a benchmark stack runs on (``ours-qh3`` and ``raw-qh3``: ``qh3``);
    ValueError naming the stack for one that runs on none (``websockets``)."""
    package = stack.partition("-")[2]
    if package not in QUIC_PACKAGES:
        raise ValueError(f"{stack!r} runs on no QUIC library ({', '.join(QUIC_PACKAGES)}): "
                         "the cost suite measures the QUIC stacks only")
    return package


async def run_ops(stack_name: str, op: str, count: int, cert: Certificate, *, warm_up: int = WARM_UP) -> int:
    """Serve the app on ``stack_name``, connect once, run ``op`` ``warm_up + count`` times; returns ``count``."""
    stack = STACKS[stack_name]()
    async with Served(stack, cert) as served:
        client = await served.connect()
        once = await operation(served, client, op)
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
    #: QUIC calls per operation (``QuicTally.METHODS``), under callgrind and at full speed.
    pattern: dict[str, float] = field(default_factory=dict)
    native_pattern: dict[str, float] = field(default_factory=dict)


def _child_command(options: CostOptions, stack: str, op: str, count: int, *, native: bool = False) -> list[str]:
    child = [sys.executable, "-m", "benchmarks.cost", stack, op, str(count)]
    return child if native else [options.valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *child]


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
    for native in (False, True):
        tallies = {}
        for count in (small, large):
            done = subprocess.run(_child_command(options, stack, op, count, native=native), capture_output=True,
                                  text=True, env=env, timeout=1800, check=False)
            if done.returncode != 0:
                where = "natively " if native else ""
                row.error = f"{column} {op} x{count} {where}exited {done.returncode}: {done.stderr.strip()[-400:]}"
                return row
            if not native:
                row.counts[count] = collected_instructions(done.stderr)
            tallies[count] = parse_tally(done.stdout)
        pattern = row.native_pattern if native else row.pattern
        for name in QuicTally.METHODS:
            pattern[name] = (tallies[large][name] - tallies[small][name]) / (large - small)
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


def format_pattern_table(rows: list[CostRow]) -> str:
    """A markdown table: QUIC datagrams received and transmit passes per operation of every
    column, under callgrind and at full speed (``under / native``)."""
    columns = list(dict.fromkeys(row.column for row in rows))
    by_cell = {(row.column, row.op): row for row in rows}
    head = ["operation (QUIC calls per op: under callgrind / native)", *columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for op in dict.fromkeys(row.op for row in rows):
        for name, label in (("receive_datagram", "datagrams received"), ("datagrams_to_send", "transmit passes")):
            cells = [f"{OPS.get(op, op)}: {label}"]
            for column in columns:
                row = by_cell.get((column, op))
                if row is None or name not in row.pattern or name not in row.native_pattern:
                    cells.append("error")
                else:
                    cells.append(f"{row.pattern[name]:.2f} / {row.native_pattern[name]:.2f}")
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

    tally = QuicTally(quic_package(args.stack))
    tally.install()
    with tempfile.TemporaryDirectory(prefix="pwt-cost-") as directory:
        asyncio.run(run_ops(args.stack, args.op, args.count, make_certificate(directory)))
    print(tally.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
