"""The transport runner on a tiny workload: every row gets a number or a reason, never a crash.

These tests check that the runner works (worker processes, interleaving, JSON, the n/a
paths), not how fast anything is: the workload is far too small to mean anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmarks.__main__ import main
from benchmarks.rows import METRICS, percentile
from benchmarks.stacks import STACKS
from benchmarks.stacks.ours import OursStack
from benchmarks.stacks.rawquic import RawQuicStack
from benchmarks.transport import COLUMNS
from benchmarks.worker import loop_unavailable


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
