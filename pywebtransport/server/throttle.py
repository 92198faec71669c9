"""Warnings a peer can trigger at will, logged at most once per interval."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LogThrottle"]


@dataclass(slots=True)
class LogThrottle:
    """Lets one message through per ``interval`` seconds and counts the ones it holds back,
    so that a peer repeating what triggers a warning cannot flood the log."""

    interval: float
    _last: float | None = None
    _held: int = 0

    def admit(self, now: float) -> int | None:
        """None: hold this message back (it is counted). Otherwise log it, saying how many
        were held back since the last one (the number returned)."""
        if self._last is not None and now - self._last < self.interval:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held
