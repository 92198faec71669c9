"""The engine's session record: ``is_open`` (an attribute read on every write and datagram)
always agrees with ``state``, however the record was made and wherever it moved."""

from __future__ import annotations

import pytest

from pywebtransport._protocol.session import TRANSITIONS, Session
from pywebtransport.exceptions import LocalProtocolError
from pywebtransport.types import SessionState

OPEN = {SessionState.CONNECTED, SessionState.DRAINING}


def _record(state: SessionState = SessionState.CONNECTING) -> Session:
    return Session(host=None, session_id=0, path="/", authority="a", headers={},  # type: ignore[arg-type]
                   created_at=0.0, state=state)


@pytest.mark.parametrize("state", list(SessionState))
def test_a_new_record_is_open_exactly_in_the_open_states(state: SessionState) -> None:
    assert _record(state).is_open == (state in OPEN)


@pytest.mark.parametrize(("start", "end"), sorted(TRANSITIONS, key=lambda pair: (pair[0].value, pair[1].value)))
def test_every_legal_transition_keeps_is_open_in_step(start: SessionState, end: SessionState) -> None:
    session = _record(start)
    session.transition(end)
    assert (session.state, session.is_open) == (end, end in OPEN)


def test_an_illegal_transition_changes_neither() -> None:
    session = _record(SessionState.CONNECTED)
    with pytest.raises(LocalProtocolError):
        session.transition(SessionState.CONNECTING)
    assert (session.state, session.is_open) == (SessionState.CONNECTED, True)
