"""Build script: compiles every ``pywebtransport/**/*.pyx`` Cython module when it can.

The build is optional. Without Cython or a working C compiler, or with
``PYWEBTRANSPORT_NO_EXTENSIONS=1`` in the environment, the pure-Python twins are installed
instead, and the build says so loudly so that nobody ships the slow path by accident.
``PYWEBTRANSPORT_REQUIRE_EXTENSIONS=1`` (set automatically under cibuildwheel, which exports
``CIBUILDWHEEL=1``) turns that fallback into a build error.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PACKAGE = "pywebtransport"
ROOT = Path(__file__).resolve().parent


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


NO_EXTENSIONS = _flag("PYWEBTRANSPORT_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("PYWEBTRANSPORT_REQUIRE_EXTENSIONS") or os.environ.get("CIBUILDWHEEL") == "1"
COMPILER_DIRECTIVES = {"language_level": "3", "embedsignature": True}
#: What ``cythonize`` may change on an Extension (C sources, and ``# distutils:`` directives).
_CYTHON_FIELDS = (
    "sources",
    "depends",
    "language",
    "include_dirs",
    "define_macros",
    "undef_macros",
    "libraries",
    "library_dirs",
    "runtime_library_dirs",
    "extra_objects",
    "extra_compile_args",
    "extra_link_args",
)


def _say(message: str) -> None:
    print(f"pywebtransport: {message}", flush=True)


def _shout(title: str, lines: list[str]) -> None:
    """Print a banner on stderr that stands out in a long build log."""
    bar = "*" * 78
    body = "\n".join(f"* {line}" for line in lines)
    print(f"\n{bar}\n* pywebtransport: {title}\n{body}\n{bar}\n", file=sys.stderr, flush=True)


def find_pyx_modules() -> list[tuple[str, str]]:
    """(dotted module name, source path relative to this file) for every ``.pyx`` in the package."""
    found = []
    for path in sorted((ROOT / PACKAGE).rglob("*.pyx")):
        relative = path.relative_to(ROOT)
        found.append((".".join(relative.with_suffix("").parts), relative.as_posix()))
    return found


def _consequences(modules: list[str]) -> list[str]:
    """What running without ``modules`` compiled means, as the packages that load them decide it."""
    lines = ["what happens at run time: the pure-Python twins (_NAME_py.py, always installed) stand in."]
    if any(name.startswith(f"{PACKAGE}._wire.") for name in modules):
        # pywebtransport/_wire/__init__.py: load_implementation("cython") or, failing that, all pure.
        lines += [
            "  pywebtransport._wire loads its compiled modules only as a complete set: with any one",
            "  missing, ALL of _wire runs pure Python (pywebtransport._wire.IMPLEMENTATION == 'python'),",
            "  several times slower per wire operation (python -m benchmarks wire measures it).",
        ]
    if f"{PACKAGE}._io._mmsg" in modules:
        # pywebtransport/_io/modes.py: the pure _mmsg twin sends and receives one datagram per call.
        lines += [
            "  pywebtransport._io._mmsg missing: no recvmmsg/sendmmsg batching; the UDP mode 'auto'",
            "  uses 'reader' (one datagram per system call) instead of 'mmsg'.",
        ]
    return lines


def _fallback(reason: str, modules: list[str]) -> None:
    """Say exactly what a build without (some of) its compiled modules means, then stop if asked to."""
    head = [f"NOT COMPILED: {', '.join(modules)}", f"reason: {reason}"]
    how = "to compile: install Cython>=3.1 and a C compiler, then reinstall."
    if REQUIRE_EXTENSIONS:
        forbidden = "PYWEBTRANSPORT_REQUIRE_EXTENSIONS=1 (or CIBUILDWHEEL=1) forbids the pure-Python fallback."
        _shout("BUILD FAILED: compiled modules are required", [*head, forbidden, how])
        raise SystemExit("pywebtransport: compiled modules are required but did not build: " + reason)
    error_instead = "to make this an error instead: set PYWEBTRANSPORT_REQUIRE_EXTENSIONS=1."
    _shout("FALLING BACK TO PURE PYTHON", [*head, *_consequences(modules), how, error_instead])


class OptionalBuildExt(build_ext):
    """Cythonize and compile the extensions, reporting each one; fall back loudly on failure."""

    def initialize_options(self) -> None:
        super().initialize_options()
        self.failed: list[str] = []

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            # Compile the modules side by side; ``build_ext -j N`` still overrides this.
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        names = [ext.name for ext in self.extensions]
        if not names:
            return
        try:
            from Cython.Build import cythonize
        except ImportError:
            _fallback("Cython is not installed in the build environment", names)
            self.extensions = []
            return
        _say(f"cythonizing and compiling {len(names)} modules ({self.parallel} at a time): {', '.join(names)}")
        started = time.monotonic()
        try:
            translated = cythonize(
                self.extensions,
                build_dir=os.path.join(self.build_temp, "cython"),
                compiler_directives=COMPILER_DIRECTIVES,
                nthreads=0 if os.name == "nt" else (self.parallel or 0),
                quiet=True,
            )
        except Exception as exc:
            _fallback(f"Cython could not translate the sources ({exc})", names)
            self.extensions = []
            return
        # Keep the Extension objects setuptools has already prepared; take over what Cython set.
        by_name = {ext.name: ext for ext in translated}
        for ext in self.extensions:
            for attribute in _CYTHON_FIELDS:
                setattr(ext, attribute, getattr(by_name[ext.name], attribute))
        _say(f"cythonized in {time.monotonic() - started:.1f}s; compiling C")
        super().run()
        self.extensions = [ext for ext in self.extensions if ext.name not in self.failed]
        if self.failed:
            _fallback("the C compiler failed on them (see the errors above)", self.failed)
        _say(f"compiled {len(self.extensions)} of {len(names)} modules in {time.monotonic() - started:.1f}s")

    def copy_extensions_to_source(self) -> None:
        # An editable install copies each built module into the tree; skip the ones that failed.
        everything = self.extensions
        self.extensions = [ext for ext in everything if ext.name not in self.failed]
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = everything

    def build_extension(self, ext: Any) -> None:
        if self.compiler.compiler_type != "msvc" and "-g" not in os.environ.get("CFLAGS", "").split():
            # Without debug info the modules compile faster and ship about five times smaller.
            ext.extra_compile_args = [*ext.extra_compile_args, "-g0"]
        started = time.monotonic()
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"pywebtransport: compiling {ext.name} failed: {exc}", file=sys.stderr, flush=True)
            self.failed.append(ext.name)
            return
        _say(f"compiled {ext.name} ({time.monotonic() - started:.1f}s) -> {self.get_ext_fullpath(ext.name)}")


def _extensions() -> list[Extension]:
    modules = find_pyx_modules()
    if NO_EXTENSIONS:
        _fallback("PYWEBTRANSPORT_NO_EXTENSIONS is set (unset it to compile)", [name for name, _ in modules])
        return []
    return [Extension(name, [source]) for name, source in modules]


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
