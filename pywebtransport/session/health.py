"""A session's statistics, diagnostics and health monitoring, all read from the engine's
snapshot of the session (durations on its monotonic clock; wall-clock only for display).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pywebtransport._protocol import events as ev
from pywebtransport.session.core import SessionCore
from pywebtransport.session.stats import SessionDiagnostics, SessionStatistics, SessionStats
from pywebtransport.types import CloseCause, SessionState

__all__ = ["SessionHealth"]

logger = logging.getLogger(__name__)


class SessionHealth(SessionCore):
    """What a session says about itself (a part of WebTransportSession)."""

    # ------------------------------------------------------------------ statistics

    @property
    def stats(self) -> SessionStats:
        """Statistics from the engine's snapshot (timestamps are wall-clock, for display).

        The same object is returned every time and refreshed from the engine on each access
        and when the session closes, so a reference kept across the close sees it.
        """
        stats = self._stats_record
        if stats is None:
            stats = self._stats_record = SessionStats(session_id=self._session_id, created_at=self._created_at)
        snapshot = self._snapshot()
        stats.stream_errors = self._stream_errors
        stats.protocol_errors = self._protocol_errors
        if snapshot is None:
            return stats
        bidi = snapshot.local_streams_bidi_opened + snapshot.peer_streams_bidi_opened
        uni = snapshot.local_streams_uni_opened + snapshot.peer_streams_uni_opened
        created_at = self._wall(snapshot.created_at)
        stats.created_at = created_at if created_at is not None else stats.created_at
        stats.ready_at = self._wall(snapshot.ready_at)
        stats.closed_at = self._wall(snapshot.closed_at)
        stats.monotonic_ready_at = snapshot.ready_at
        stats.monotonic_closed_at = snapshot.closed_at
        stats.streams_created = bidi + uni
        stats.streams_closed = max(0, bidi + uni - snapshot.open_streams)
        stats.bidirectional_streams = bidi
        stats.unidirectional_streams = uni
        stats.datagrams_sent = snapshot.datagrams_sent
        stats.datagrams_received = snapshot.datagrams_received
        return stats

    def get_statistics(self) -> SessionStatistics:
        """Transport and payload statistics of the session now (RTT, congestion window, bytes
        and datagrams); RTT and congestion fields read 0 once the connection is gone."""
        snapshot = self._snapshot()
        connection = self._connection_ref()
        rtt = connection.transport_rtt() if connection is not None else None
        return SessionStatistics(
            session_id=self._session_id,
            backend=connection.quic_backend if connection is not None else "",
            smoothed_rtt=rtt.smoothed if rtt else 0.0,
            min_rtt=rtt.minimum if rtt else 0.0,
            latest_rtt=rtt.latest if rtt else 0.0,
            congestion_window=rtt.congestion_window if rtt else 0,
            bytes_in_flight=rtt.bytes_in_flight if rtt else 0,
            stream_bytes_sent=snapshot.data_sent if snapshot else 0,
            stream_bytes_received=snapshot.data_received if snapshot else 0,
            datagrams_sent=snapshot.datagrams_sent if snapshot else 0,
            datagrams_received=snapshot.datagrams_received if snapshot else 0,
            datagrams_dropped=snapshot.datagrams_dropped if snapshot else 0,
            datagrams_receive_dropped=self._datagrams.receive_dropped if self._datagrams is not None else 0,
            datagram_bytes_sent=snapshot.datagram_bytes_sent if snapshot else 0,
            datagram_bytes_received=snapshot.datagram_bytes_received if snapshot else 0,
        )

    # ------------------------------------------------------------------ diagnostics

    async def diagnostics(self) -> SessionDiagnostics:
        """A snapshot of the session's protocol state from the engine."""
        snapshot = self._snapshot()
        limits = self._limits()
        waiting = self._credit_waiter_lists
        pending_bidi = list(waiting[False]) if waiting is not None else []
        pending_uni = list(waiting[True]) if waiting is not None else []
        info = self._closing_info()
        created = self._wall(snapshot.created_at) if snapshot is not None else None
        return SessionDiagnostics(
            session_id=self._session_id,
            control_stream_id=self._control_stream_id,
            state=self.state,
            path=self._path,
            headers=self.headers,
            created_at=created if created is not None else self._wall_anchor,
            local_max_data=limits["local_max_data"],
            local_data_sent=snapshot.data_sent if snapshot else 0,
            peer_max_data=limits["peer_max_data"],
            peer_data_sent=snapshot.data_received if snapshot else 0,
            local_max_streams_bidi=limits["local_max_streams_bidi"],
            local_streams_bidi_opened=snapshot.local_streams_bidi_opened if snapshot else 0,
            peer_max_streams_bidi=limits["peer_max_streams_bidi"],
            peer_streams_bidi_opened=snapshot.peer_streams_bidi_opened if snapshot else 0,
            local_max_streams_uni=limits["local_max_streams_uni"],
            local_streams_uni_opened=snapshot.local_streams_uni_opened if snapshot else 0,
            peer_max_streams_uni=limits["peer_max_streams_uni"],
            peer_streams_uni_opened=snapshot.peer_streams_uni_opened if snapshot else 0,
            pending_bidi_stream_futures=pending_bidi,
            pending_uni_stream_futures=pending_uni,
            datagrams_sent=snapshot.datagrams_sent if snapshot else 0,
            datagram_bytes_sent=snapshot.datagram_bytes_sent if snapshot else 0,
            datagrams_received=snapshot.datagrams_received if snapshot else 0,
            datagram_bytes_received=snapshot.datagram_bytes_received if snapshot else 0,
            close_code=info[0] if info else None,
            close_reason=info[1] if info else None,
            closed_at=self._wall(snapshot.closed_at) if snapshot else None,
            ready_at=self._wall(snapshot.ready_at) if snapshot else None,
        )

    def _limits(self) -> dict[str, int]:
        """The session's flow-control limits, from the snapshot (0 without flow control)."""
        snapshot = self._snapshot()
        names = ("local_max_data", "peer_max_data", "local_max_streams_bidi", "peer_max_streams_bidi",
                 "local_max_streams_uni", "peer_max_streams_uni", "local_data_received")
        if snapshot is None:
            return dict.fromkeys(names, 0)
        return {name: int(getattr(snapshot, name)) for name in names}

    async def get_session_stats(self) -> dict[str, Any]:
        """Current statistics as a dict (SessionStats fields plus live counters)."""
        data = self.stats.to_dict()
        data["state"] = self.state.value
        data["path"] = self._path
        data["close_cause"] = self.close_cause.value if self.close_cause is not None else None
        if self._datagrams is not None:
            data["datagram"] = self._datagrams.get_stats()
        return data

    async def get_summary(self) -> dict[str, Any]:
        """A compact description for monitoring."""
        stats = self.stats
        return {
            "session_id": self._session_id,
            "state": self.state.value,
            "path": self._path,
            "uptime": stats.uptime,
            "active_streams": stats.active_streams,
            "streams_created": stats.streams_created,
            "datagrams_sent": stats.datagrams_sent,
            "datagrams_received": stats.datagrams_received,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "close_cause": self.close_cause.value if self.close_cause is not None else None,
        }

    async def debug_state(self) -> dict[str, Any]:
        """Everything useful for debugging, as plain data."""
        connection = self.connection
        diagnostics = await self.diagnostics()
        return {
            "session": await self.get_summary(),
            "stats": self.stats.to_dict(),
            "diagnostics": _asdict(diagnostics),
            "streams": [{"stream_id": s.stream_id, "state": s.state.value, "direction": s.direction.value,
                         "bytes_sent": s.bytes_sent, "bytes_received": s.bytes_received}
                        for s in self._streams.values()],
            "incoming_queue": self._incoming_count(),
            "connection": connection.diagnostics() if connection is not None else None,
        }

    # ------------------------------------------------------------------ health

    async def diagnose_issues(self) -> list[str]:
        """Checks that point at trouble, as human-readable strings (empty when healthy)."""
        issues: list[str] = []
        connection = self.connection
        if (connection is None or connection.is_closed) and not self.is_closed:
            issues.append("the connection is closed but the session is not")
        stats = self.stats
        if stats.streams_created >= 10 and stats.stream_errors / stats.streams_created > 0.1:
            issues.append(f"high stream error rate: {stats.stream_errors}/{stats.streams_created} streams failed")
        waiting = self._credit_waiter_lists
        if waiting is not None and (waiting[False] or waiting[True]):
            issues.append("stream creation is waiting for stream credit from the peer")
        snapshot = self._snapshot()
        if snapshot is not None and not self.is_closed and snapshot.flow_control:
            limits = self._limits()
            if snapshot.send_data_available == 0 and snapshot.blocked_bytes:
                issues.append("sending is stalled: the peer's WT_MAX_DATA is used up")
            if limits["local_max_data"] and limits["local_data_received"] >= limits["local_max_data"]:
                issues.append("the peer is stalled by our WT_MAX_DATA: data is not being read")
        if self._datagrams is not None and self._datagrams.receive_dropped:
            issues.append(f"{self._datagrams.receive_dropped} incoming datagrams were dropped (buffer full)")
        # Durations on the monotonic clock (the engine's), never on the wall clock.
        if (snapshot is not None and snapshot.state is SessionState.CONNECTING
                and time.monotonic() - snapshot.created_at > self._config.connect_timeout):
            issues.append("the session has been connecting for longer than connect_timeout")
        return issues

    async def monitor_health(self, *, check_interval: float = 60.0) -> None:
        """Check the session every ``check_interval`` seconds until it closes; closes the
        session if its connection died under it, and logs any issue found."""
        if check_interval <= 0:
            raise ValueError(f"check_interval must be > 0, got {check_interval}")
        while not self.is_closed:
            try:
                await asyncio.wait_for(self._closed_event.wait(), check_interval)
                return
            except asyncio.TimeoutError:
                pass
            issues = await self.diagnose_issues()
            for issue in issues:
                logger.warning("session %d: %s", self._session_id, issue)
            connection = self.connection
            if (connection is None or connection.is_closed) and not self._closed_event.is_set():
                self.handle_event(ev.SessionClosed(self._session_id, 0, "connection lost", True,
                                                   CloseCause.CONNECTION_CLOSED))


def _asdict(diagnostics: SessionDiagnostics) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SessionDiagnostics.__slots__:
        value = getattr(diagnostics, name)
        out[name] = value.value if isinstance(value, SessionState) else value
    out["pending_bidi_stream_futures"] = len(diagnostics.pending_bidi_stream_futures)
    out["pending_uni_stream_futures"] = len(diagnostics.pending_uni_stream_futures)
    return out
