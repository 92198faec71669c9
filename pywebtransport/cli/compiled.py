"""Make a command run on the compiled ``_wire`` modules, or say loudly that it does not.

``pip install . && python -m pywebtransport demo`` run from a source checkout imports the
checkout's ``pywebtransport/`` (the current directory comes first on ``sys.path``), which
has no compiled modules unless they were built in place. When an installed copy that has
them exists, the command is run again with that copy first on ``sys.path``; otherwise a
warning names the fix. ``python -m benchmarks`` can use the same check.
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["REEXEC_ENV", "compiled_modules_present", "find_compiled_copy", "prefer_compiled"]

#: Set in the environment of a re-run so that it never re-runs itself again.
REEXEC_ENV = "PYWEBTRANSPORT_CLI_REEXEC"


def compiled_modules_present(package_dir: Path) -> bool:
    """True when every ``_wire`` module has a compiled file in ``package_dir/_wire``."""
    from pywebtransport._wire import MODULES

    wire = package_dir / "_wire"
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return all(any((wire / f"{name}{suffix}").exists() for suffix in suffixes) for name in MODULES)


def find_compiled_copy(running: Path) -> Path | None:
    """Another importable ``pywebtransport`` package directory with compiled modules, if any."""
    source_root = running.parent.resolve()
    paths = [p for p in sys.path if Path(p or os.curdir).resolve() != source_root]
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            if finder is importlib.machinery.PathFinder:
                spec = importlib.machinery.PathFinder.find_spec("pywebtransport", paths)
            else:
                spec = find_spec("pywebtransport", None)
        except (ImportError, ValueError):  # a finder that cannot answer for this name
            continue
        if spec is None or spec.origin is None:
            continue
        package_dir = Path(spec.origin).parent.resolve()
        if package_dir != running.resolve() and compiled_modules_present(package_dir):
            return package_dir
    return None


def prefer_compiled(argv: list[str], *, module: str = "pywebtransport") -> int | None:
    """Re-run ``python -m module *argv`` from a compiled copy when this one fell back to the twins.

    Returns the re-run's exit status, or None when this process should carry on (compiled
    modules in use, pure twins asked for, or no compiled copy to run, after a warning).
    """
    from pywebtransport import _wire

    if _wire.IMPLEMENTATION == "cython" or _wire.NO_EXTENSIONS:
        return None
    running = Path(_wire.__file__).parent.parent
    if not os.environ.get(REEXEC_ENV):
        other = find_compiled_copy(running)
        if other is not None:
            code = (f"import runpy, sys; sys.path.insert(0, {str(other.parent)!r}); "
                    f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
            env = {**os.environ, REEXEC_ENV: "1"}
            print(f"note: {running} has no compiled _wire modules; running the installed copy in {other}",
                  file=sys.stderr, flush=True)
            try:
                return subprocess.call([sys.executable, "-c", code, *argv], env=env)
            except KeyboardInterrupt:
                return 130
    print(f"WARNING: running the PURE-PYTHON _wire twins (slower): {running / '_wire'} has no compiled modules.\n"
          "  Build them in place with `pip install -e .`, or run from outside the source tree so that the\n"
          "  installed package is used. Set PYWEBTRANSPORT_NO_EXTENSIONS=1 to choose the twins on purpose.",
          file=sys.stderr, flush=True)
    return None
