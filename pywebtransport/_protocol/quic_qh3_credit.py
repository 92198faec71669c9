"""qh3 stream credit that follows the application: read-driven windows, stream-count limits.

qh3 raises a stream's receive window as data *arrives* and doubles the MAX_STREAMS it
grants once the peer used half; neither bounds a peer that a slow application cannot keep
up with. The pieces here make both follow the application instead (see ``quic_qh3.py``'s
docstring): a ``QuicStream`` subclass whose window grows only up to *consumed + window*,
a MAX_STREAMS limit raised only as the peer's streams finish, and qh3's set of discarded
streams that hands each finished peer stream's slot back. ``Qh3Connection`` installs them.
"""

from __future__ import annotations

from typing import Any

from qh3.quic.stream import QuicStream

__all__: list[str] = []

#: MAX_STREAMS of each kind granted in the transport parameters (aioquic's fixed value).
_INITIAL_MAX_STREAMS = 128

#: The slot descriptor behind ``QuicStream.max_stream_data_local`` (the window we police).
_WINDOW_SLOT: Any = QuicStream.__dict__["max_stream_data_local"]


def _read_driven_stream_class(consumed: dict[int, int], window: int) -> type[QuicStream]:
    """A QuicStream subclass (same layout, so streams can be switched to it) whose receive
    window may grow only as far as the application has read plus one window."""

    def get_window(stream: QuicStream) -> int:
        return int(_WINDOW_SLOT.__get__(stream, QuicStream))

    def set_window(stream: QuicStream, value: int) -> None:
        current = _WINDOW_SLOT.__get__(stream, QuicStream)
        if value > current:
            # qh3 doubles the window on arrival and on STREAM_DATA_BLOCKED: cap it at the reads.
            value = max(current, min(value, consumed.get(stream.stream_id or 0, 0) + window))
        _WINDOW_SLOT.__set__(stream, value)

    return type("ReadDrivenQuicStream", (QuicStream,),
                {"__slots__": (), "max_stream_data_local": property(get_window, set_window)})


class _StreamCountLimit:
    """The MAX_STREAMS we grant of one kind, raised only as the peer's streams finish (as
    aioquic does). qh3 doubles it once the peer used half, which bounds nothing; those raises
    are ignored, and ``grant`` is the only way up. Same fields as qh3's ``Limit``."""

    def __init__(self, limit: Any, initial: int) -> None:
        self.frame_type: int = limit.frame_type
        self.name: str = limit.name
        self.sent: int = initial
        self.used: int = limit.used
        self._value: int = initial

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, value: int) -> None:
        if value <= self._value:  # qh3's own raises are refused; lowering before the handshake is allowed
            self._value = value

    def grant(self) -> None:
        """One more stream of this kind may be opened by the peer."""
        self._value += 1


class _FinishedStreams(set[int]):
    """qh3's set of discarded stream ids, which also returns a finished peer stream's slot."""

    def __init__(self, existing: set[int], on_finished: Any) -> None:
        super().__init__(existing)
        self._on_finished = on_finished

    def add(self, stream_id: int) -> None:
        if stream_id not in self:
            super().add(stream_id)
            self._on_finished(stream_id)

