"""Progress lines for the CLI's long operations, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """A counter redrawn in place on ``stream`` (stderr by default) while work runs.

    Nothing is written when the stream is not a terminal, so piped output and ``--json``
    stay clean. Redraws are limited to ten a second so that tight loops are not slowed.
    """

    def __init__(self, label: str, total: int, *, unit: str = "", stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._last_draw = 0.0
        self._started = time.perf_counter()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more units of work and redraw if enough time has passed."""
        self.done += count
        now = time.perf_counter()
        if self._enabled and (now - self._last_draw >= 0.1 or self.done >= self.total):
            self._last_draw = now
            self._draw()

    def finish(self) -> None:
        """Draw the final count and end the line."""
        if self._enabled:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self) -> None:
        percent = 100 * self.done // self.total if self.total else 100
        elapsed = time.perf_counter() - self._started
        unit = f" {self.unit}" if self.unit else ""
        self._stream.write(f"\r  {self.label}: {self.done}/{self.total}{unit} ({percent}%, {elapsed:.1f} s)\x1b[K")
        self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()
