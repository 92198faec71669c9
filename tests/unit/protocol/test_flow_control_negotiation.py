"""Whether session flow control is on, by the rule of the dialect the peer speaks.

Draft-15 §5.1: both endpoints sent a non-zero SETTINGS_WT_INITIAL_* limit. Draft-13 §5.1: both
sent SETTINGS_WT_MAX_SESSIONS above 1 ("If either endpoint sends SETTINGS_WT_MAX_SESSIONS with a
value of 1, flow control is not enabled"). Without flow control a server rejects a second
session with H3_REQUEST_REJECTED (§5.1 of both). Draft-13 peers were judged by draft-15's rule:
a draft-13 client allowing 4 sessions had its second one refused, and one allowing a single
session got flow control because it also sent a WT_INITIAL_* value.
"""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.settings import PeerSettings, flow_control_enabled

from .harness import Pair, RawPeer, no_h3, record_aborts, with_settings
from .test_engine_hardening import QPACK_ZEROS, session

DRAFT13 = {**QPACK_ZEROS, c.SETTINGS_H3_DATAGRAM: 1}
INITIAL = {c.SETTINGS_WT_INITIAL_MAX_DATA: 1 << 20, c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 10,
           c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 10}


def _two_sessions_from_a_raw_client(settings: dict[int, int]) -> tuple[Pair, int, int, list[tuple[str, int, int]]]:
    """A hand-made client sending ``settings`` asks for two sessions; returns both ids and the
    server's stream aborts."""
    pair = Pair(tweak_client=no_h3)
    pair.run()
    raw = RawPeer(pair)
    raw.control(settings)
    pair.run()
    aborts = record_aborts(pair.server)
    first = raw.connect_request(b"/one")
    pair.run()
    second = raw.connect_request(b"/two")
    pair.run()
    return pair, first, second, aborts


def test_a_draft13_client_allowing_several_sessions_gets_flow_control_and_a_second_session() -> None:
    pair, first, second, aborts = _two_sessions_from_a_raw_client({**DRAFT13, c.SETTINGS_WT_MAX_SESSIONS: 4})
    assert [e.session_id for e in pair.take("server", ev.SessionRequested)] == [first, second]
    assert aborts == []
    pair.server.accept_session(first)
    pair.server.accept_session(second)
    pair.run()
    assert session(pair.server, first).flow_control and session(pair.server, second).flow_control


def test_a_draft13_client_allowing_one_session_gets_no_flow_control_whatever_initial_limits_it_sends() -> None:
    settings = {**DRAFT13, c.SETTINGS_WT_MAX_SESSIONS: 1, **INITIAL}
    pair, first, second, aborts = _two_sessions_from_a_raw_client(settings)
    assert [e.session_id for e in pair.take("server", ev.SessionRequested)] == [first]
    assert aborts == [("stop", second, c.H3_REQUEST_REJECTED), ("reset", second, c.H3_REQUEST_REJECTED)]
    pair.server.accept_session(first)
    pair.run()
    assert session(pair.server, first).flow_control is False


def test_our_client_follows_a_draft13_server_that_allows_one_session() -> None:
    server = {**DRAFT13, c.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1, c.SETTINGS_WT_MAX_SESSIONS: 1, **INITIAL}
    pair = Pair(tweak_server=with_settings(server))
    sid = pair.open_session()
    assert session(pair.client, sid).flow_control is False


def test_a_draft15_server_that_opts_out_rejects_a_second_session_from_a_client_that_opted_in() -> None:
    config = EngineConfig(initial_max_data=0, initial_max_streams_bidi=0, initial_max_streams_uni=0)
    pair = Pair(server_config=config)  # our client sends its WT_INITIAL_* limits: only one side opted in
    aborts = record_aborts(pair.server)
    first = pair.open_session("/one")
    second = pair.client.open_session(authority="localhost", path="/two")
    pair.run()
    assert session(pair.client, first).flow_control is False and session(pair.server, first).flow_control is False
    assert ("reset", second, c.H3_REQUEST_REJECTED) in aborts
    assert pair.one("client", ev.SessionRejected).session_id == second


@pytest.mark.parametrize(("local", "peer", "enabled"), [
    pytest.param({c.SETTINGS_WT_MAX_SESSIONS: 4}, {c.SETTINGS_WT_MAX_SESSIONS: 4}, True, id="draft13-both-above-1"),
    pytest.param({c.SETTINGS_WT_MAX_SESSIONS: 1, **INITIAL}, {c.SETTINGS_WT_MAX_SESSIONS: 4}, False,
                 id="draft13-we-allow-1"),
    pytest.param({c.SETTINGS_WT_MAX_SESSIONS: 4}, {c.SETTINGS_WT_MAX_SESSIONS: 1, **INITIAL}, False,
                 id="draft13-peer-allows-1"),
    pytest.param(INITIAL, {c.SETTINGS_WT_ENABLED: 1, **INITIAL}, True, id="draft15-both-initial"),
    pytest.param({c.SETTINGS_WT_MAX_SESSIONS: 4}, {c.SETTINGS_WT_ENABLED: 1, c.SETTINGS_WT_MAX_SESSIONS: 4}, False,
                 id="draft15-no-initial"),
    pytest.param(INITIAL, {c.SETTINGS_ENABLE_WEBTRANSPORT: 1, **INITIAL}, False, id="draft02-never"),
])
def test_flow_control_is_on_only_when_both_sides_opted_in_by_the_peers_dialect(
        local: dict[int, int], peer: dict[int, int], enabled: bool) -> None:
    assert flow_control_enabled(local, PeerSettings.parse(peer)) is enabled
