"""Connection-level QUIC credit (MAX_DATA) follows what the application holds unread, on
both backends (pywebtransport/_protocol/quic_credit.py).

Found by fuzzing: stream credit was read-driven, but the QUIC libraries doubled MAX_DATA as
data arrived, so a peer writing on many streams (or on streams that end and hand their slot
back) made one connection hold many times ``max_data`` unread. Here MAX_DATA grows only by
what was read or let go, and bytes that are let go any other way (a stream stopped, a session
ended, bytes nobody will read) never leave a connection short of credit."""

from __future__ import annotations

import pytest

from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam

from .harness import Pair

WINDOW = 64 * 1024  #: each stream's QUIC receive window
CONNECTION = 256 * 1024  #: the connection's (max_data)
STREAMS = 16  #: 16 x 64 KiB: four times the connection window
#: Session flow control far above both, so QUIC's credit is what binds.
NO_SESSION_LIMIT = EngineConfig(initial_max_data=1 << 30)


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _pair(backend: str) -> tuple[Pair, int]:
    pair = Pair(backend=backend, server_quic={"max_stream_data": WINDOW, "max_data": CONNECTION},
                client_config=NO_SESSION_LIMIT, server_config=NO_SESSION_LIMIT)
    return pair, pair.open_session()


def _send_whole_streams(pair: Pair, sid: int, count: int, size: int = WINDOW) -> list[int]:
    """``count`` unidirectional streams of ``size`` bytes each, FIN included."""
    ids = []
    for _ in range(count):
        stream_id = pair.client.open_stream(sid, is_unidirectional=True)
        pair.client.send_stream_data(stream_id, b"d" * size, end_stream=True)
        ids.append(stream_id)
    return ids


def _arrivals(pair: Pair) -> dict[int, int]:
    got: dict[int, int] = {}
    for event in pair.take("server", ev.StreamDataReceived):
        got[event.stream_id] = got.get(event.stream_id, 0) + len(event.data)
    return got


def test_a_connection_holds_at_most_its_window_unread_across_many_streams(backend: str) -> None:
    pair, sid = _pair(backend)
    _send_whole_streams(pair, sid, STREAMS)
    held = 0
    for _ in range(4):  # however long the application waits, nothing more arrives
        pair.run(horizon=2.0)
        held += sum(_arrivals(pair).values())
    assert 0 < held <= CONNECTION, held  # with credit doubled on arrival: all 1 MiB
    assert pair.client.send_buffered_total >= STREAMS * WINDOW - CONNECTION


def test_reading_releases_credit_until_every_stream_arrived(backend: str) -> None:
    pair, sid = _pair(backend)
    ids = _send_whole_streams(pair, sid, STREAMS)
    received = dict.fromkeys(ids, 0)
    consumed = dict.fromkeys(ids, 0)
    for _ in range(200):
        pair.run(horizon=2.0)
        for stream_id, amount in _arrivals(pair).items():
            received[stream_id] += amount
        unread = sum(received.values()) - sum(consumed.values())
        assert unread <= CONNECTION, unread
        if all(amount == WINDOW for amount in received.values()):
            break
        for stream_id in ids:  # the application reads everything that arrived
            if received[stream_id] > consumed[stream_id]:
                pair.server.consume_stream_data(stream_id, received[stream_id] - consumed[stream_id])
                consumed[stream_id] = received[stream_id]
    assert all(amount == WINDOW for amount in received.values()), received


def test_bytes_let_go_unread_never_leave_the_connection_short(backend: str) -> None:
    """Stopping streams and ending sessions with bytes unread give their share back: after
    ten connection windows of such traffic a fresh stream still gets all its bytes."""
    pair, sid = _pair(backend)
    for round_number in range(10):
        session = pair.open_session() if round_number % 2 else sid
        ids = _send_whole_streams(pair, session, CONNECTION // WINDOW)
        pair.run(horizon=2.0)
        arrived = _arrivals(pair)
        assert arrived
        if round_number % 2:
            pair.server.close_session(session, 0, "done")  # its streams' bytes were never read
        else:
            for stream_id in ids:
                if pair.server.stream_session(stream_id) is not None:
                    pair.server.stop_stream(stream_id, 0)
            for stream_id, amount in arrived.items():  # what arrived is dropped by the application
                pair.server.consume_stream_data(stream_id, amount)
        pair.run(horizon=2.0)
        pair.take("server", ev.StreamDataReceived)
    last = _send_whole_streams(pair, sid, 1)[0]
    arrived = 0
    for _ in range(20):  # read as it comes (its 3-byte header shares the stream's window)
        pair.run(horizon=2.0)
        got = _arrivals(pair).get(last, 0)
        if got:
            pair.server.consume_stream_data(last, got)
        arrived += got
        if arrived == WINDOW:
            break
    assert arrived == WINDOW
