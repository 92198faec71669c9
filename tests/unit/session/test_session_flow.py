"""Session flow control holds no queue of blocked streams until one waits for credit
(pywebtransport/_protocol/flow_control.py), and gives it back once none waits."""

from __future__ import annotations

from pywebtransport._protocol.flow_control import SessionFlow
from pywebtransport._protocol.streams import StreamKind, StreamRecord


def _record(stream_id: int) -> StreamRecord:
    return StreamRecord(stream_id=stream_id, kind=StreamKind.WEBTRANSPORT, is_unidirectional=False, local=True,
                        session_id=0)


def _flow(peer_max_data: int) -> SessionFlow:
    return SessionFlow(peer_max_data=peer_max_data, peer_max_streams_bidi=4, peer_max_streams_uni=2,
                       local_max_data=1000, local_max_streams_bidi=4, local_max_streams_uni=2, auto_extend=True)


def test_stream_credit_is_indexed_by_kind() -> None:
    flow = _flow(100)
    assert flow.send_streams[False].limit == 4 and flow.send_streams[True].limit == 2
    assert flow.recv_streams[False].limit == 4 and flow.recv_streams[True].limit == 2
    assert flow.can_open(True) and flow.take_stream(True) and flow.take_stream(True)
    assert not flow.can_open(True) and flow.can_open(False)


def test_no_blocked_queue_until_a_stream_waits_for_credit() -> None:
    flow = _flow(10)
    record = _record(0)
    assert flow._blocked is None and flow.blocked_bytes == 0
    now, fin, _ = flow.send(record, b"12345", True)
    assert (now, fin) == (b"12345", True) and flow._blocked is None
    now, fin, capsules = flow.send(record, b"abcdefgh", True)
    assert now == b"abcde" and not fin and capsules  # WT_DATA_BLOCKED
    assert flow._blocked is not None and flow.blocked_bytes == 3
    assert flow.flush() == ([], [])  # still no credit: nothing, and DATA_BLOCKED was sent once
    assert flow.on_max_data(20)
    sent, _ = flow.flush()
    assert sent == [(record, b"fgh", True)]
    assert flow._blocked is None and flow.blocked_bytes == 0


def test_forgetting_the_only_blocked_stream_drops_the_queue() -> None:
    flow = _flow(0)
    record = _record(4)
    flow.send(record, b"xyz", False)
    assert flow.blocked_bytes == 3
    flow.forget_stream(record)
    assert flow._blocked is None and flow.blocked_bytes == 0
    assert flow.on_max_data(10)
    assert flow.flush() == ([], [])
