"""The ``workers`` benchmark on a tiny workload: it runs, and every cell is a number or a reason.

Only that the runner works is checked (server processes, load processes, JSON), not how
fast anything is: the workload is far too small to mean anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.workers import ROWS, _split, backend_unavailable, cpu_bound
from pywebtransport.server.workers import multiprocess_unavailable

pytestmark = pytest.mark.timeout(300)


def test_quick_run_measures_one_and_two_workers(tmp_path: Path) -> None:
    out = tmp_path / "workers.json"
    assert main(["workers", "--quick", "--connects", "4", "--backends", "aioquic", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["suite"] == "workers" and report["settings"]["connects"] == 4
    results = report["results"]
    assert set(results) == {"aioquic x1", "aioquic x2"}
    for column, result in results.items():
        assert "na" not in result, f"{column}: {result}"
        for section, key, _, _ in ROWS:
            value = result[section][key]
            assert isinstance(value, (int, float)) and math.isfinite(value) and value >= 0, f"{column} {key}"
        assert result["connect"]["completed_pct"] == 100.0, result["connect"]["errors"]
        assert sum(result["bulk"]["sessions_per_worker"]) == result["bulk"]["connections"] == 2
    workers_two = results["aioquic x2"]
    expected = 1 if multiprocess_unavailable() else 2
    assert [len(pids) for pids in workers_two["server_pids"]] == [expected]
    assert len(workers_two["bulk"]["sessions_per_worker"]) == expected
    # Four connects say nothing about a bar set for 1,000: the target is not judged.
    assert [t["met"] for t in report["targets"]] == [None]
    # ... but the CPU bound that the measured CPU sets on a burst of that size is reported.
    bound = report["targets"][0]["cpu_bound"]
    connect = workers_two["connect"]
    per_connect = connect["server_cpu_ms_per_connect"] + connect["client_cpu_ms_per_connect"]
    assert bound["both_s"] == pytest.approx(per_connect * 4 / bound["cores"] / 1e3)


def test_an_unknown_backend_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    assert backend_unavailable("no-such-backend") is not None
    out = tmp_path / "workers.json"
    assert main(["workers", "--quick", "--backends", "no-such-backend", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"no-such-backend x1", "no-such-backend x2"}
    assert all("backend not available" in r["na"] for r in results.values())


def test_work_is_split_into_positive_near_equal_shares() -> None:
    assert _split(1000, 2) == [500, 500]
    assert _split(7, 2) == [4, 3]
    assert _split(1, 2) == [1]


def _round(p99: float | None, completed: int, errors: dict[str, int], split: list[int]) -> dict[str, object]:
    return {"server_pids": [1, 2],
            "connect": {"attempted": 10, "completed": completed, "completed_pct": 10.0 * completed, "p50_ms": 5.0,
                        "p99_ms": p99, "handshakes_per_s": 100.0, "seconds": 0.1, "server_cpu_ms_per_connect": 2.0,
                        "client_cpu_ms_per_connect": 1.0, "errors": errors},
            "bulk": {"connections": sum(split), "bytes": 1, "mib_s": 3.0, "seconds": 1.0, "sessions_per_worker": split}}


def test_rounds_merge_to_medians_with_failed_percentiles_counted_as_slowest() -> None:
    from benchmarks.workers import _median_result

    merged = _median_result([_round(7.0, 10, {}, [2, 1]), _round(None, 8, {"x": 2}, [3, 0]),
                             _round(9.0, 9, {"x": 1}, [1, 2]), "failed: a round that crashed"])
    assert merged["rounds"] == 3 and merged["failed_rounds"] == ["failed: a round that crashed"]
    assert merged["connect"]["p99_ms"] == 9.0  # median of 7, 9 and a round too failed to have one
    assert merged["connect"]["errors"] == {"x": 3} and merged["connect"]["failed_connects"] == 3
    assert merged["bulk"]["sessions_per_worker"] == [[2, 1], [3, 0], [1, 2]]
    assert _median_result([_round(None, 5, {}, [1]), _round(None, 5, {}, [1])])["connect"]["p99_ms"] is None


def test_cpu_bound_is_the_cpu_of_all_connects_spread_over_the_cores() -> None:
    bound = cpu_bound({"server_cpu_ms_per_connect": 1.5, "client_cpu_ms_per_connect": 2.5}, 1000, cores=2)
    assert bound is not None
    assert bound["both_s"] == pytest.approx(2.0) and bound["server_only_s"] == pytest.approx(0.75)
    assert "2.00 s for server and clients together" in bound["text"] and "0.75 s for the server alone" in bound["text"]
    assert cpu_bound({"server_cpu_ms_per_connect": None, "client_cpu_ms_per_connect": 2.5}, 1000, cores=2) is None
