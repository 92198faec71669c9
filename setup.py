"""Build script: compiles the ``pywebtransport._wire`` Cython modules when it can.

The build is optional. Without Cython or a C compiler, or with
``PYWEBTRANSPORT_NO_EXTENSIONS=1`` in the environment, the pure-Python twins are installed
instead, and the build says so loudly so that nobody ships the slow path by accident.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

WIRE = Path("pywebtransport") / "_wire"
NO_EXTENSIONS = os.environ.get("PYWEBTRANSPORT_NO_EXTENSIONS", "") not in ("", "0")


def _warn(message: str) -> None:
    bar = "*" * 78
    print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python (loudly) when compiling fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means fallback
            _warn(f"pywebtransport: compiling the _wire extensions failed ({exc}); "
                  "installing the pure-Python fallback, which is several times slower.")

    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _warn(f"pywebtransport: could not compile {ext.name} ({exc}); "
                  "the pure-Python twin will be used for it.")


def _extensions() -> list:  # type: ignore[type-arg]
    if NO_EXTENSIONS:
        _warn("pywebtransport: PYWEBTRANSPORT_NO_EXTENSIONS is set; installing pure Python only.")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _warn("pywebtransport: Cython is not installed; installing the pure-Python fallback.")
        return []
    sources = sorted(str(p) for p in WIRE.glob("*.pyx"))
    return cythonize(
        sources,
        compiler_directives={"language_level": "3", "embedsignature": True},
        quiet=True,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
