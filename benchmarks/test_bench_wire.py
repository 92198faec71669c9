"""pytest-benchmark suite for the ``_wire`` hot paths, once per implementation.

Run with ``pytest benchmarks/`` (add ``--benchmark-group-by=param:workload`` to see each
operation's compiled and pure timings side by side). The workloads are the ones
``python -m benchmarks wire`` times; pytest-benchmark reports time per *call*, and a call
does ``ops`` operations (see the test id's workload for the unit).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks.wire import WORKLOADS, Workload
from pywebtransport._wire import NO_EXTENSIONS, load_implementation

KINDS = ["python"] if NO_EXTENSIONS else ["cython", "python"]


@pytest.fixture(params=KINDS, scope="module")
def impl(request: pytest.FixtureRequest) -> SimpleNamespace:
    try:
        return load_implementation(request.param)
    except ImportError as exc:
        pytest.fail(f"the {request.param} _wire modules did not load: {exc}")


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_wire(benchmark: Any, impl: SimpleNamespace, workload: Workload) -> None:
    fn, ops = workload.build(impl)
    benchmark.group = workload.name
    benchmark.extra_info["ops_per_call"] = ops
    benchmark.extra_info["unit"] = workload.unit
    benchmark.extra_info["implementation"] = impl.kind
    benchmark(fn)
