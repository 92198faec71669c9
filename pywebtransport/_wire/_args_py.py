"""Argument checks shared by every pure ``_wire`` module; twin of ``_args.pxd``.

Each check raises the same exception type with the same message as its compiled twin, and
names the argument, so that a bad argument tells neither variant apart nor leaves the
caller guessing which argument was wrong.
"""

from __future__ import annotations

import operator

__all__ = ["as_bytes", "as_index", "as_size"]


def as_index(value: object, name: str) -> int:
    """``value`` as an exact ``int`` (anything with ``__index__``, bools included).

    TypeError naming ``name`` for anything else: a float is never truncated.
    """
    try:
        return operator.index(value)  # type: ignore[arg-type]  # anything else is the TypeError below
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None


def as_size(value: object, name: str, maximum: int) -> int:
    """A bound of at least 1 (ValueError naming ``name`` below that), clamped to ``maximum``."""
    size = value if type(value) is int else as_index(value, name)
    if size < 1:
        raise ValueError(f"{name} must be at least 1, got {size}")
    return min(size, maximum)


def as_bytes(data: object, name: str) -> bytes:
    """The bytes of any bytes-like ``data``: itself when it is ``bytes``, else a copy.

    A non-contiguous or multi-byte-format view gives ``memoryview(data).tobytes()``, the
    same bytes the compiled modules read. TypeError naming ``name`` for a non-buffer.
    """
    if type(data) is bytes:
        return data
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, not {type(data).__name__}") from None
    return view.tobytes()
