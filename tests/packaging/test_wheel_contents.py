"""The wheel and sdist content rules, on made-up archive listings and on tiny archives built here.

``.ci/wheels.sh`` runs the same checker (``check_wheel.py``) on the real wheels and sdist it
builds; these tests make sure the checker catches each kind of mistake, so a clean report on
a real wheel means something.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.packaging.check_wheel import (
    accelerated_modules,
    main,
    sdist_problems,
    twin_path,
    wheel_filename_problems,
    wheel_problems,
)

DIST_INFO = "pywebtransport-0.1.0.dist-info"
PURE_WHEEL = [
    f"{DIST_INFO}/METADATA",
    f"{DIST_INFO}/WHEEL",
    f"{DIST_INFO}/RECORD",
    f"{DIST_INFO}/entry_points.txt",
    f"{DIST_INFO}/top_level.txt",
    f"{DIST_INFO}/licenses/LICENSE",
    "pywebtransport/__init__.py",
    "pywebtransport/_version.py",
    "pywebtransport/py.typed",
    "pywebtransport/session.py",
    "pywebtransport/_wire/__init__.py",
    "pywebtransport/_wire/buffer.pyi",
    "pywebtransport/_wire/_buffer_py.py",
    "pywebtransport/_wire/frames.pyi",
    "pywebtransport/_wire/_frames_py.py",
    "pywebtransport/_io/__init__.py",
    "pywebtransport/_io/_mmsg.pyi",
    "pywebtransport/_io/_mmsg_py.py",
]
LINUX_MODULES = [
    "pywebtransport/_wire/buffer.cpython-311-x86_64-linux-gnu.so",
    "pywebtransport/_wire/frames.cpython-311-x86_64-linux-gnu.so",
    "pywebtransport/_io/_mmsg.cpython-311-x86_64-linux-gnu.so",
]
COMPILED_WHEEL = PURE_WHEEL + LINUX_MODULES
SDIST = [
    "pywebtransport-0.1.0/",
    *(f"pywebtransport-0.1.0/{name}" for name in [
        "PKG-INFO",
        "pyproject.toml",
        "setup.py",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "MANIFEST.in",
        "pywebtransport.egg-info/PKG-INFO",
        "pywebtransport.egg-info/SOURCES.txt",
        "pywebtransport/__init__.py",
        "pywebtransport/_version.py",
        "pywebtransport/py.typed",
        "pywebtransport/session.py",
        "pywebtransport/_wire/__init__.py",
        "pywebtransport/_wire/_varint.pxd",
        "pywebtransport/_wire/buffer.pyx",
        "pywebtransport/_wire/buffer.pyi",
        "pywebtransport/_wire/_buffer_py.py",
        "pywebtransport/_wire/frames.pyx",
        "pywebtransport/_wire/frames.pyi",
        "pywebtransport/_wire/_frames_py.py",
        "pywebtransport/_io/__init__.py",
        "pywebtransport/_io/_mmsg.pyx",
        "pywebtransport/_io/_mmsg.pyi",
        "pywebtransport/_io/_mmsg_py.py",
        "tests/__init__.py",
        "tests/interop/page.html",
    ]),
]


def _without(names: list[str], *dropped: str) -> list[str]:
    missing = [name for name in dropped if name not in names]
    assert not missing, f"the fixture list has no {missing}"
    return [name for name in names if name not in dropped]


def _one_problem_mentioning(problems: list[str], *words: str) -> None:
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0], problems


def test_twin_of_a_public_and_of_a_private_module() -> None:
    assert twin_path("pywebtransport/_wire/buffer.pyx") == "pywebtransport/_wire/_buffer_py.py"
    assert twin_path("pywebtransport/_io/_mmsg.pyi") == "pywebtransport/_io/_mmsg_py.py"


def test_accelerated_modules_are_the_stubs_with_a_twin() -> None:
    names = [*PURE_WHEEL, "pywebtransport/lonely.pyi"]
    assert accelerated_modules(names, suffix=".pyi") == [
        "pywebtransport/_io/_mmsg",
        "pywebtransport/_wire/buffer",
        "pywebtransport/_wire/frames",
    ]


def test_a_complete_compiled_wheel_has_no_problems() -> None:
    assert wheel_problems(COMPILED_WHEEL) == []
    assert wheel_problems(COMPILED_WHEEL, sdist_names=SDIST) == []


@pytest.mark.parametrize("modules", [
    [  # Windows
        "pywebtransport/_wire/buffer.cp313-win_amd64.pyd",
        "pywebtransport/_wire/frames.cp313-win_amd64.pyd",
        "pywebtransport/_io/_mmsg.cp313-win_amd64.pyd",
    ],
    [  # macOS
        "pywebtransport/_wire/buffer.cpython-313-darwin.so",
        "pywebtransport/_wire/frames.cpython-313-darwin.so",
        "pywebtransport/_io/_mmsg.cpython-313-darwin.so",
    ],
])
def test_compiled_module_names_of_other_platforms_are_recognised(modules: list[str]) -> None:
    assert wheel_problems(PURE_WHEEL + modules) == []


def test_generated_c_file_in_the_wheel_is_reported() -> None:
    problems = wheel_problems([*COMPILED_WHEEL, "pywebtransport/_wire/buffer.c"])
    _one_problem_mentioning(problems, "pywebtransport/_wire/buffer.c", "leftover")


@pytest.mark.parametrize("leftover", [
    "pywebtransport/_wire/buffer.pyx",
    "pywebtransport/_wire/_varint.pxd",
    "pywebtransport/_wire/__pycache__/__init__.cpython-311.pyc",
    "pywebtransport/_wire/buffer.o",
    "pywebtransport/_wire/buffer.obj",
])
def test_sources_and_build_leftovers_in_the_wheel_are_reported(leftover: str) -> None:
    _one_problem_mentioning(wheel_problems([*COMPILED_WHEEL, leftover]), leftover)


def test_missing_compiled_module_is_reported_by_its_dotted_name() -> None:
    names = _without(COMPILED_WHEEL, "pywebtransport/_wire/frames.cpython-311-x86_64-linux-gnu.so")
    _one_problem_mentioning(wheel_problems(names), "pywebtransport._wire.frames", "none")


def test_two_builds_of_one_module_are_reported() -> None:
    names = [*COMPILED_WHEEL, "pywebtransport/_wire/buffer.cpython-312-x86_64-linux-gnu.so"]
    _one_problem_mentioning(wheel_problems(names), "pywebtransport._wire.buffer")


def test_compiled_module_without_stub_and_twin_is_reported() -> None:
    stray = "pywebtransport/_wire/old_codec.cpython-311-x86_64-linux-gnu.so"
    _one_problem_mentioning(wheel_problems([*COMPILED_WHEEL, stray]), stray)


def test_missing_stub_is_caught_against_the_sdist() -> None:
    names = _without(COMPILED_WHEEL, "pywebtransport/_wire/frames.pyi")
    problems = wheel_problems(names, sdist_names=SDIST)
    assert any("missing stub pywebtransport/_wire/frames.pyi" in problem for problem in problems), problems
    assert any("in the sdist but not in the wheel: pywebtransport/_wire/frames.pyi" in p for p in problems), problems


def test_module_dropped_from_the_wheel_is_caught_against_the_sdist() -> None:
    names = _without(COMPILED_WHEEL, "pywebtransport/session.py")
    assert wheel_problems(names) == []  # nothing in the wheel alone says session.py belongs there
    _one_problem_mentioning(wheel_problems(names, sdist_names=SDIST), "pywebtransport/session.py")


@pytest.mark.parametrize("required", [
    "pywebtransport/py.typed",
    "pywebtransport/_version.py",
    f"{DIST_INFO}/licenses/LICENSE",
    f"{DIST_INFO}/RECORD",
])
def test_missing_required_wheel_member_is_reported(required: str) -> None:
    problems = wheel_problems(_without(COMPILED_WHEEL, required))
    assert problems, f"dropping {required} went unnoticed"


def test_unexpected_top_level_package_in_the_wheel_is_reported() -> None:
    _one_problem_mentioning(wheel_problems([*COMPILED_WHEEL, "tests/__init__.py"]), "tests/__init__.py")


def test_vendored_shared_library_is_accepted_but_other_files_there_are_not() -> None:
    assert wheel_problems([*COMPILED_WHEEL, "pywebtransport.libs/libfoo-1a2b3c.so.1"]) == []
    _one_problem_mentioning(wheel_problems([*COMPILED_WHEEL, "pywebtransport.libs/notes.txt"]), "notes.txt")


def test_wheel_without_any_accelerated_module_is_reported() -> None:
    names = [name for name in COMPILED_WHEEL if "_wire/" not in name and "_io/" not in name]
    _one_problem_mentioning(wheel_problems(names), "no accelerated modules")


def test_pure_wheel_must_not_hold_compiled_modules() -> None:
    assert wheel_problems(PURE_WHEEL, pure=True) == []
    assert wheel_problems(PURE_WHEEL, sdist_names=SDIST, pure=True) == []
    problems = wheel_problems(COMPILED_WHEEL, pure=True)
    assert len(problems) == len(LINUX_MODULES), problems


def test_compiled_wheel_missing_every_compiled_module_is_reported() -> None:
    assert len(wheel_problems(PURE_WHEEL)) == 3


@pytest.mark.parametrize("filename", [
    "pywebtransport-0.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "pywebtransport-0.1.0-cp313-cp313-musllinux_1_2_x86_64.whl",
    "pywebtransport-0.1.0-cp310-cp310-macosx_11_0_arm64.whl",
    "pywebtransport-0.1.0-cp312-cp312-win_amd64.whl",
])
def test_installable_compiled_wheel_names(filename: str) -> None:
    assert wheel_filename_problems(filename) == []


def test_unrepaired_linux_wheel_name_is_reported() -> None:
    problems = wheel_filename_problems("pywebtransport-0.1.0-cp311-cp311-linux_x86_64.whl")
    _one_problem_mentioning(problems, "linux_x86_64", "auditwheel")


def test_wheel_name_tags_must_match_pure_or_compiled() -> None:
    assert wheel_filename_problems("pywebtransport-0.1.0-py3-none-any.whl", pure=True) == []
    _one_problem_mentioning(wheel_filename_problems("pywebtransport-0.1.0-py3-none-any.whl"), "py3-none-any")
    _one_problem_mentioning(
        wheel_filename_problems("pywebtransport-0.1.0-cp311-cp311-win_amd64.whl", pure=True), "cp311-cp311-win_amd64"
    )
    assert wheel_filename_problems("something.zip") == ["not a wheel file name: something.zip"]


def test_a_complete_sdist_has_no_problems() -> None:
    assert sdist_problems(SDIST) == []


@pytest.mark.parametrize("generated", [
    "pywebtransport/_wire/buffer.c",
    "pywebtransport/_wire/buffer.html",
    "pywebtransport/_wire/buffer.cpython-311-x86_64-linux-gnu.so",
    "pywebtransport/__pycache__/session.cpython-311.pyc",
    ".ci/venv/bin/activate",
    ".mypy_cache/3.11/cache.db",
    "build/lib/pywebtransport/__init__.py",
    "tests/pywebtransport.egg-info/PKG-INFO",
])
def test_generated_or_working_tree_files_in_the_sdist_are_reported(generated: str) -> None:
    problems = sdist_problems([*SDIST, f"pywebtransport-0.1.0/{generated}"])
    assert problems and all(generated in problem for problem in problems), problems


@pytest.mark.parametrize("required", ["LICENSE", "README.md", "CHANGELOG.md", "pywebtransport/py.typed"])
def test_missing_required_sdist_member_is_reported(required: str) -> None:
    _one_problem_mentioning(sdist_problems(_without(SDIST, f"pywebtransport-0.1.0/{required}")), required)


def test_pyx_without_twin_or_stub_is_reported() -> None:
    names = _without(SDIST, "pywebtransport-0.1.0/pywebtransport/_io/_mmsg_py.py",
                     "pywebtransport-0.1.0/pywebtransport/_wire/frames.pyi")
    problems = sdist_problems(names)
    assert len(problems) == 2, problems
    assert any("_mmsg_py.py" in problem for problem in problems), problems
    assert any("frames.pyi" in problem for problem in problems), problems


def test_sdist_must_carry_every_source_file_of_the_tree() -> None:
    tree = ["pywebtransport/_wire/_varint.pxd", "pywebtransport/_wire/buffer.pyx", "pywebtransport/new_module.py"]
    _one_problem_mentioning(sdist_problems(SDIST, source_files=tree), "pywebtransport/new_module.py")
    dropped = _without(SDIST, "pywebtransport-0.1.0/pywebtransport/_wire/_varint.pxd")
    _one_problem_mentioning(sdist_problems(dropped, source_files=tree[:2]), "_varint.pxd")


def test_sdist_with_two_top_directories_is_reported() -> None:
    problems = sdist_problems([*SDIST, "other-1.0/setup.py"])
    assert any("one pywebtransport-VERSION/ directory" in problem for problem in problems), problems


def _write_wheel(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, b"")
    return path


def _write_sdist(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            info = tarfile.TarInfo(name.rstrip("/"))
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                archive.addfile(info, io.BytesIO(b""))
    return path


def test_command_line_passes_good_archives_and_fails_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sdist = _write_sdist(tmp_path / "pywebtransport-0.1.0.tar.gz", SDIST)
    good = _write_wheel(tmp_path / "pywebtransport-0.1.0-cp311-cp311-manylinux_2_17_x86_64.whl", COMPILED_WHEEL)
    assert main(["--sdist", str(sdist), str(good)]) == 0
    assert "FAIL" not in capsys.readouterr().out

    bad = _write_wheel(tmp_path / "pywebtransport-0.1.0-cp311-cp311-linux_x86_64.whl",
                       [*COMPILED_WHEEL, "pywebtransport/_wire/buffer.c"])
    assert main(["--sdist", str(sdist), str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {bad.name}" in out and "buffer.c" in out and "auditwheel" in out
    assert f"ok   {good.name}" in out


def test_command_line_checks_the_source_tree_against_the_sdist(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "pywebtransport" / "_wire").mkdir(parents=True)
    (tree / "pywebtransport" / "_wire" / "buffer.pyx").write_text("")
    sdist = _write_sdist(tmp_path / "pywebtransport-0.1.0.tar.gz", SDIST)
    assert main(["--sdist", str(sdist), "--source-root", str(tree)]) == 0
    (tree / "pywebtransport" / "_wire" / "extra.pxd").write_text("")
    assert main(["--sdist", str(sdist), "--source-root", str(tree)]) == 1


def test_command_line_checks_a_list_of_source_files_against_the_sdist(tmp_path: Path) -> None:
    sdist = _write_sdist(tmp_path / "pywebtransport-0.1.0.tar.gz", SDIST)
    listing = tmp_path / "sources.txt"
    listing.write_text("pywebtransport/__init__.py\npywebtransport/_wire/_varint.pxd\n")
    assert main(["--sdist", str(sdist), "--source-list", str(listing)]) == 0
    listing.write_text("pywebtransport/__init__.py\npywebtransport/_wire/gone.pxd\n")
    assert main(["--sdist", str(sdist), "--source-list", str(listing)]) == 1


def test_command_line_compares_a_wheel_with_the_source_tree_without_an_sdist(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "pywebtransport" / "_wire").mkdir(parents=True)
    for name in ("__init__.py", "_wire/buffer.pyx", "_wire/buffer.pyi", "_wire/_buffer_py.py"):
        (tree / "pywebtransport" / name).write_text("")
    wheel = _write_wheel(tmp_path / "pywebtransport-0.1.0-cp311-cp311-manylinux_2_17_x86_64.whl", COMPILED_WHEEL)
    assert main(["--source-root", str(tree), str(wheel)]) == 0
    (tree / "pywebtransport" / "_wire" / "extra.pyx").write_text("")  # a module the wheel did not compile
    (tree / "pywebtransport" / "_wire" / "extra.pyi").write_text("")
    (tree / "pywebtransport" / "_wire" / "_extra_py.py").write_text("")
    assert main(["--source-root", str(tree), str(wheel)]) == 1
