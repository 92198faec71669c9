"""The transport runner on a tiny workload: every row gets a number or a reason, never a crash.

These tests check that the runner works (worker processes, interleaving, JSON, the n/a
paths), not how fast anything is: the workload is far too small to mean anything.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import benchmarks
import pywebtransport
from benchmarks.__main__ import main
from benchmarks.rows import METRICS, percentile
from benchmarks.stacks import STACKS
from benchmarks.stacks.ours import OursStack
from benchmarks.stacks.rawquic import RawQuicStack
from benchmarks.transport import COLUMNS, TransportOptions, format_table, planned_workers, run_transport
from benchmarks.worker import loop_unavailable
from pywebtransport._wire import NO_EXTENSIONS


def _cells(report: dict[str, Any], loop: str) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = report["loops"][loop]["table"]
    return table


def _assert_number_or_reason(value: object, where: str) -> None:
    if isinstance(value, dict):
        assert isinstance(value.get("na"), str) and value["na"], f"{where}: empty n/a reason {value!r}"
    else:
        assert isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, f"{where}: {value!r}"


def test_quick_run_reports_every_row_on_every_column(tmp_path: Path) -> None:
    out = tmp_path / "transport.json"
    assert main(["transport", "--quick", "--loop", "asyncio", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    table = _cells(report, "asyncio")
    assert set(table) == {c.key for c in COLUMNS}
    for column, values in table.items():
        assert set(values) == {m.key for m in METRICS}, column
        for key, value in values.items():
            _assert_number_or_reason(value, f"{column} / {key}")
    # Our own stack on its default backend and the raw aioquic floor always run: numbers, not reasons.
    for column in ("ours-aioquic", "ours-aioquic (pure)", "raw-aioquic"):
        for key, value in table[column].items():
            assert isinstance(value, (int, float)), f"{column} / {key}: {value}"
    assert report["loops"]["asyncio"]["info"]["pure"]["implementation"] == "python"


def test_second_loop_gives_numbers_or_says_why(tmp_path: Path) -> None:
    out = tmp_path / "uvloop.json"
    assert main(["transport", "--quick", "--loop", "uvloop", "--rows", "echo", "--stacks", "raw-aioquic",
                 "--no-pure", "--json", str(out)]) == 0
    table = _cells(json.loads(out.read_text()), "uvloop")
    assert list(table) == ["raw-aioquic"]
    why = loop_unavailable("uvloop")
    for key in ("echo_open_p50_us", "echo_open_p99_us"):
        value = table["raw-aioquic"][key]
        if why is None:
            assert isinstance(value, (int, float)) and value > 0
        else:
            assert value == {"na": why}


def test_unknown_row_group_is_refused() -> None:
    assert main(["transport", "--quick", "--rows", "no-such-row"]) == 2


def test_missing_packages_and_backends_are_reasons_not_crashes() -> None:
    assert RawQuicStack("raw-none", package="no_such_quic_package").unavailable() == \
        "no_such_quic_package is not installed"
    reason = OursStack("ours-none", backend="no-such-backend").unavailable()
    assert reason is not None and reason.startswith("backend not available")
    assert loop_unavailable("no-such-loop") == "unknown event loop 'no-such-loop'"
    assert OursStack("ours-default").unavailable() is None
    assert set(STACKS) >= {"ours-aioquic", "ours-qh3", "raw-aioquic", "raw-qh3", "websockets"}


def test_percentile_is_nearest_rank() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert percentile(samples, 0.5) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr in an interactive shell."""

    def isatty(self) -> bool:
        return True


#: One row group on the raw aioquic floor, two rounds: two short measuring processes.
_TINY = TransportOptions(groups=("echo",), stacks=("raw-aioquic",), pure=False, quick=True, rounds=2)


def test_transport_progress_counts_measuring_processes_on_a_terminal() -> None:
    assert planned_workers(_TINY) == 2
    stream = _Terminal()
    run_transport(_TINY, progress_stream=stream)
    shown = stream.getvalue()
    assert "\r  asyncio loop: 0/2 measuring processes" in shown
    assert "\r  asyncio loop: 2/2 measuring processes (100%" in shown
    # The workers' own lines are printed above the counter, not torn by it.
    assert "\r\x1b[K  [asyncio] echo round 2 raw-aioquic: ok\n" in shown
    assert shown.endswith("\n")


def test_transport_progress_stays_off_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    run_transport(_TINY, progress_stream=stream)
    shown = stream.getvalue()
    assert "measuring processes" not in shown and "\r" not in shown
    assert "  [asyncio] echo round 1 raw-aioquic: ok\n" in shown  # worker lines pass through


def _tree_without_extensions(tmp_path: Path) -> Path:
    """A checkout-like directory whose ``pywebtransport/`` has no compiled modules."""
    skip = shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__")
    shutil.copytree(Path(pywebtransport.__file__).parent, tmp_path / "pywebtransport", ignore=skip)
    shutil.copytree(Path(benchmarks.__file__).parent, tmp_path / "benchmarks", ignore=skip)
    return tmp_path


def _wire_run(tree: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", "wire", "--quick", "--only", "varint", "--json",
                           str(out)], cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def test_runner_from_a_tree_without_extensions_runs_the_compiled_copy(tmp_path: Path) -> None:
    """``python -m benchmarks`` in a source tree that was never built in place."""
    tree = _tree_without_extensions(tmp_path / "tree")
    out = tmp_path / "wire.json"
    result = _wire_run(tree, out, dict(os.environ))
    assert result.returncode == 0, result.stderr
    implementation = json.loads(out.read_text())["machine"]["IMPLEMENTATION"]
    if NO_EXTENSIONS:  # the twins were asked for: no re-run, no warning
        assert implementation == "python"
        assert "running the installed copy" not in result.stderr and "WARNING" not in result.stderr
    else:
        assert implementation == "cython", result.stderr
        assert "has no compiled _wire modules; running the installed copy" in result.stderr


def test_runner_says_loudly_when_it_falls_back_to_the_pure_twins(tmp_path: Path) -> None:
    tree = _tree_without_extensions(tmp_path / "tree")
    out = tmp_path / "wire.json"
    env = {**os.environ, "PYWEBTRANSPORT_CLI_REEXEC": "1"}  # as if no compiled copy could be found
    env.pop("PYWEBTRANSPORT_NO_EXTENSIONS", None)
    result = _wire_run(tree, out, env)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["machine"]["IMPLEMENTATION"] == "python"
    assert "WARNING: running the PURE-PYTHON _wire twins" in result.stderr


def test_loop_wakeups_are_counted_per_exchange_on_our_stack() -> None:
    from benchmarks.rows import Workload
    from benchmarks.worker import measure

    result = asyncio.run(measure(["ours-aioquic"], ["iterations"], 1, Workload.quick(), "asyncio"))
    row = result["results"]["ours-aioquic"]
    # An echo needs at least one wake-up of each side to read; nothing runs without callbacks.
    for key in ("loop_wakeups_echo", "loop_wakeups_new_stream", "loop_wakeups_datagram"):
        assert 2 <= row[key] < 100, (key, row)
    assert row["callbacks_echo"] >= row["loop_wakeups_echo"] and row["callbacks_datagram"] > 0


def test_the_row_profiler_reports_ours_and_the_raw_library_for_each_operation(
        capsys: Any) -> None:
    from tools.profile_rows import main as profile_rows

    assert profile_rows(["--op", "all", "-n", "32"]) == 0
    out = capsys.readouterr().out
    for op in ("new_stream", "datagram", "connect"):
        assert f"{op} on aioquic" in out
    # Every operation reports both stacks, each with its calls and its layers.
    assert out.count("ours-aioquic:") == 3 and out.count("raw-aioquic:") == 3
    assert out.count("in pywebtransport)") == 6 and "aioquic " in out


def test_ratio_columns_say_above_one_is_better_and_a_faster_latency_reads_above_one() -> None:
    section = {"columns": ["ours-qh3", "raw-qh3"], "table": {
        "ours-qh3": {"echo_open_p50_us": 150.0, "upload_1_mib_s": 40.0},
        "raw-qh3": {"echo_open_p50_us": 300.0, "upload_1_mib_s": 20.0}}}
    table, _ = format_table("asyncio", section)
    header = table.splitlines()[0]
    assert "| ours-qh3 vs raw-qh3 (>1 = better) |" in header
    assert " / raw-qh3" not in header  # a quotient heading would be read backwards on latency rows
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()[2:]}
    echo, bulk = rows["64 B echo, open stream p50"], rows["bulk upload, 1 stream"]
    assert echo.rstrip(" |").endswith("2.00x")  # half the latency: twice as good
    assert bulk.rstrip(" |").endswith("2.00x")  # twice the throughput
