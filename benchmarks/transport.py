"""``python -m benchmarks transport``: every stack, every row, one run, one process tree.

For each event loop and round the runner starts measuring processes
(``benchmarks.worker``): one with the compiled ``_wire`` running every stack interleaved,
then one with ``PYWEBTRANSPORT_NO_EXTENSIONS=1`` running our stacks (the pure column), so
both variants see the same stretch of machine load; each cell is the median over rounds.
The memory row runs in a fresh process per stack so that one stack's heap does not hide
another's. The runner merges the results into one table per loop and writes JSON and
optional PNG plots. A cell that could not be measured holds the reason instead of a number.
On a terminal, a counter of the measuring processes per loop is kept on stderr.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from benchmarks.rows import GROUPS, METRICS, Metric
from benchmarks.stacks import STACKS
from benchmarks.worker import LOOPS, loop_unavailable
from pywebtransport.cli.progress import Progress

__all__ = ["COLUMNS", "Column", "TransportOptions", "WorkerProgress", "format_table", "parse_loops", "planned_workers",
           "ratio_header", "relay_target", "run_transport"]


@dataclass(frozen=True)
class Column:
    """One column of the report: a stack on one ``_wire`` variant."""

    key: str
    stack: str
    pure: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("ours-aioquic", "ours-aioquic"),
    Column("ours-aioquic (pure)", "ours-aioquic", pure=True),
    Column("ours-qh3", "ours-qh3"),
    Column("ours-qh3 (pure)", "ours-qh3", pure=True),
    Column("raw-aioquic", "raw-aioquic"),
    Column("raw-qh3", "raw-qh3"),
    Column("websockets", "websockets"),
)

#: (ours column, floor column) pairs reported as ratios.
RATIOS: tuple[tuple[str, str], ...] = (
    ("ours-aioquic", "raw-aioquic"),
    ("ours-qh3", "raw-qh3"),
    ("ours-aioquic", "ours-aioquic (pure)"),
)


@dataclass(frozen=True)
class TransportOptions:
    """What to run: loops, row groups, stacks, rounds, workload size, where to write."""

    loops: tuple[str, ...] = ("asyncio",)
    groups: tuple[str, ...] = tuple(GROUPS)
    stacks: tuple[str, ...] = tuple(STACKS)
    rounds: int = 3
    quick: bool = False
    pure: bool = True
    json_path: str | None = None
    plot_dir: str | None = None


class WorkerProgress(Progress):
    """Counts one loop's measuring processes; their own lines are printed above the counter."""

    def line(self, text: str) -> None:
        """Print a worker's line without tearing the counter (redrawn below it on a terminal)."""
        if self.enabled:
            self._stream.write("\r\x1b[K" + text)
            self._draw()
        else:
            self._stream.write(text)
        self._stream.flush()


def planned_workers(options: TransportOptions) -> int:
    """How many measuring processes one loop of ``options`` starts (the progress total)."""
    columns = _columns(options)
    variants = len({c.pure for c in columns})
    shared = [g for g in options.groups if g != "memory"]
    return (options.rounds * variants if shared else 0) + (len(columns) if "memory" in options.groups else 0)


def _columns(options: TransportOptions) -> list[Column]:
    return [c for c in COLUMNS if c.stack in options.stacks and (options.pure or not c.pure)]


def _worker(loop: str, stacks: list[str], groups: list[str], options: TransportOptions, *, pure: bool,
            rounds: int = 1, first_round: int = 0, progress: WorkerProgress | None = None) -> dict[str, Any] | str:
    """Run one measuring process; its report, or why it failed."""
    env = dict(os.environ)
    env.pop("PYWEBTRANSPORT_NO_EXTENSIONS", None)
    if pure:
        env["PYWEBTRANSPORT_NO_EXTENSIONS"] = "1"
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    with tempfile.TemporaryDirectory(prefix="pywebtransport-bench-") as tmp:
        out = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "benchmarks.worker", "--loop", loop, "--stacks", ",".join(stacks),
                   "--groups", ",".join(groups), "--rounds", str(rounds), "--first-round", str(first_round),
                   "--out", str(out)]
        if options.quick:
            command.append("--quick")
        # The worker's progress lines go straight through; the last one names a failure.
        with subprocess.Popen(command, env=env, cwd=root, stderr=subprocess.PIPE, text=True) as process:
            assert process.stderr is not None
            last = "no output"
            for line in process.stderr:
                if progress is not None:
                    progress.line(line)
                else:
                    sys.stderr.write(line)
                if line.strip():
                    last = line.strip()
        if process.returncode != 0 or not out.exists():
            return f"worker failed (exit {process.returncode}): {last}"
        report: dict[str, Any] = json.loads(out.read_text())
        return report


def _fill(table: dict[str, dict[str, Any]], column: str, metrics: list[Metric], outcome: dict[str, Any] | str,
          stack: str) -> None:
    for metric in metrics:
        if isinstance(outcome, str):
            table[column][metric.key] = {"na": outcome}
        else:
            table[column][metric.key] = outcome["results"][stack][metric.key]


def _median_cell(outcomes: list[dict[str, Any] | str], column: Column, key: str) -> Any:
    """The median of one metric over the rounds' workers, or the first reason it has none."""
    values: list[float] = []
    reasons: list[str] = []
    for outcome in outcomes:
        if isinstance(outcome, str):
            reasons.append(outcome)
            continue
        if column.stack.startswith("ours") and not column.pure and outcome["implementation"] != "cython":
            reasons.append(f"the compiled _wire did not load (IMPLEMENTATION={outcome['implementation']})")
            continue
        value = outcome["results"][column.stack][key]
        if isinstance(value, dict):
            reasons.append(value["na"])
        else:
            values.append(value)
    if values:
        return statistics.median(values)
    return {"na": reasons[0] if reasons else "not run"}


def _memory_skip(name: str) -> str | None:
    """Why the memory row cannot run on stack ``name`` (no worker is started then), or None."""
    try:
        stack = STACKS[name]()
        rows = getattr(stack, "rows", None)
        return stack.unavailable() or (None if rows is None or "memory" in rows else "not measured on this stack")
    except Exception as exc:
        return f"failed: {type(exc).__name__}: {exc}"


def _run_loop(loop: str, options: TransportOptions, progress: WorkerProgress | None = None) -> dict[str, Any]:
    columns = _columns(options)
    metrics = [m for m in METRICS if m.group in options.groups]
    table: dict[str, dict[str, Any]] = {c.key: {} for c in columns}
    info: dict[str, Any] = {}
    why_not = loop_unavailable(loop)
    if why_not is not None:
        for column in columns:
            _fill(table, column.key, metrics, why_not, column.stack)
        if progress is not None:
            progress.advance(planned_workers(options))
        return {"columns": [c.key for c in columns], "table": table, "info": {"unavailable": why_not}}
    shared = [g for g in options.groups if g != "memory"]
    shared_metrics = [m for m in metrics if m.group != "memory"]
    # One worker per round and variant, alternating compiled and pure, so that the two
    # variants see the same stretch of machine load; the median is taken over the rounds.
    outcomes: dict[bool, list[dict[str, Any] | str]] = {False: [], True: []}
    for r in range(options.rounds if shared else 0):
        for pure in (False, True):
            chosen = [c for c in columns if c.pure == pure]
            if not chosen:
                continue
            outcome = _worker(loop, [c.stack for c in chosen], shared, options, pure=pure, first_round=r,
                              progress=progress)
            if progress is not None:
                progress.advance()
            if not isinstance(outcome, str):
                info.setdefault("pure" if pure else "compiled", {
                    "implementation": outcome["implementation"], "loop_clock_step_s": outcome["loop_clock_step_s"]})
            outcomes[pure].append(outcome)
    for column in columns:
        for metric in shared_metrics:
            table[column.key][metric.key] = _median_cell(outcomes[column.pure], column, metric.key)
    if "memory" in options.groups:
        for column in columns:
            skip = _memory_skip(column.stack)
            outcome = skip or _worker(loop, [column.stack], ["memory"], options, pure=column.pure, progress=progress)
            if progress is not None:
                progress.advance()
            _fill(table, column.key, [m for m in metrics if m.group == "memory"], outcome, column.stack)
    return {"columns": [c.key for c in columns], "table": table, "info": info}


def _ratio(metric: Metric, ours: Any, floor: Any) -> float | None:
    """1.0 = as good as the floor, above 1 = better (inverted for lower-is-better rows)."""
    if not isinstance(ours, (int, float)) or not isinstance(floor, (int, float)) or not ours or not floor:
        return None
    return ours / floor if metric.higher_is_better else floor / ours


def ratio_header(ours: str, other: str) -> str:
    """The heading of a ratio column. Not "a / b": the cells are "how many times better",
    so a latency row divides the other way, and a plain quotient heading read backwards."""
    return f"{ours} vs {other} (>1 = better)"


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return "n/a"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def format_table(loop: str, section: dict[str, Any]) -> tuple[str, list[str]]:
    """The table of one loop as Markdown, and the n/a reasons as footnote lines."""
    columns: list[str] = section["columns"]
    table = section["table"]
    ratio_pairs = [(a, b) for a, b in RATIOS if a in columns and b in columns]
    headers = ["row", "unit", *columns, *(ratio_header(a, b) for a, b in ratio_pairs)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * 2 + "---:|" * (len(headers) - 2)]
    reasons: dict[str, list[str]] = {}
    for metric in METRICS:
        if metric.key not in table[columns[0]]:
            continue
        cells = []
        for column in columns:
            value = table[column][metric.key]
            cells.append(_cell(value))
            if isinstance(value, dict):
                reasons.setdefault(value["na"], []).append(f"{column}: {metric.label}")
        for a, b in ratio_pairs:
            ratio = _ratio(metric, table[a][metric.key], table[b][metric.key])
            cells.append("-" if ratio is None else f"{ratio:.2f}x")
        lines.append(f"| {metric.label} | {metric.unit} | " + " | ".join(cells) + " |")
    notes = [f"n/a ({len(where)} cells, e.g. {where[0]}): {why}" for why, where in reasons.items()]
    return "\n".join(lines), notes


#: The issue's bar: our relay's CPU per delivered message at most this many times websockets'.
RELAY_CPU_TARGET = 2.0


def relay_target(section: dict[str, Any]) -> dict[str, Any] | None:
    """Ours vs the websockets reference on relay CPU per delivered message, or None."""
    table = section["table"]
    ours = table.get("ours-aioquic", {}).get("relay_cpu_us_per_msg")
    reference = table.get("websockets", {}).get("relay_cpu_us_per_msg")
    if not isinstance(ours, (int, float)) or not isinstance(reference, (int, float)) or not reference:
        return None
    ratio = ours / reference
    return {"ours_us": ours, "websockets_us": reference, "ratio": ratio, "target": RELAY_CPU_TARGET,
            "met": ratio <= RELAY_CPU_TARGET}


def _plot(report: dict[str, Any], directory: str) -> list[str]:
    """One PNG per loop: every row, each column relative to raw aioquic (1.0 = the floor)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("n/a: plots need matplotlib (pip install 'pywebtransport[bench]')", file=sys.stderr)
        return []
    written = []
    Path(directory).mkdir(parents=True, exist_ok=True)
    for loop, section in report["loops"].items():
        table = section["table"]
        metrics = [m for m in METRICS if m.key in table.get("raw-aioquic", {}) and m.unit != "%"
                   and isinstance(table["raw-aioquic"][m.key], (int, float))]
        columns = [c for c in section["columns"] if c != "raw-aioquic"
                   and any(isinstance(table[c][m.key], (int, float)) for m in metrics)]
        if not metrics or not columns:
            continue
        fig, ax = plt.subplots(figsize=(8, 0.28 * len(metrics) * max(2, len(columns)) / 2 + 1.2), dpi=72)
        height = 0.8 / max(1, len(columns))
        for i, column in enumerate(columns):
            ys, xs = [], []
            for j, metric in enumerate(metrics):
                ratio = _ratio(metric, table[column][metric.key], table["raw-aioquic"][metric.key])
                if ratio is not None:
                    ys.append(j + i * height)
                    xs.append(ratio)
            if xs:
                ax.barh(ys, xs, height=height, label=column)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks([j + 0.4 - height / 2 for j in range(len(metrics))])
        ax.set_yticklabels([m.label for m in metrics], fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("relative to raw aioquic (>1 = better)")
        ax.set_title(f"pywebtransport transport benchmarks, {loop} loop", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = str(Path(directory) / f"transport-{loop}.png")
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def _load_average() -> list[float] | None:
    """The 1/5/15-minute load averages: on a shared machine they say how noisy a run was."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run_transport(options: TransportOptions, *, progress_stream: TextIO | None = None) -> dict[str, Any]:
    """Run every selected row on every selected stack and loop; print and return the report.

    A counter of measuring processes goes to ``progress_stream`` (stderr by default) when it
    is a terminal; otherwise the workers' own lines pass through unchanged.
    """
    from benchmarks.wire import machine_info

    started = time.perf_counter()
    machine = machine_info()
    machine["load_average_at_start"] = _load_average()
    print(f"transport benchmarks over UDP loopback: {machine['cores']} cores, Python {machine['python']}, "
          f"loops {', '.join(options.loops)}, {options.rounds} rounds (median)"
          f"{', --quick: a smoke run, not a measurement' if options.quick else ''}")
    report: dict[str, Any] = {"suite": "transport", "machine": machine,
                              "settings": {"rounds": options.rounds, "quick": options.quick,
                                           "groups": list(options.groups), "stacks": list(options.stacks)},
                              "metrics": [vars(m) for m in METRICS if m.group in options.groups],
                              "loops": {}}
    stream = sys.stderr if progress_stream is None else progress_stream
    for loop in options.loops:
        progress = WorkerProgress(f"{loop} loop", planned_workers(options), unit="measuring processes",
                                  stream=stream)
        progress.advance(0)  # the counter shows before the first process is done
        try:
            section = _run_loop(loop, options, progress)
        finally:
            progress.finish()  # ends the counter's line before the table is printed
        report["loops"][loop] = section
        text, notes = format_table(loop, section)
        print(f"\n### {loop} loop {json.dumps(section['info'])}\n\n{text}\n")
        for note in notes:
            print(f"  {note}")
        target = relay_target(section)
        section["relay_target"] = target
        if target is not None:
            print(f"  target: relay CPU per delivered message <= {target['target']:g}x websockets: "
                  f"{target['ours_us']:.1f} us vs {target['websockets_us']:.1f} us = {target['ratio']:.2f}x, "
                  f"{'met' if target['met'] else 'NOT met'}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average_at_end"] = _load_average()
    print(f"\nfinished in {report['seconds']} s")
    if options.json_path:
        Path(options.json_path).write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {options.json_path}")
    if options.plot_dir:
        for path in _plot(report, options.plot_dir):
            print(f"plot written to {path}")
    return report


def parse_loops(value: str) -> tuple[str, ...]:
    """``asyncio``, ``uvloop`` or ``both``."""
    return LOOPS if value == "both" else (value,)
