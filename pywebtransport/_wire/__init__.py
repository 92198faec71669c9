"""Wire codecs: compiled Cython modules with pure-Python twins, and two plain modules.

Each module of ``MODULES`` exists twice: ``NAME.pyx`` (compiled) and ``_NAME_py.py`` (pure),
with the same names and the same behaviour, errors included. This package picks the
compiled set when it imports, else the pure set: all of it, never a mix.
``PYWEBTRANSPORT_NO_EXTENSIONS=1`` forces the pure set. ``IMPLEMENTATION`` says which one
is in use. Nothing outside ``_wire`` imports a variant.

The twins share their helpers: ``_varint.pxd`` / ``_varint_py.py`` (the one varint codec of
each side) and ``_args.pxd`` / ``_args_py.py`` (argument checks with one message each).
``flow`` and ``error_codes`` are plain Python, the same for both variants: their callers are
Python (per stream chunk for ``flow``, per reset for ``error_codes``), and compiling them
saved well under 1% there.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING

__all__ = ["IMPLEMENTATION", "MODULES", "NO_EXTENSIONS", "load_implementation"]

logger = logging.getLogger(__name__)

#: The accelerated modules (compiled, with a pure twin), by their public name.
MODULES = ("buffer", "frames", "capsules", "datagrams")

NO_EXTENSIONS: bool = os.environ.get("PYWEBTRANSPORT_NO_EXTENSIONS", "") not in ("", "0")


def load_implementation(kind: str) -> SimpleNamespace:
    """Import every ``_wire`` module of one variant: ``"cython"`` or ``"python"``.

    Raises ImportError when ``kind`` is ``"cython"`` and a compiled module is missing.
    Tests use this to run the same checks against both variants.
    """
    if kind not in ("cython", "python"):
        raise ValueError(f"unknown _wire implementation {kind!r}; expected 'cython' or 'python'")
    found: dict[str, ModuleType] = {}
    for name in MODULES:
        module_name = name if kind == "cython" else f"_{name}_py"
        module = importlib.import_module(f"{__name__}.{module_name}")
        if kind == "cython" and (module.__file__ or "").endswith(".py"):
            raise ImportError(f"{__name__}.{name} is not compiled")
        found[name] = module
    return SimpleNamespace(kind=kind, **found)


def _select() -> tuple[str, SimpleNamespace]:
    if not NO_EXTENSIONS:
        try:
            return "cython", load_implementation("cython")
        except ImportError as exc:
            logger.debug("compiled _wire unavailable (%s); using pure Python", exc)
    return "python", load_implementation("python")


if TYPE_CHECKING:
    from pywebtransport._wire import buffer, capsules, datagrams, frames

    IMPLEMENTATION: str
else:
    IMPLEMENTATION, _selected = _select()
    buffer = _selected.buffer
    frames = _selected.frames
    capsules = _selected.capsules
    datagrams = _selected.datagrams
    del _selected
