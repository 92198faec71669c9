"""One measuring process: ``python -m benchmarks.worker`` runs groups on stacks on one loop.

The report runner (``benchmarks.transport``) starts workers per event loop, ``_wire``
variant and round, so the loop and ``PYWEBTRANSPORT_NO_EXTENSIONS`` are fixed for a whole
process. Within a worker the stacks are interleaved: each round runs the group once on
every stack (in an order rotated from round to round); a worker given several rounds
reports the median over them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.rows import GROUPS, METRICS, Workload, run_group
from benchmarks.stacks import STACKS
from benchmarks.stacks.base import Certificate

__all__ = ["loop_unavailable", "main", "measure", "run_on_loop"]

T = TypeVar("T")
LOOPS = ("asyncio", "uvloop")


def loop_unavailable(loop: str) -> str | None:
    """Why the event loop ``loop`` cannot be used here, or None."""
    if loop == "asyncio":
        return None
    if loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "uvloop is not installed (pip install 'pywebtransport[uvloop]')"
        return None
    return f"unknown event loop {loop!r}"


def run_on_loop(loop: str, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a new event loop of kind ``loop``."""
    if loop == "uvloop":
        import uvloop

        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(coro)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(coro)


def _loop_clock_step() -> float:
    """The smallest step ``loop.time()`` takes on the running loop (its granularity)."""
    loop = asyncio.get_running_loop()
    smallest = float("inf")
    deadline = time.perf_counter() + 0.01
    last = loop.time()
    while time.perf_counter() < deadline:
        now = loop.time()
        if now != last:
            smallest = min(smallest, now - last)
            last = now
    return smallest


def make_certificate(directory: str) -> Certificate:
    from pywebtransport.utils import generate_self_signed_cert

    cert = generate_self_signed_cert("localhost", output_dir=directory)
    if cert.cert_path is None or cert.key_path is None:
        raise RuntimeError("the certificate was not written to disk")
    return Certificate(Path(cert.cert_path), Path(cert.key_path), cert.sha256)


async def measure(stack_names: list[str], groups: list[str], rounds: int, workload: Workload, loop: str, *,
                  first_round: int = 0) -> dict[str, Any]:
    """Every group on every stack, interleaved by round; medians per metric.

    ``first_round`` numbers the rounds when the runner spreads them over several workers,
    so that the order of the stacks still rotates from one round to the next.
    """
    stacks = {name: STACKS[name]() for name in stack_names}
    results: dict[str, dict[str, Any]] = {name: {} for name in stack_names}
    with tempfile.TemporaryDirectory(prefix="pywebtransport-bench-") as tmp:
        cert = make_certificate(tmp)
        for group in groups:
            metrics = [m.key for m in METRICS if m.group == group]
            samples: dict[str, list[dict[str, float]]] = {name: [] for name in stack_names}
            failures: dict[str, list[str]] = {name: [] for name in stack_names}
            runnable = []
            for name, stack in stacks.items():
                try:
                    why = stack.unavailable()
                except Exception as exc:
                    why = f"failed: {type(exc).__name__}: {exc}"
                if why is None:
                    runnable.append(name)
                else:
                    failures[name].append(why)
            group_rounds = 1 if group == "memory" else rounds
            for r in range(first_round, first_round + group_rounds):
                shift = r % max(1, len(runnable))
                for name in runnable[shift:] + runnable[:shift]:
                    outcome = await run_group(group, stacks[name], cert, workload, loop)
                    if isinstance(outcome, str):
                        failures[name].append(outcome)
                    else:
                        samples[name].append(outcome)
                    print(f"  [{loop}] {group} round {r + 1} {name}: "
                          f"{'ok' if not isinstance(outcome, str) else outcome}", file=sys.stderr, flush=True)
            for name in stack_names:
                for key in metrics:
                    values = [s[key] for s in samples[name] if key in s]
                    if values:
                        results[name][key] = statistics.median(values)
                    else:
                        results[name][key] = {"na": failures[name][0] if failures[name] else "no result"}
                if samples[name] and failures[name]:
                    results[name].setdefault("_notes", []).append(
                        f"{group}: {len(failures[name])} of {group_rounds} rounds failed ({failures[name][0]})")
    from pywebtransport import _wire

    return {"loop": loop, "implementation": _wire.IMPLEMENTATION, "loop_clock_step_s": _loop_clock_step(),
            "rounds": rounds, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--stacks", required=True, help="comma-separated stack names")
    parser.add_argument("--groups", default=",".join(GROUPS), help="comma-separated row groups")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first-round", type=int, default=0, help="number of the first round (rotation)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    args = parser.parse_args(argv)
    workload = Workload.quick() if args.quick else Workload()
    report = run_on_loop(args.loop, measure(args.stacks.split(","), args.groups.split(","), args.rounds, workload,
                                            args.loop, first_round=args.first_round))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
