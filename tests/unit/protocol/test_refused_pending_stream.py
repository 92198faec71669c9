"""A stream abandoned with bytes and its FIN still waiting in the engine for session credit
is reset, as one whose sending was never finished is. The engine marks a stream's sending
closed when the application writes its FIN, so refusing it (the session closing: draft-15 §6,
WT_SESSION_GONE) skipped the reset and dropped the waiting bytes: the QUIC stream's sending
side never ended, and the peer's reader waited for it for good."""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import quic as seam

from .harness import Pair, record_aborts

WINDOW = 4000


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_finished_stream_waiting_for_session_credit_is_reset_when_its_session_closes(backend: str) -> None:
    pair = Pair(backend=backend, server_config=EngineConfig(initial_max_data=WINDOW))
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"x" * (3 * WINDOW), end_stream=True)  # most of it waits
    assert pair.client.stream_send_buffered(stream_id) > WINDOW
    aborts = record_aborts(pair.client)
    pair.client.close_session(sid, 0, "done")
    pair.run()
    assert ("reset", stream_id, c.WT_SESSION_GONE) in aborts


def test_a_stream_whose_fin_went_to_quic_is_not_reset_when_its_session_closes(backend: str) -> None:
    pair = Pair(backend=backend, server_config=EngineConfig(initial_max_data=WINDOW))
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"x" * 100, end_stream=True)  # all within credit
    aborts = record_aborts(pair.client)
    pair.client.close_session(sid, 0, "done")
    pair.run()
    assert not [a for a in aborts if a[0] == "reset" and a[1] == stream_id]
