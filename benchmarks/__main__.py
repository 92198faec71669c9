"""``python -m benchmarks SUITE [--quick] [--json FILE]``: in-process benchmark reports.

Suites are registered in :data:`SUITES` (name -> function taking the parsed arguments and
returning an exit status). Each prints a table and the machine it ran on, and with
``--json`` writes the same numbers to a file. Ratios are reported, never enforced: the exit
status says whether the suite ran, not whether it was fast enough.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
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
    """Streams and datagrams over our stack vs raw aioquic QUIC streams (the floor)."""
    from benchmarks.wire import machine_info

    try:
        from benchmarks.transport import run_transport
    except ImportError as exc:  # the API layer it drives is still being written
        print(f"the transport suite cannot run yet: {exc}", file=sys.stderr)
        return 2

    machine = machine_info()
    print(f"transport benchmarks over UDP loopback: {machine['cores']} cores, Python {machine['python']}, "
          f"IMPLEMENTATION={machine['IMPLEMENTATION']}")
    results = run_transport(quick=args.quick)
    headers = ("workload", "unit", "ours", "raw aioquic", "ratio vs floor")
    table = [(r.workload, r.unit, f"{r.ours:,.1f}", f"{r.raw_aioquic:,.1f}", f"{r.ratio:.2f}") for r in results]
    widths = [max(len(str(line[i])) for line in (headers, *table)) for i in range(len(headers))]
    for line in (headers, tuple("-" * w for w in widths), *table):
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True))))
    _write_json(args.json, {"suite": "transport", "machine": machine,
                            "results": [r.as_dict() for r in results]})
    return 0


#: Every report this runner knows, by the name given on the command line.
SUITES: dict[str, Suite] = {
    "wire": wire_suite,
    "transport": transport_suite,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=sorted(SUITES), help="which report to run")
    parser.add_argument("--quick", action="store_true", help="short smoke run (seconds): numbers are rough")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--only", metavar="TEXT", help="wire: run only operations whose name contains TEXT")
    args = parser.parse_args(argv)
    return SUITES[args.suite](args)


if __name__ == "__main__":
    sys.exit(main())
