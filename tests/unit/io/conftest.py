"""``mmsg``: each ``_io._mmsg`` variant, like the ``wire`` fixture for ``_wire``.

On Linux without ``PYWEBTRANSPORT_NO_EXTENSIONS`` the compiled module must load and batch:
a build that quietly lost it fails here instead of running only the pure twin.
"""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from pywebtransport._io.modes import load_mmsg
from pywebtransport._wire import NO_EXTENSIONS

MMSG_KINDS = ["cython", "python"] if sys.platform.startswith("linux") and not NO_EXTENSIONS else ["python"]


@pytest.fixture(params=MMSG_KINDS)
def mmsg(request: pytest.FixtureRequest) -> ModuleType:
    """One ``_mmsg`` variant: the compiled module or the pure twin."""
    try:
        module = load_mmsg(request.param)
    except ImportError as exc:  # pragma: no cover - a broken build must fail loudly
        pytest.fail(f"the compiled _io._mmsg did not load ({exc}); build it with `pip install -e .` "
                    "(or `cythonize -i pywebtransport/_io/_mmsg.pyx`), or set PYWEBTRANSPORT_NO_EXTENSIONS=1")
    if request.param == "cython":
        assert module.BATCHED, "the compiled _mmsg does not batch on Linux"
    return module
