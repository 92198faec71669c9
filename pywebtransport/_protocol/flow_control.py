"""Session flow control (draft-15 §5): one session's credit both ways, the bytes waiting for
it, and the WT_MAX_* / WT_*_BLOCKED capsules it owes the peer.

Only used when both endpoints enabled it (draft-15 §5.1). Every method that changes what
the peer must be told returns the capsules to send; the session puts them on its CONNECT
stream. Peer violations raise FlowControlError: WT_FLOW_CONTROL_ERROR, or H3_DATAGRAM_ERROR
for a WT_MAX_STREAMS above 2^60 (draft-15 §5.6.2).
"""

from __future__ import annotations

from collections import deque

from pywebtransport import constants as c
from pywebtransport._protocol.streams import StreamRecord
from pywebtransport._wire import capsules, flow
from pywebtransport.exceptions import FlowControlError

__all__ = ["MAX_STREAMS_LIMIT", "SessionFlow"]

#: Draft-15 §5.6.2: a WT_MAX_STREAMS above 2^60 is an H3_DATAGRAM_ERROR.
MAX_STREAMS_LIMIT = 1 << 60

_MAX_STREAMS_CAPSULE = {False: c.WT_CAPSULE_MAX_STREAMS_BIDI, True: c.WT_CAPSULE_MAX_STREAMS_UNI}
_STREAMS_BLOCKED_CAPSULE = {False: c.WT_CAPSULE_STREAMS_BLOCKED_BIDI, True: c.WT_CAPSULE_STREAMS_BLOCKED_UNI}
#: Indexes into SessionFlow._answered.
_DATA, _BIDI, _UNI = 0, 1, 2


class SessionFlow:
    """Credit and windows of one session (send side: the peer's limits on us)."""

    __slots__ = ("_answered", "_blocked", "_reset_sends", "recv_data", "recv_streams", "send_data", "send_streams",
                 "strict")

    def __init__(self, *, peer_max_data: int, peer_max_streams_bidi: int, peer_max_streams_uni: int,
                 local_max_data: int, local_max_streams_bidi: int, local_max_streams_uni: int,
                 auto_extend: bool, strict: bool = True) -> None:
        #: Draft-15's rule that a limit which decreases is a WT_FLOW_CONTROL_ERROR (§5.6.2,
        #: §5.6.4). Draft-13 has no such rule (nor the code): a limit that does not grow is
        #: ignored, as QUIC ignores one (RFC 9000 §4.1, §4.6); False for a draft-13 peer.
        self.strict = strict
        self.send_data = flow.SendCredit(peer_max_data)
        #: Stream credit per kind, indexed by ``is_unidirectional`` (a two-item list: a third
        #: of the size of a dict keyed by False and True).
        self.send_streams = [flow.SendCredit(peer_max_streams_bidi), flow.SendCredit(peer_max_streams_uni)]
        self.recv_data = flow.ReceiveWindow(local_max_data, auto_extend=auto_extend)
        self.recv_streams = [flow.ReceiveWindow(local_max_streams_bidi, auto_extend=auto_extend),
                             flow.ReceiveWindow(local_max_streams_uni, auto_extend=auto_extend)]
        #: Streams with bytes waiting for data credit, FIFO; made when a stream first waits
        #: (a deque starts with a 64-slot block, and most sessions never wait for credit).
        self._blocked: deque[StreamRecord] | None = None
        #: The limits last re-announced in answer to the peer's WT_*_BLOCKED, indexed by
        #: _DATA / _BIDI / _UNI (made on the first such capsule).
        self._answered: list[int] | None = None
        #: Our streams reset with counted bytes unsent, whose credit was given back (made on
        #: the first): a STOP_SENDING that crosses our reset must not give it back twice.
        self._reset_sends: set[int] | None = None

    # -- opening streams
    def can_open(self, is_unidirectional: bool) -> bool:
        return self.send_streams[is_unidirectional].available > 0

    def take_stream(self, is_unidirectional: bool) -> bool:
        return self.send_streams[is_unidirectional].try_consume(1) == 1

    def streams_blocked(self, is_unidirectional: bool) -> list[bytes]:
        """WT_STREAMS_BLOCKED to send when we want a stream and have no credit (once per limit)."""
        blocked = self.send_streams[is_unidirectional].blocked_at()
        if blocked is None:
            return []
        return [capsules.encode_varint_capsule(_STREAMS_BLOCKED_CAPSULE[is_unidirectional], blocked)]

    # -- sending data
    @property
    def blocked_bytes(self) -> int:
        return sum(record.pending.size for record in self._blocked) if self._blocked else 0

    def send(self, record: StreamRecord, data: bytes, end_stream: bool) -> tuple[bytes, bool, list[bytes]]:
        """Admit ``data`` on a stream: returns (bytes to send now, whether FIN goes with them,
        capsules); the rest waits in ``record.pending`` for WT_MAX_DATA."""
        if record.pending.size:
            record.pending.append(data)
            record.pending_fin = record.pending_fin or end_stream
            return b"", False, []
        granted = self.send_data.try_consume(len(data))
        if granted == len(data):
            return data, end_stream, []
        record.pending.append(data[granted:])
        record.pending_fin = end_stream
        if self._blocked is None:
            self._blocked = deque()
        self._blocked.append(record)
        return data[:granted], False, self._data_blocked()

    def flush(self) -> tuple[list[tuple[StreamRecord, bytes, bool]], list[bytes]]:
        """After new credit: what blocked streams may send now, in order, and capsules."""
        out: list[tuple[StreamRecord, bytes, bool]] = []
        blocked = self._blocked
        if blocked is None:
            return out, []
        while blocked:
            record = blocked[0]
            if not record.pending.size:
                blocked.popleft()
                continue
            granted = self.send_data.try_consume(record.pending.size)
            if not granted:
                return out, self._data_blocked()
            chunk = record.pending.take(granted)
            done = not record.pending.size
            out.append((record, chunk, done and record.pending_fin))
            if done:
                blocked.popleft()
        self._blocked = None  # nothing waits: give the deque back
        return out, []

    def forget_stream(self, record: StreamRecord) -> None:
        """A stream with pending bytes was reset or stopped: its bytes will never be sent."""
        if record.pending.size:
            record.pending.clear()
            if self._blocked is not None:
                remaining = deque(r for r in self._blocked if r is not record)
                self._blocked = remaining or None

    def on_reset_sent(self, stream_id: int, unsent: int) -> bool:
        """Our sending side of ``stream_id`` was reset, and ``unsent`` of the bytes counted
        against WT_MAX_DATA never went into a STREAM frame: its final size, the highest offset
        sent (RFC 9000 §4.5), leaves them out, and so does the peer's count (draft-15 §5.4).
        Give them back, once per stream; True when credit came back (``flush`` may send)."""
        if unsent <= 0:
            return False
        settled = self._reset_sends
        if settled is None:
            settled = self._reset_sends = set()
        elif stream_id in settled:
            return False
        settled.add(stream_id)
        self.send_data.release(unsent)
        return True

    def forget_reset(self, stream_id: int) -> None:
        """The stream is finished (nothing more can reset it): drop its ``on_reset_sent`` mark."""
        settled = self._reset_sends
        if settled is not None:
            settled.discard(stream_id)
            if not settled:
                self._reset_sends = None

    def _data_blocked(self) -> list[bytes]:
        blocked = self.send_data.blocked_at()
        return [] if blocked is None else [capsules.encode_varint_capsule(c.WT_CAPSULE_DATA_BLOCKED, blocked)]

    # -- the peer's capsules
    def on_max_data(self, value: int) -> bool:
        """WT_MAX_DATA: True when it grew. A decrease is an error (draft-15 §5.6.4; ignored
        when not ``strict``)."""
        if value < self.send_data.limit and self.strict:
            raise FlowControlError(f"WT_MAX_DATA decreased from {self.send_data.limit} to {value}")
        return self.send_data.update_limit(value)

    def on_max_streams(self, value: int, is_unidirectional: bool) -> bool:
        """WT_MAX_STREAMS: True when it grew. A decrease is a WT_FLOW_CONTROL_ERROR; a value
        over 2^60 cannot be used by any stream id and is an H3_DATAGRAM_ERROR (draft-15 §5.6.2;
        a decrease is ignored when not ``strict``)."""
        credit = self.send_streams[is_unidirectional]
        if value > MAX_STREAMS_LIMIT:
            raise FlowControlError(f"WT_MAX_STREAMS {value} exceeds 2^60", error_code=c.H3_DATAGRAM_ERROR)
        if value < credit.limit and self.strict:
            raise FlowControlError(f"WT_MAX_STREAMS decreased from {credit.limit} to {value}")
        return credit.update_limit(value)

    def on_data_blocked(self) -> list[bytes]:
        """The peer says it is blocked on our WT_MAX_DATA: re-announce our limit, once per
        limit (a new grant follows consumption). Capsules travel on a reliable stream, so
        saying the same limit twice never helps, and answering every WT_DATA_BLOCKED would
        let a peer that never reads our CONNECT stream make us queue without bound."""
        return self._answer_blocked(_DATA, c.WT_CAPSULE_MAX_DATA, self.recv_data.limit)

    def on_streams_blocked(self, is_unidirectional: bool) -> list[bytes]:
        """The same for WT_STREAMS_BLOCKED: our WT_MAX_STREAMS, once per limit."""
        return self._answer_blocked(_UNI if is_unidirectional else _BIDI, _MAX_STREAMS_CAPSULE[is_unidirectional],
                                    self.recv_streams[is_unidirectional].limit)

    def _answer_blocked(self, kind: int, capsule_type: int, limit: int) -> list[bytes]:
        answered = self._answered
        if answered is None:
            answered = self._answered = [-1, -1, -1]
        if answered[kind] == limit:
            return []
        answered[kind] = limit
        return [capsules.encode_varint_capsule(capsule_type, limit)]

    # -- receiving
    def on_receive(self, amount: int) -> None:
        """Payload arrived (or a reset's final size accounted): FlowControlError beyond WT_MAX_DATA."""
        self.recv_data.on_receive(amount)

    def on_consume(self, amount: int) -> list[bytes]:
        new = self.recv_data.on_consume(amount)
        return [] if new is None else [capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_DATA, new)]

    def on_peer_stream(self, is_unidirectional: bool) -> None:
        """The peer opened a stream: FlowControlError beyond our WT_MAX_STREAMS."""
        self.recv_streams[is_unidirectional].on_receive(1)

    def count_closed_streams(self, is_unidirectional: bool, count: int) -> list[bytes]:
        """``count`` streams the peer opened and that ended before the session saw them: opened
        (FlowControlError beyond our WT_MAX_STREAMS) and closed at once."""
        window = self.recv_streams[is_unidirectional]
        window.on_receive(count)
        new = window.on_consume(count)
        return [] if new is None else [capsules.encode_varint_capsule(_MAX_STREAMS_CAPSULE[is_unidirectional], new)]

    def on_peer_stream_closed(self, is_unidirectional: bool) -> list[bytes]:
        new = self.recv_streams[is_unidirectional].on_consume(1)
        if new is None:
            return []
        return [capsules.encode_varint_capsule(_MAX_STREAMS_CAPSULE[is_unidirectional], new)]

    # -- manual grants
    def grant_data(self, max_data: int) -> list[bytes]:
        new = self.recv_data.grant(max_data)
        return [] if new is None else [capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_DATA, new)]

    def grant_streams(self, max_streams: int, is_unidirectional: bool) -> list[bytes]:
        new = self.recv_streams[is_unidirectional].grant(max_streams)
        if new is None:
            return []
        return [capsules.encode_varint_capsule(_MAX_STREAMS_CAPSULE[is_unidirectional], new)]
