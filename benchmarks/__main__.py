"""``python -m benchmarks SUITE [--quick] [--json FILE] [options]``: in-process benchmark reports.

Suites are registered in :data:`SUITES` (name -> function taking the parsed arguments and
returning an exit status). Each prints a table and the machine it ran on, and with
``--json`` writes the same numbers to a file. Ratios are reported, never enforced: the exit
status says whether the suite ran, not whether it was fast enough.

Run from a source checkout whose ``pywebtransport/`` was not built in place, the runner
re-runs itself on an installed copy that has the compiled ``_wire`` modules, or warns loudly
that it measures the pure twins (``pywebtransport.cli.compiled.prefer_compiled``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

Suite = Callable[[argparse.Namespace], int]


def _write_json(path: str | None, report: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {path}")


def _format_ns(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100_000 else f"{value:,.0f}"


def wire_suite(args: argparse.Namespace) -> int:
    """Compiled vs pure ``_wire`` operations, ns per operation and the ratio."""
    from benchmarks.wire import TARGETS, machine_info, run_wire

    machine = machine_info()
    print(f"wire benchmarks: {machine['cores']} cores, Python {machine['python']} "
          f"({machine['python_implementation']}, {machine['platform']}), "
          f"IMPLEMENTATION={machine['IMPLEMENTATION']}")
    rows, settings = run_wire(quick=args.quick, only=args.only,
                              progress=lambda name: print(f"  measured {name}", file=sys.stderr))
    print(f"best of {settings['repeats']} repeats of >= {settings['min_time_per_repeat_ms']:g} ms each"
          f"{' (--quick: a smoke run, not a measurement)' if args.quick else ''}")
    for kind, why in settings["missing"].items():
        print(f"WARNING: the {kind} implementation did not load, its column is empty: {why}")

    headers = ("operation", "unit", "pure ns/op", "compiled ns/op", "ratio")
    table = [(r.name, r.unit, _format_ns(r.ns.get("python")), _format_ns(r.ns.get("cython")),
              "-" if r.ratio is None else f"{r.ratio:.1f}x") for r in rows]
    widths = [max(len(str(line[i])) for line in (headers, *table)) for i in range(len(headers))]
    print()
    print("  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))))
    print("  ".join("-" * w for w in widths))
    for line in table:
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True))))
    print()
    for row in rows:
        target = TARGETS.get(row.name)
        if target is not None and row.ratio is not None:
            verdict = "met" if row.ratio >= target else "NOT met"
            print(f"target compiled >= {target:g}x pure on {row.name}: {row.ratio:.1f}x, {verdict}")

    _write_json(args.json, {"suite": "wire", "machine": machine, "settings": settings,
                            "results": [row.as_dict() for row in rows]})
    return 0


def transport_suite(args: argparse.Namespace) -> int:
    """Every stack (ours on each QUIC backend, raw aioquic, raw qh3, websockets) on every row."""
    from benchmarks.rows import GROUPS
    from benchmarks.stacks import STACKS
    from benchmarks.transport import TransportOptions, parse_loops, run_transport

    groups = tuple(args.rows.split(",")) if args.rows else tuple(GROUPS)
    stacks = tuple(args.stacks.split(",")) if args.stacks else tuple(STACKS)
    for name, known in (("row group", GROUPS), ("stack", STACKS)):
        for value in groups if name == "row group" else stacks:
            if value not in known:
                print(f"unknown {name} {value!r}; choose from {', '.join(known)}", file=sys.stderr)
                return 2
    options = TransportOptions(loops=parse_loops(args.loop), groups=groups, stacks=stacks,
                               rounds=args.rounds if args.rounds else (1 if args.quick else 3),
                               quick=args.quick, pure=not args.no_pure, json_path=args.json, plot_dir=args.plot)
    run_transport(options)
    return 0


def workers_suite(args: argparse.Namespace) -> int:
    """One server in 1 and 2 processes (``ServerApp.run(workers=N)``): connects and bulk."""
    from benchmarks.workers import WorkersOptions, run_workers

    options = WorkersOptions(rounds=args.rounds or 1, quick=args.quick, json_path=args.json)
    if args.backends:
        options = replace(options, backends=tuple(args.backends.split(",")))
    if args.connects:
        options = replace(options, connects=args.connects)
    run_workers(options)
    return 0


def cost_suite(args: argparse.Namespace) -> int:
    """Instructions per operation (callgrind) for every stack: load-independent CPU cost."""
    from benchmarks.cost import OPS, CostOptions, format_pattern_table, format_table, quic_package, run_cost
    from benchmarks.stacks import STACKS

    options = CostOptions(pure=not args.no_pure)
    if args.stacks:
        options = replace(options, stacks=tuple(args.stacks.split(",")))
    if args.rows:
        options = replace(options, ops=tuple(args.rows.split(",")))
    if args.quick:
        options = replace(options, small=5, large=25)
    for name, values, known in (("stack", options.stacks, STACKS), ("operation", options.ops, OPS)):
        unknown = [value for value in values if value not in known]
        if unknown:
            print(f"unknown {name} {unknown[0]!r}; choose from {', '.join(known)}", file=sys.stderr)
            return 2
    for stack in options.stacks:
        try:
            quic_package(stack)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    print(f"cost: instructions per operation, (I({options.large}) - I({options.small})) / "
          f"{options.large - options.small} (a fifth as many for session), client and server in one "
          f"process, under callgrind")
    rows = run_cost(options, progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    print(format_table(rows))
    print()
    print("QUIC calls per operation, under callgrind / at full speed: where they differ, callgrind's slowdown "
          "changed the packet pattern (timers fire sooner) and the instruction ratio above does not hold natively")
    print(format_pattern_table(rows))
    errors = [row.error for row in rows if row.error]
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    _write_json(args.json, {"suite": "cost", "small": options.small, "large": options.large,
                            "results": [{"column": r.column, "op": r.op, "instructions_per_op": r.per_op,
                                         "totals": r.counts, "quic_calls_per_op": r.pattern,
                                         "native_quic_calls_per_op": r.native_pattern, "error": r.error}
                                        for r in rows]})
    return 1 if errors else 0


def paired_suite(args: argparse.Namespace) -> int:
    """Two stacks alternated in short blocks in one event loop: p50 and CPU per operation."""
    from benchmarks.paired import PairedOptions, format_table, run_paired

    options = PairedOptions()
    if args.stacks:
        options = replace(options, stacks=tuple(args.stacks.split(",")))
    if args.rows:
        options = replace(options, ops=tuple(args.rows.split(",")))
    if args.blocks:
        options = replace(options, blocks=args.blocks)
    if args.quick:
        options = replace(options, blocks=min(options.blocks, 4), per_block=5, warm_up=5)
    try:
        options.check()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    first, second = options.stacks
    print(f"paired: {first} and {second} in one event loop, {options.blocks} blocks of {options.per_block} "
          f"operations each, alternated (after {options.warm_up} untimed); p50 of every operation's wall "
          f"time, CPU per operation (client and server, one process)")
    rows = run_paired(options, progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    print(format_table(rows, options.stacks))
    _write_json(args.json, {"suite": "paired", "stacks": list(options.stacks), "blocks": options.blocks,
                            "per_block": options.per_block, "warm_up": options.warm_up,
                            "results": [{"op": r.op, "p50_us": r.p50_us, "cpu_us": r.cpu_us, "samples": r.samples}
                                        for r in rows]})
    return 0


#: Every report this runner knows, by the name given on the command line.
SUITES: dict[str, Suite] = {
    "wire": wire_suite,
    "transport": transport_suite,
    "workers": workers_suite,
    "cost": cost_suite,
    "paired": paired_suite,
}


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=sorted(SUITES), help="which report to run")
    parser.add_argument("--quick", action="store_true", help="short smoke run (seconds): numbers are rough")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--only", metavar="TEXT", help="wire: run only operations whose name contains TEXT")
    parser.add_argument("--rows", metavar="GROUPS", help="transport: comma-separated row groups (default: all); "
                        "cost, paired: operations (echo, stream_echo, datagram_echo, session)")
    parser.add_argument("--stacks", metavar="NAMES", help="transport, cost: comma-separated stacks (default: all); "
                        "paired: the two stacks (default ours-qh3,raw-qh3)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="asyncio",
                        help="transport: event loop(s) to run every row on")
    parser.add_argument("--rounds", type=int, default=0, help="transport, workers: rounds per row, median "
                        "reported (transport: default 3, 1 with --quick; workers: default 1)")
    parser.add_argument("--blocks", type=int, default=0, help="paired: blocks per stack (default 20)")
    parser.add_argument("--plot", metavar="DIR", help="transport: write PNG plots to DIR (needs matplotlib)")
    parser.add_argument("--no-pure", action="store_true", help="transport, cost: skip the pure-_wire column")
    parser.add_argument("--backends", metavar="NAMES", help="workers: comma-separated QUIC backends "
                        "(default: aioquic,qh3)")
    parser.add_argument("--connects", type=int, default=0, help="workers: concurrent connects per burst "
                        "(default 1000, 20 with --quick)")
    args = parser.parse_args(arguments)
    from pywebtransport.cli.compiled import prefer_compiled

    status = prefer_compiled(arguments, module="benchmarks")
    if status is not None:
        return status
    return SUITES[args.suite](args)


if __name__ == "__main__":
    sys.exit(main())
