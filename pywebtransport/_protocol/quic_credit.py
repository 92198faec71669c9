"""Connection-level QUIC credit (MAX_DATA) that follows what we still hold, on both backends.

aioquic and qh3 raise the MAX_DATA they grant by doubling it once the peer has used half
(qh3 also on every DATA_BLOCKED at the limit), whether or not anyone read the data. Stream
credit is read-driven already (``quic_aioquic.py``, ``quic_qh3_credit.py``), but with many
streams, and streams that end and hand their slot back, a peer could still make a
connection hold far more than ``max_data`` unread: over 40 MB for 120 echo streams whose
replies are never read, about 100 MB for FIN-ended streams parked in a session that never
accepts them (found by fuzzing).

``ConnectionCredit`` takes the place of the library's MAX_DATA ``Limit`` (same fields). The
library still decides *when* to raise it; the raise is capped at *released + window*, where
released is what arrived (``used``) minus what the engine reports it still holds unread
(``held()``: delivered to the application and not read, or buffered for a session not yet
there). A raise of less than half a window is not made, so one MAX_DATA goes out per half
window read, as for streams. Bytes the library holds out of order are not counted: each
stream's own read-driven window bounds them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ["ConnectionCredit"]


class ConnectionCredit:
    """The library's MAX_DATA limit (``frame_type``, ``name``, ``sent``, ``used``, ``value``),
    raised only as far as what we hold allows (see the module docstring)."""

    __slots__ = ("_value", "frame_type", "held", "name", "sent", "used", "window")

    def __init__(self, limit: Any, window: int) -> None:
        self.frame_type: int = limit.frame_type
        self.name: str = limit.name
        self.sent: int = limit.sent
        self.used: int = limit.used
        self._value: int = limit.value
        #: The credit granted beyond what was released (the configured ``max_data``).
        self.window = window
        #: Bytes that arrived and are still held unread (the engine sets it; None: nothing held).
        self.held: Callable[[], int] | None = None

    def _raise(self, wanted: int) -> None:
        current = self._value
        if wanted <= current:
            return  # the libraries only ever raise it
        held = self.held() if self.held is not None else 0
        ceiling = self.used - held + self.window
        if ceiling - current >= self.window // 2:
            self._value = ceiling

    #: Read through the slot's C getter (the libraries read it several times per packet);
    #: written only through ``_raise``.
    value = property(operator.attrgetter("_value"), _raise)
