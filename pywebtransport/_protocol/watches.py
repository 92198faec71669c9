"""Writability is announced, not polled: watches a writer sets (a stream's unacknowledged
bytes under a low-water mark with connection room, or session credit for one more stream)
and the StreamWritable / StreamCreditAvailable events that answer them."""

from __future__ import annotations

from collections.abc import Callable

from pywebtransport._protocol import events as ev
from pywebtransport._protocol.budget import SharedBudgets
from pywebtransport._protocol.core import EngineConfig
from pywebtransport._protocol.queries import EngineQueries
from pywebtransport._protocol.quic import QuicCore
from pywebtransport._protocol.streams import StreamKind

__all__ = ["WritabilityWatches"]


class WritabilityWatches(EngineQueries):
    """Write and credit watches, and the send buffers and shared budget they depend on."""

    def __init__(self, quic: QuicCore, *, config: EngineConfig | None = None,
                 budgets: SharedBudgets | None = None) -> None:
        """``budgets``: the server's shared send/receive budgets (None: this engine is bounded
        by its own ``config`` alone)."""
        super().__init__(quic, config=config, budgets=budgets)
        self._write_watch: dict[int, int] = {}  # stream id -> low-water mark of unacked bytes
        #: Called when a watch is answered from outside a call into this engine (another
        #: engine freed room in a shared budget); set by ``watch_writable``.
        self._wakeup: Callable[[], None] | None = None
        self._credit_watch: set[tuple[int, bool]] = set()  # (session id, is_unidirectional)

    def watch_writable(self, stream_id: int, low_water: int, *, wakeup: Callable[[], None] | None = None) -> None:
        """Emit StreamWritable once the stream has at most ``low_water`` bytes unacknowledged
        and the connection has send room (``send_buffer_room() > 0``), at once if both hold
        now, or once the stream can no longer be written.

        ``wakeup`` is called when the event is emitted outside any call into this engine:
        when another engine sharing the server's send budget freed room. The caller then
        collects events as it does after its own calls (it must not re-enter the engine
        from inside the callback; schedule that instead).
        """
        if wakeup is not None:
            self._wakeup = wakeup
        self._write_watch[stream_id] = low_water
        self._check_watches()

    def watch_stream_credit(self, session_id: int, is_unidirectional: bool) -> None:
        """Emit StreamCreditAvailable once the session may open a stream of this kind (at once
        if it may now), or once it closed. Tells the peer WT_STREAMS_BLOCKED when session
        credit is what blocks (draft-15 §5.6.3)."""
        session = self._sessions.get(session_id)
        if session is not None and session.is_open and session.flow is not None \
                and not session.flow.can_open(is_unidirectional):
            session.send_capsules(session.flow.streams_blocked(is_unidirectional))
        self._credit_watch.add((session_id, is_unidirectional))
        self._check_watches()

    def _check_watches(self) -> None:
        """O(watched streams and sessions), never a scan of all of them."""
        if self._write_watch:
            has_room = self._closed or self._send_bound.room() > 0
            for stream_id, low_water in list(self._write_watch.items()):
                record = self._streams.get(stream_id)
                if (record is None or record.kind is not StreamKind.WEBTRANSPORT or self._closed
                        or (has_room and self.stream_send_buffered(stream_id) <= low_water)):
                    del self._write_watch[stream_id]
                    self._events.append(ev.StreamWritable(record.session_id if record is not None else -1,
                                                          stream_id))
            budget = self.budgets.send
            if self._write_watch and not has_room and budget is not None and self._send_bound.budget_short:
                # Room comes back when another connection's bytes are acknowledged: be told.
                budget.notify_when(self._send_bound.resume_at, self._on_budget_room)
        for key in list(self._credit_watch):
            session_id, uni = key
            session = self._sessions.get(session_id)
            if session is None or not session.is_open or self._closed or self.can_open_stream(session_id, uni):
                self._credit_watch.discard(key)
                self._events.append(ev.StreamCreditAvailable(session_id, uni))

    def _on_budget_room(self) -> None:
        """The shared send budget has room again (another engine released bytes)."""
        if self._closed:
            return
        before = len(self._events)
        self._check_watches()
        if len(self._events) != before and self._wakeup is not None:
            self._wakeup()

    def _refresh_send_buffers(self) -> None:
        """Measure what the streams hold now (O(streams holding bytes)) and return what was
        freed to the shared budget; announce room to writers waiting for it."""
        if self._closed:
            return
        before = self._send_bound.held
        self._send_bound.refresh()
        if self._write_watch and self._send_bound.held < before:
            queued = len(self._events)
            self._check_watches()
            if len(self._events) != queued and self._wakeup is not None:
                self._wakeup()

    def _release_budgets(self) -> None:
        """The connection is over: what it held of the shared budgets goes back at once."""
        self._send_bound.close()
        self._streams.receive.close()
        if self.budgets.send is not None:
            self.budgets.send.cancel(self._on_budget_room)
