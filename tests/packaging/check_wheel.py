"""What a pywebtransport wheel and sdist must carry, and what they must not.

The checks work on lists of archive member names, so the unit tests can feed made-up lists;
run as a script they read real archives and exit 1 on any problem::

    python tests/packaging/check_wheel.py --sdist dist/pywebtransport-0.1.0.tar.gz dist/*.whl
    python tests/packaging/check_wheel.py --pure dist/pywebtransport-0.1.0-py3-none-any.whl

Accelerated modules follow the project convention: ``NAME.pyx`` (compiled), ``NAME.pyi``
(stub) and the pure twin ``_NAME_py.py`` (``_NAME.pyx`` has the twin ``_NAME_py.py``), side by
side. A compiled wheel has one extension module for each; a pure wheel has none.
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

__all__ = [
    "accelerated_modules",
    "main",
    "sdist_problems",
    "twin_path",
    "wheel_filename_problems",
    "wheel_problems",
]

PACKAGE = "pywebtransport"

#: Never in a wheel: sources and intermediate files of the build, bytecode, build metadata.
WHEEL_LEFTOVER_SUFFIXES = (".c", ".cpp", ".h", ".pyx", ".pxd", ".o", ".obj", ".lib", ".exp", ".pdb", ".pyc", ".pyo")
#: Never in an sdist: anything compiled or generated, and caches.
SDIST_BUILT_SUFFIXES = (".so", ".pyd", ".dll", ".dylib", ".o", ".obj", ".pyc", ".pyo", ".qlog")
#: Directories of a working tree that an sdist must not carry.
SDIST_FORBIDDEN_DIRS = frozenset({
    "__pycache__", ".git", ".ci", "build", "dist", ".venv", "venv", ".hypothesis", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".benchmarks", ".github",
})
SDIST_REQUIRED = (
    "PKG-INFO", "pyproject.toml", "setup.py", "README.md", "LICENSE", "CHANGELOG.md",
    f"{PACKAGE}/__init__.py", f"{PACKAGE}/_version.py", f"{PACKAGE}/py.typed",
)
WHEEL_REQUIRED = (f"{PACKAGE}/__init__.py", f"{PACKAGE}/_version.py", f"{PACKAGE}/py.typed")
DIST_INFO_REQUIRED = ("METADATA", "WHEEL", "RECORD", "entry_points.txt")
_EXTENSION_MODULE = re.compile(r"^(?P<stem>[A-Za-z_]\w*)(?:\.[\w-]+)?\.(?:so|pyd)$")
_WHEEL_NAME = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-(?P<build>\d[^-]*))?-(?P<python>[^-]+)-(?P<abi>[^-]+)-(?P<platform>[^-]+)\.whl$"
)


def twin_path(stub_or_source: str) -> str:
    """The pure twin of an accelerated module: ``a/b/NAME.pyx`` -> ``a/b/_NAME_py.py``."""
    path = PurePosixPath(stub_or_source)
    return str(path.with_name(f"_{path.stem.lstrip('_')}_py.py"))


def accelerated_modules(names: Iterable[str], *, suffix: str) -> list[str]:
    """Module paths without suffix (``pywebtransport/_wire/buffer``) of each ``suffix`` file that has a twin."""
    present = set(names)
    return sorted(
        name[: -len(suffix)] for name in present
        if name.startswith(f"{PACKAGE}/") and name.endswith(suffix) and twin_path(name) in present
    )


def _extension_modules(names: Iterable[str]) -> dict[str, list[str]]:
    """Compiled module files by module path without suffix (``pywebtransport/_wire/buffer``)."""
    found: dict[str, list[str]] = {}
    for name in names:
        path = PurePosixPath(name)
        match = _EXTENSION_MODULE.match(path.name)
        if match and path.parts[0] == PACKAGE:
            found.setdefault(str(path.parent / match["stem"]), []).append(name)
    return found


def _sdist_relative(names: Sequence[str]) -> tuple[str | None, list[str]]:
    """The sdist's top directory and its member names below it (directories left out)."""
    tops = {name.split("/", 1)[0] for name in names}
    top = tops.pop() if len(tops) == 1 else None
    relative = [name.split("/", 1)[1] for name in names if "/" in name and not name.endswith("/")]
    return top, [name for name in relative if name]


def wheel_problems(names: list[str], *, sdist_names: Sequence[str] | None = None, pure: bool = False) -> list[str]:
    """Everything wrong with a wheel whose archive holds ``names``; an empty list when it is right.

    ``sdist_names`` (the members of the sdist it was built from) adds two checks: every
    ``.pyx`` there has a compiled module here, and no module or stub of the sdist is missing.
    ``pure`` expects a wheel built without extensions: twins and stubs, no compiled module.
    """
    problems: list[str] = []
    present = set(names)
    files = [name for name in names if not name.endswith("/")]

    dist_infos = sorted({name.split("/", 1)[0] for name in files if name.split("/", 1)[0].endswith(".dist-info")})
    if len(dist_infos) != 1 or not dist_infos[0].startswith(f"{PACKAGE}-"):
        problems.append(f"expected one {PACKAGE}-VERSION.dist-info directory, found {dist_infos or 'none'}")
    for dist_info in dist_infos:
        problems += [f"missing {dist_info}/{item}" for item in DIST_INFO_REQUIRED
                     if f"{dist_info}/{item}" not in present]
        licenses = [name for name in files
                    if name.startswith(f"{dist_info}/") and PurePosixPath(name).name.startswith("LICENSE")]
        if not licenses:
            problems.append(f"missing the license file in {dist_info}")

    for name in files:
        top = name.split("/", 1)[0]
        path = PurePosixPath(name)
        if top == f"{PACKAGE}.libs":  # shared libraries a repair tool vendored
            if not re.search(r"\.(so(\.\d+)*|dylib|dll)$", path.name):
                problems.append(f"unexpected file among vendored libraries: {name}")
        elif top != PACKAGE and top not in dist_infos:
            problems.append(f"unexpected top-level entry: {name}")
        if path.suffix in WHEEL_LEFTOVER_SUFFIXES or "__pycache__" in path.parts or ".egg-info" in name:
            problems.append(f"build leftover or source file in the wheel: {name}")

    problems += [f"missing {name}" for name in WHEEL_REQUIRED if name not in present]

    stubs = accelerated_modules(files, suffix=".pyi")
    compiled = _extension_modules(files)
    expected = set(stubs)
    if sdist_names is not None:
        _, sdist_files = _sdist_relative(sdist_names)
        sources = accelerated_modules(sdist_files, suffix=".pyx")
        expected |= set(sources)
        for module in sources:
            if f"{module}.pyi" not in present:
                problems.append(f"missing stub {module}.pyi (the sdist has {module}.pyx)")
            if twin_path(f"{module}.pyx") not in present:
                problems.append(f"missing pure twin {twin_path(module + '.pyx')} (the sdist has {module}.pyx)")
        shipped = (".py", ".pyi", ".typed")
        problems += [
            f"in the sdist but not in the wheel: {name}" for name in sdist_files
            if name.startswith(f"{PACKAGE}/") and name.endswith(shipped) and name not in present
        ]
    if pure:
        problems += [f"compiled module in a pure wheel: {name}" for found in compiled.values() for name in found]
    else:
        if not expected:
            problems.append("no accelerated modules found (no NAME.pyi with its twin _NAME_py.py)")
        for module in sorted(expected):
            found = compiled.get(module, [])
            if len(found) != 1:
                problems.append(f"expected one compiled module for {module.replace('/', '.')}, found {found or 'none'}")
        for module in sorted(set(compiled) - expected):
            problems.append(f"compiled module without a stub and pure twin: {compiled[module]}")
    return problems


def wheel_filename_problems(filename: str, *, pure: bool = False) -> list[str]:
    """What is wrong with a wheel's file name: its tags must match what it holds and be installable."""
    match = _WHEEL_NAME.match(PurePosixPath(filename).name)
    if match is None:
        return [f"not a wheel file name: {filename}"]
    problems = []
    if match["name"] != PACKAGE:
        problems.append(f"distribution name is {match['name']!r}, not {PACKAGE!r}")
    tags = f"{match['python']}-{match['abi']}-{match['platform']}"
    if pure and tags != "py3-none-any":
        problems.append(f"a pure wheel must be tagged py3-none-any, not {tags}")
    if not pure:
        if match["abi"] == "none" or match["platform"] == "any":
            problems.append(f"a compiled wheel must carry ABI and platform tags, not {tags}")
        if re.match(r"linux_", match["platform"]):
            problems.append(
                f"platform tag {match['platform']} is not installable from an index: repair the wheel with "
                "auditwheel to a manylinux or musllinux tag"
            )
    return problems


def sdist_problems(names: list[str], *, source_files: Sequence[str] = ()) -> list[str]:
    """Everything wrong with an sdist whose archive holds ``names``; an empty list when it is right.

    ``source_files`` (paths relative to the project root, e.g. every ``.pyx``, ``.pxd``, ``.pyi``
    and ``.py`` of the package in the working tree) must all be in the sdist.
    """
    problems: list[str] = []
    top, files = _sdist_relative(names)
    if top is None or not top.startswith(f"{PACKAGE}-"):
        problems.append(f"expected every member under one {PACKAGE}-VERSION/ directory")
    present = set(files)
    problems += [f"missing {name}" for name in SDIST_REQUIRED if name not in present]
    problems += [f"missing {name} (it is in the source tree)" for name in source_files if name not in present]

    sources = accelerated_modules(files, suffix=".pyx")
    pyx = [name for name in files if name.startswith(f"{PACKAGE}/") and name.endswith(".pyx")]
    if not pyx:
        problems.append("no Cython sources (.pyx) in the sdist")
    for name in pyx:
        module = name[: -len(".pyx")]
        if module not in sources:
            problems.append(f"{name} has no pure twin {twin_path(name)}")
        if f"{module}.pyi" not in present:
            problems.append(f"{name} has no stub {module}.pyi")

    for name in files:
        path = PurePosixPath(name)
        if path.suffix in SDIST_BUILT_SUFFIXES:
            problems.append(f"compiled or generated file in the sdist: {name}")
        elif path.parts[0] == PACKAGE and path.suffix in (".c", ".html"):
            problems.append(f"generated Cython output in the sdist: {name}")
        if set(path.parts[:-1]) & SDIST_FORBIDDEN_DIRS:
            problems.append(f"working-tree directory in the sdist: {name}")
        if ".egg-info" in name and path.parts[0] != f"{PACKAGE}.egg-info":
            problems.append(f"stray build metadata in the sdist: {name}")
    return problems


def source_tree_files(root: Path) -> list[str]:
    """The files of a working tree that the sdist must carry, relative to ``root``."""
    package = root / PACKAGE
    found = [
        path.relative_to(root).as_posix() for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
        and (path.suffix in (".py", ".pyx", ".pxd", ".pyi") or path.name == "py.typed")
    ]
    return sorted(found)


def _read_names(path: Path) -> list[str]:
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    with tarfile.open(path) as archive:
        return [member.name + ("/" if member.isdir() else "") for member in archive.getmembers()]


def main(argv: Sequence[str] | None = None) -> int:
    """Check the archives named on the command line; print every problem; 1 when there is any."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("wheels", nargs="*", type=Path, help="wheel files to check")
    parser.add_argument("--sdist", type=Path, help="the sdist: checked, and compared with each wheel")
    parser.add_argument("--source-root", type=Path, help="a working tree whose package files must all be shipped")
    parser.add_argument("--source-list", type=Path, help="a file naming (one a line) files that must be shipped")
    parser.add_argument("--pure", action="store_true", help="the wheels were built without extensions")
    args = parser.parse_args(argv)
    if not args.wheels and args.sdist is None:
        parser.error("name at least one wheel or --sdist")

    failed = False
    sources = source_tree_files(args.source_root) if args.source_root else []
    if args.source_list:
        sources += args.source_list.read_text().split()
    # Without an sdist, each wheel is compared with the source files themselves.
    reference: list[str] | None = [f"tree/{name}" for name in sources] if sources else None
    if args.sdist is not None:
        reference = _read_names(args.sdist)
        failed |= _report(args.sdist, len(reference), sdist_problems(reference, source_files=sources))
    for wheel in args.wheels:
        names = _read_names(wheel)
        problems = wheel_filename_problems(wheel.name, pure=args.pure)
        problems += wheel_problems(names, sdist_names=reference, pure=args.pure)
        failed |= _report(wheel, len(names), problems)
        if not problems:
            for modules in _extension_modules(names).values():
                print(f"    compiled: {', '.join(modules)}")
    return 1 if failed else 0


def _report(path: Path, count: int, problems: list[str]) -> bool:
    size = path.stat().st_size / 1024
    if problems:
        print(f"FAIL {path.name} ({count} members, {size:.0f} KiB):")
        for problem in problems:
            print(f"    {problem}")
        return True
    print(f"ok   {path.name} ({count} members, {size:.0f} KiB)")
    return False


if __name__ == "__main__":
    sys.exit(main())
