"""A peer's WT_DATA_BLOCKED / WT_STREAMS_BLOCKED is answered with our limit once per limit,
not once per capsule: a peer that floods them and never reads our CONNECT stream cannot make
us queue replies without bound (found by fuzzing: 1.8 MB queued per MB of capsules)."""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.flow_control import SessionFlow
from pywebtransport._wire import capsules

from .harness import Pair, record_received
from .test_engine_hardening import capsules_in, send_capsules_raw

FLOOD = 500

KINDS = [
    pytest.param(c.WT_CAPSULE_DATA_BLOCKED, c.WT_CAPSULE_MAX_DATA, 5000, id="data"),
    pytest.param(c.WT_CAPSULE_STREAMS_BLOCKED_BIDI, c.WT_CAPSULE_MAX_STREAMS_BIDI, 7, id="streams-bidi"),
    pytest.param(c.WT_CAPSULE_STREAMS_BLOCKED_UNI, c.WT_CAPSULE_MAX_STREAMS_UNI, 7, id="streams-uni"),
]


@pytest.mark.parametrize(("blocked_type", "max_type", "limit"), KINDS)
def test_a_flood_of_blocked_capsules_gets_one_answer_per_limit(blocked_type: int, max_type: int,
                                                               limit: int) -> None:
    pair = Pair(server_config=EngineConfig(initial_max_data=5000, initial_max_streams_bidi=7,
                                           initial_max_streams_uni=7))
    received = record_received(pair.client)
    sid = pair.open_session()
    flood = capsules.encode_varint_capsule(blocked_type, limit) * FLOOD
    send_capsules_raw(pair, sid, flood)
    pair.run()
    send_capsules_raw(pair, sid, flood)  # a second burst, in later packets
    pair.run()
    assert len(pair.take("server", ev.SessionBlocked)) == 2 * FLOOD  # each is still reported
    answers = [value for kind, value in capsules_in(bytes(received[sid])) if kind == max_type]
    assert answers == [limit]
    assert not pair.take("server", ev.ProtocolViolation)


def test_a_blocked_capsule_after_our_limit_grew_is_answered_again() -> None:
    flow = SessionFlow(peer_max_data=0, peer_max_streams_bidi=0, peer_max_streams_uni=0, local_max_data=1000,
                       local_max_streams_bidi=4, local_max_streams_uni=4, auto_extend=True)
    assert capsules_of(flow.on_data_blocked()) == [(c.WT_CAPSULE_MAX_DATA, 1000)]
    assert flow.on_data_blocked() == []
    flow.on_receive(1000)
    assert capsules_of(flow.on_consume(1000)) == [(c.WT_CAPSULE_MAX_DATA, 2000)]  # the grant itself
    assert capsules_of(flow.on_data_blocked()) == [(c.WT_CAPSULE_MAX_DATA, 2000)]
    assert flow.on_data_blocked() == []
    # Each kind keeps its own record.
    assert capsules_of(flow.on_streams_blocked(False)) == [(c.WT_CAPSULE_MAX_STREAMS_BIDI, 4)]
    assert capsules_of(flow.on_streams_blocked(True)) == [(c.WT_CAPSULE_MAX_STREAMS_UNI, 4)]
    assert flow.on_streams_blocked(False) == flow.on_streams_blocked(True) == []


def capsules_of(encoded: list[bytes]) -> list[tuple[int, capsules.CapsuleValue]]:
    return capsules.CapsuleParser().feed(b"".join(encoded))
