"""The package version, kept in this one place: packaging metadata and ``__version__`` read it."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
