"""Choosing a QUIC backend looks at the file system only for a backend not imported yet
(every connection resolves its backend), and still refuses one that is not installed."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytest

import pywebtransport._protocol.quic as seam


def _no_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    looked_up: list[str] = []

    def find_spec(name: str, *args: Any) -> Any:
        looked_up.append(name)
        raise AssertionError(f"find_spec({name!r}) called")

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    return looked_up


def test_an_imported_backend_is_resolved_without_a_file_system_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    import qh3  # noqa: F401 - imported, as it is once one qh3 connection exists

    looked_up = _no_lookups(monkeypatch)
    assert seam.resolve_backend("qh3") == "qh3"
    assert seam.resolve_backend("aioquic") == "aioquic"
    assert seam.available_backends() == ("aioquic", "qh3")
    assert looked_up == []


def test_the_default_backend_never_looks_up_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "qh3", raising=False)
    looked_up = _no_lookups(monkeypatch)
    assert seam.resolve_backend("aioquic") == "aioquic"
    assert looked_up == []


def test_a_backend_that_is_not_installed_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "qh3", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ImportError, match="'qh3' is not installed"):
        seam.resolve_backend("qh3")
    assert seam.available_backends() == ("aioquic",)
