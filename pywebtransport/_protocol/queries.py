"""What the engine knows, read without changing it: the peer's settings, GOAWAY, counters,
session snapshots, send buffers, and whether a stream may be written or opened now."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pywebtransport._protocol.core import EngineCore
from pywebtransport._protocol.session import Session
from pywebtransport._protocol.settings import Dialect, PeerSettings
from pywebtransport._protocol.snapshot import SessionSnapshot
from pywebtransport._protocol.streams import StreamKind, StreamRecord
from pywebtransport._wire import datagrams
from pywebtransport.types import CloseCause, SessionState

__all__ = ["EngineQueries"]


class EngineQueries(EngineCore):
    """The engine's read-only views (the API layer reads state here, never keeps copies)."""

    @property
    def peer_settings(self) -> PeerSettings | None:
        return self._h3.peer

    @property
    def dialect(self) -> Dialect | None:
        """The WebTransport dialect the peer spoke in its SETTINGS (None before them or without)."""
        peer = self._h3.peer
        return peer.dialect if peer is not None else None

    @property
    def goaway_received(self) -> int | None:
        return self._h3.goaway_received

    @property
    def goaway_sent(self) -> int | None:
        return self._h3.goaway_sent

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def stream_record_count(self) -> int:
        """Stream records held (for leak tests and diagnostics)."""
        return len(self._streams)

    @property
    def early_stream_count(self) -> int:
        """Streams held waiting for their session (bounded by ``max_buffered_streams``)."""
        return self._streams.early_count

    @property
    def early_datagram_bytes(self) -> int:
        """Bytes of datagrams held for sessions not yet established (with the early streams'
        bytes, within ``max_buffered_bytes``)."""
        return self._early_datagrams.nbytes

    def stream_records(self) -> Iterator[StreamRecord]:
        """Every stream record held now (diagnostics and tests; do not mutate)."""
        return iter(self._streams)

    @property
    def session_count(self) -> int:
        """Sessions held, open and recently closed (bounded by ``max_sessions`` closed ones)."""
        return len(self._sessions)

    def session(self, session_id: int) -> Session | None:
        """The live session object (engine-internal; the API layer reads ``session_snapshot``)."""
        return self._sessions.get(session_id)

    def session_state(self, session_id: int) -> SessionState | None:
        """The session's state alone (the hot-path check; ``session_snapshot`` copies all)."""
        session = self._sessions.get(session_id)
        return session.state if session is not None else None

    def session_snapshot(self, session_id: int) -> SessionSnapshot | None:
        """A frozen copy of the session's state and counters (None for an unknown session)."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        return session.snapshot(open_streams=self._streams.session_stream_count(session_id))

    def stream_ids(self, session_id: int) -> Iterable[int]:
        return self._streams.session_stream_ids(session_id)

    def stream_session(self, stream_id: int) -> int | None:
        record = self._streams.get(stream_id)
        return record.session_id if record is not None and record.kind is StreamKind.WEBTRANSPORT else None

    def stream_send_buffered(self, stream_id: int) -> int:
        """Bytes written to the stream and not yet acknowledged (incl. waiting for credit)."""
        return self._stream_held(stream_id)

    @property
    def send_buffered_total(self) -> int:
        """Bytes written on all session streams of this connection and not yet acknowledged
        (with qh3: not yet sent), including those waiting for session credit."""
        return self._send_bound.held

    @property
    def send_buffered_peak(self) -> int:
        """The most ``send_buffered_total`` ever was."""
        return self._send_bound.peak

    def send_buffer_room(self) -> int:
        """Bytes writers may still queue on this connection before they must wait: what is
        left of ``max_send_buffer`` and of the server's send budget. Once 0 it stays 0 until
        an eighth of the smaller bound is free (the announcement ``watch_writable`` waits for)."""
        if self._closed:
            return 0
        return self._send_bound.room()

    @property
    def receive_buffered_total(self) -> int:
        """Bytes held for the peer before anything can consume them: early streams' bytes and
        what request and CONNECT streams hold of incomplete frames and capsules (what this
        engine holds of the receive budget; at most ``max_buffered_bytes``)."""
        return self._streams.receive.held

    @property
    def receive_budget_refusals(self) -> int:
        """Early streams and requests refused because the server's receive budget was spent."""
        return self._streams.receive.refusals

    def stream_send_acknowledged(self, stream_id: int) -> bool:
        """Whether every byte written to the stream (FIN included) was acknowledged; bytes
        still waiting for session credit count as unsent."""
        record = self._streams.get(stream_id)
        if record is not None and record.pending.size:
            return False
        return self.quic.send_acknowledged(stream_id)

    def finished_unacknowledged_streams(self, session_id: int) -> list[int]:
        """Streams of the session the application ended with FIN whose data is not yet
        acknowledged: what a graceful session close lingers for."""
        session = self._sessions.get(session_id)
        if session is None:
            return []
        waiting = [sid for sid in session.finished_sends if not self.stream_send_acknowledged(sid)]
        session.finished_sends = set(waiting)
        return waiting

    def unconfirmed_closes(self) -> list[int]:
        """Sessions that have ended with our FIN (and close capsule) on their CONNECT stream
        not yet acknowledged: a connection close waits for them as for the open ones, or its
        CONNECTION_CLOSE, which QUIC sends alone, leaves them unsent for good. A session whose
        peer has ended its side too is over at both ends and not listed
        (``session_close_settled``)."""
        order = self._closed_order
        if not order:
            return []
        sessions = self._sessions
        return [sid for sid in order if (session := sessions.get(sid)) is not None and session.local_fin_sent
                and not self.session_close_settled(sid)]

    def session_close_settled(self, session_id: int) -> bool:
        """Whether nothing of our side of a closed session's CONNECT stream needs to arrive
        any more: our FIN (and close capsule) was acknowledged, or the peer ended its side
        (FIN or reset), so the session is over at its end whatever it read of ours (draft-15
        §6: either end's FIN on the CONNECT stream terminates the session), or the session
        was never established. Waiting for an acknowledgement there costs a connection close
        the peer's delayed ACK (1 ms in aioquic and qh3) and a loop pass.

        A session never established (refused, or a request given up before its answer) ran
        no capsule protocol and owes no close: a peer that never answered the request would
        otherwise keep a connect's failure waiting close_timeout past its timeout."""
        session = self._sessions.get(session_id)
        if session is None or session.peer_fin_received or self._closed or session.ready_at is None:
            return True
        return self.stream_send_acknowledged(session_id)

    def session_close_confirmed(self, session_id: int) -> bool:
        """Whether the peer ended its side of the session's CONNECT stream (FIN or reset)
        after our close, i.e. it has read our WT_CLOSE_SESSION; True once nothing is left.
        A rejected session has no close to confirm: the answer ended it at both ends (its
        FIN came with the response, before the stream was finished here), and waiting for a
        FIN that was already taken cost every connection closed after a refusal the whole
        ``CLOSE_CONFIRM_GRACE``."""
        session = self._sessions.get(session_id)
        return (session is None or session.peer_fin_received or self._closed
                or session.close_cause is CloseCause.REJECTED)

    def stream_is_writable(self, stream_id: int) -> bool:
        record = self._streams.get(stream_id)
        return bool(record and record.kind is StreamKind.WEBTRANSPORT and not record.send_closed)

    def max_datagram_size(self, session_id: int) -> int:
        """Largest datagram payload that can be sent in this session now."""
        return datagrams.max_payload_size(session_id, self.quic.remote_max_datagram_frame_size,
                                          self.quic.datagram_path_limit)

    def can_open_stream(self, session_id: int, is_unidirectional: bool) -> bool:
        """Whether both QUIC and the session's flow control allow one more stream now."""
        session = self._sessions.get(session_id)
        if session is None or not session.is_open or self._closed:
            return False
        if not self.quic.can_open_stream(is_unidirectional):
            return False
        return session.flow is None or session.flow.can_open(is_unidirectional)
