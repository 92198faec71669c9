"""The engine's clock moves only when time is passed in: packets, timers and transmits, and
the application's calls that record a time (``open_session``, ``accept_session``,
``reject_session``, ``close_session``, ``close``), which take ``now``. A session opened,
accepted or closed after a quiet spell is stamped with that moment, not with the time of the
last packet."""

from __future__ import annotations

import pytest

from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam
from pywebtransport.exceptions import StreamClosedError
from pywebtransport.types import SessionState

from .harness import Pair

QUIET = 5.0  #: seconds without a packet between the last exchange and the call


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_open_session_is_stamped_with_the_time_passed_in(backend: str) -> None:
    pair = Pair(backend=backend)
    pair.run()
    later = pair.now + QUIET
    sid = pair.client.open_session(authority="localhost:4433", path="/a", now=later)
    snapshot = pair.client.session_snapshot(sid)
    assert snapshot is not None and snapshot.created_at == later


def test_accept_session_is_stamped_with_the_time_passed_in(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session(accept=False)
    later = pair.now + QUIET
    pair.server.accept_session(sid, now=later)
    snapshot = pair.server.session_snapshot(sid)
    assert snapshot is not None and snapshot.ready_at == later


def test_close_session_is_stamped_with_the_time_passed_in(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    ready_at = pair.client.session_snapshot(sid).ready_at  # type: ignore[union-attr]
    later = pair.now + QUIET
    pair.client.close_session(sid, 0, "", now=later)
    snapshot = pair.client.session_snapshot(sid)
    assert snapshot is not None and snapshot.state is SessionState.CLOSED
    assert snapshot.closed_at == later and snapshot.closed_at - ready_at >= QUIET


def test_reject_session_is_stamped_with_the_time_passed_in(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session(accept=False)
    later = pair.now + QUIET
    pair.server.reject_session(sid, 404, now=later)
    snapshot = pair.server.session_snapshot(sid)
    assert snapshot is not None and snapshot.closed_at == later


def test_closing_the_connection_stamps_the_sessions_it_ends(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    later = pair.now + QUIET
    pair.client.close(now=later)
    snapshot = pair.client.session_snapshot(sid)
    assert snapshot is not None and snapshot.state is SessionState.CLOSED and snapshot.closed_at == later


def test_without_now_a_call_keeps_the_engines_time(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    last_packet = pair.client.now
    pair.client.close_session(sid, 0, "")
    assert pair.client.session_snapshot(sid).closed_at == last_packet  # type: ignore[union-attr]


def test_a_time_before_the_engines_clock_does_not_move_it_back(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    clock = pair.client.now
    pair.client.close_session(sid, 0, "", now=clock - QUIET)
    assert pair.client.now == clock
    assert pair.client.session_snapshot(sid).closed_at == clock  # type: ignore[union-attr]


def test_a_stream_code_out_of_range_is_a_value_error_even_for_a_stream_the_engine_forgot(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"x", end_stream=True)  # finished: the engine forgets it
    with pytest.raises(StreamClosedError):
        pair.client.reset_stream(stream_id, 1)
    for call in (pair.client.reset_stream, pair.client.stop_stream):
        with pytest.raises(ValueError, match="code must be in"):
            call(stream_id, 2**32)
    pair.run()
    assert pair.take("server", ev.StreamReset) == []
