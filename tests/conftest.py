"""Shared fixtures. ``wire`` runs a test once per _wire implementation.

Without ``PYWEBTRANSPORT_NO_EXTENSIONS`` both variants run and a missing compiled module is
a failure, not a skip: CI must really exercise the compiled code. With it set, only the
pure variant runs (that is the whole point of the variable).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pywebtransport._wire import NO_EXTENSIONS, load_implementation

WIRE_KINDS = ["python"] if NO_EXTENSIONS else ["cython", "python"]


@pytest.fixture(params=WIRE_KINDS, scope="session")
def wire(request: pytest.FixtureRequest) -> SimpleNamespace:
    """Namespace of the _wire modules of one variant (``wire.buffer``, ``wire.frames``...)."""
    kind = request.param
    try:
        return load_implementation(kind)
    except ImportError as exc:  # pragma: no cover - a broken build must fail loudly
        pytest.fail(f"the compiled _wire modules did not load ({exc}); build them with "
                    "`pip install -e .` or set PYWEBTRANSPORT_NO_EXTENSIONS=1 to test pure Python")


@pytest.fixture(scope="session")
def both_wires() -> tuple[SimpleNamespace, SimpleNamespace] | None:
    """(compiled, pure) for properties asserting that they agree; None without compiled."""
    if NO_EXTENSIONS:
        return None
    return load_implementation("cython"), load_implementation("python")
