"""Guards that the compiled _wire modules are what runs, and that the twins do not drift.

A broken build falls back to pure Python quietly at import time (loudly only at build
time), so CI must check ``IMPLEMENTATION`` itself. The twins and the ``.pyi`` contracts are
three copies of one API: these tests fail when one of them gains or loses a public name.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from functools import cache
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

import pywebtransport._wire as wire_pkg
from pywebtransport._wire import MODULES, NO_EXTENSIONS, load_implementation

STUB_DIR = Path(wire_pkg.__file__).parent

#: Plain Python modules of ``_wire``: one module, the same for both variants.
PLAIN_MODULES = ("flow", "error_codes")
#: The pure modules that must not carry a varint codec of their own (``_varint_py`` is the one).
PURE_MODULES = (*(f"_{name}_py" for name in MODULES), *PLAIN_MODULES)


@cache
def _load(kind: str) -> SimpleNamespace | None:
    try:
        return load_implementation(kind)
    except ImportError:
        return None


def _compiled() -> SimpleNamespace:
    compiled = _load("cython")
    if compiled is None:
        if NO_EXTENSIONS:
            pytest.skip("the compiled modules are not built and PYWEBTRANSPORT_NO_EXTENSIONS is set")
        pytest.fail("the compiled _wire modules did not load; build them with `pip install -e .`")
    return compiled


def _pure() -> SimpleNamespace:
    pure = _load("python")
    assert pure is not None, "the pure-Python twins must always import"
    return pure


class _Stub:
    """The names a ``.pyi`` file declares: module level, and members of each class."""

    def __init__(self, path: Path) -> None:
        tree = ast.parse(path.read_text(), filename=str(path))
        self.promised: set[str] = set()  # functions, classes, annotated constants
        self.aliases: set[str] = set()  # plain assignments (type aliases) and re-exports
        self.classes: dict[str, set[str]] = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.promised.add(node.name)
            elif isinstance(node, ast.ClassDef):
                self.promised.add(node.name)
                self.classes[node.name] = {
                    item.name if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) else item.target.id
                    for item in node.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                    or (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name))
                }
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.promised.add(node.target.id)
            elif isinstance(node, ast.Assign):
                self.aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.ImportFrom):
                # ``from x import Name as Name`` is the stub convention for a re-export.
                self.aliases.update(a.asname for a in node.names if a.asname is not None and a.asname == a.name)

    @property
    def names(self) -> set[str]:
        return self.promised | self.aliases


@cache
def _stub(name: str) -> _Stub:
    return _Stub(STUB_DIR / f"{name}.pyi")


def _public(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module.__name__} defines no __all__"
    return list(names)


def _public_members(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")} - {
        name for name in dir(BaseException) if not name.startswith("_")
    }


def test_implementation_is_compiled_unless_extensions_are_disabled() -> None:
    expected = "python" if NO_EXTENSIONS else "cython"
    actual = wire_pkg.IMPLEMENTATION
    assert actual == expected, (
        f"IMPLEMENTATION is {actual!r} but {expected!r} was expected "
        f"(PYWEBTRANSPORT_NO_EXTENSIONS {'set' if NO_EXTENSIONS else 'unset'}); a silent fallback to pure "
        "Python means the extensions did not build or import"
    )


@pytest.mark.parametrize("name", MODULES)
def test_selected_module_is_the_expected_variant(name: str) -> None:
    module = getattr(wire_pkg, name)
    compiled_file = not (module.__file__ or "").endswith(".py")
    assert compiled_file is (wire_pkg.IMPLEMENTATION == "cython"), module.__file__


@pytest.mark.parametrize("name", MODULES)
def test_twins_export_the_same_public_names(name: str) -> None:
    compiled, pure = getattr(_compiled(), name), getattr(_pure(), name)
    assert sorted(_public(compiled)) == sorted(_public(pure))
    for public in _public(pure):
        assert hasattr(pure, public), f"{pure.__name__}.__all__ names missing {public!r}"
        assert hasattr(compiled, public), f"{compiled.__name__}.__all__ names missing {public!r}"


@pytest.mark.parametrize("name", MODULES)
def test_compiled_public_callables_are_declared_in_the_stub(name: str) -> None:
    module = getattr(_compiled(), name)
    stub = _stub(name)
    undeclared = [public for public in _public(module) if callable(getattr(module, public))
                  and public not in stub.names]
    assert not undeclared, f"{name}.pyi does not declare {undeclared}"


@pytest.mark.parametrize("kind", ["cython", "python"])
@pytest.mark.parametrize("name", MODULES)
def test_every_name_the_stub_promises_exists(name: str, kind: str) -> None:
    module = getattr(_compiled() if kind == "cython" else _pure(), name)
    missing = sorted(promised for promised in _stub(name).promised if not hasattr(module, promised))
    assert not missing, f"{module.__name__} lacks {missing}, which {name}.pyi promises"


@pytest.mark.parametrize("kind", ["cython", "python"])
@pytest.mark.parametrize("name", MODULES)
def test_classes_have_exactly_the_stub_public_members(name: str, kind: str) -> None:
    module = getattr(_compiled() if kind == "cython" else _pure(), name)
    for cls_name, declared in _stub(name).classes.items():
        cls = getattr(module, cls_name)
        assert inspect.isclass(cls), f"{module.__name__}.{cls_name} is not a class"
        actual = _public_members(cls)
        declared_public = {member for member in declared if not member.startswith("_")}
        assert actual == declared_public, (
            f"{module.__name__}.{cls_name}: not in the stub {sorted(actual - declared_public)}, "
            f"missing {sorted(declared_public - actual)}"
        )


@pytest.mark.parametrize("name", PLAIN_MODULES)
def test_plain_modules_are_python_in_both_variants(name: str) -> None:
    module = importlib.import_module(f"pywebtransport._wire.{name}")
    # A compiled file left over from when the module had a Cython twin would shadow the .py.
    assert (module.__file__ or "").endswith(f"{name}.py"), f"{module.__file__} shadows {name}.py: delete it"
    assert name not in MODULES
    assert not [path.name for path in STUB_DIR.iterdir() if path.stem.split(".")[0] in (name, f"_{name}_py")
                and path.suffix != ".py"], f"{name} has a twin, stub or build left beside it"


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_modules_share_one_varint_codec(name: str) -> None:
    source = (STUB_DIR / f"{name}.py").read_text()
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "pywebtransport._wire._varint_py" for alias in node.names}
    # The length prefix of a varint is the top two bits: only the codec shifts a byte right by 6
    # or sets the 0x40/0x80/0xC0 prefixes.
    for marker in (">> 6", "0x4000", "0x80000000", "0xC000000000000000"):
        assert marker not in source, f"{name}.py has a varint codec of its own ({marker!r}); use _varint_py"
    if name != "error_codes":  # maps codes, never touches a varint
        assert imported, f"{name}.py does not use _varint_py"
