"""A server that opts out of session flow control (every SETTINGS_WT_INITIAL_* 0, draft-15
§5.1) opts out towards a draft-13 client too.

Draft-13 §5.1: "If both endpoints send SETTINGS_WT_MAX_SESSIONS with a value greater than 1,
flow control is enabled", with the SETTINGS_WT_INITIAL_* limits; an initial limit of 0 means the
peer waits for WT_MAX_* capsules (draft-13 §5.5, §9.2), which an opted-out engine never sends.
Sending WT_MAX_SESSIONS = max_sessions whatever the limits left a draft-13 client unable to
open a stream (and failed the session with WT_FLOW_CONTROL_ERROR when it tried). An opted-out
endpoint now says WT_MAX_SESSIONS = 1: no flow control in draft-13's terms either.
"""

from __future__ import annotations

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._wire import frames
from pywebtransport.types import SessionState

from .harness import Pair, RawPeer, accept_raw_session, raw_session_request

QPACK_ZEROS = {c.SETTINGS_QPACK_MAX_TABLE_CAPACITY: 0, c.SETTINGS_QPACK_BLOCKED_STREAMS: 0}
#: A draft-13 client (draft-13 §3.1: WT_MAX_SESSIONS > 0; > 1 opts into flow control, §5.1).
DRAFT13_CLIENT = {**QPACK_ZEROS, c.SETTINGS_H3_DATAGRAM: 1, c.SETTINGS_WT_MAX_SESSIONS: 4,
                  c.SETTINGS_WT_INITIAL_MAX_DATA: 1 << 16, c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 4,
                  c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 4}
OPT_OUT = EngineConfig(initial_max_data=0, initial_max_streams_bidi=0, initial_max_streams_uni=0)


def _draft13_session(server_config: EngineConfig) -> tuple[Pair, RawPeer, int]:
    pair, raw, sid = raw_session_request(DRAFT13_CLIENT, server_config=server_config)
    accept_raw_session(pair, sid)
    return pair, raw, sid


def test_an_opted_out_server_lets_a_draft13_client_open_streams_and_send() -> None:
    pair, raw, sid = _draft13_session(OPT_OUT)
    assert pair.server.local_settings[c.SETTINGS_WT_MAX_SESSIONS] == 1  # draft-13's way to opt out
    assert pair.server.session(sid).flow is None  # off on both ends, by either draft's rule
    payload = b"z" * 5000  # more than any credit an opted-in window of 0 would allow
    stream_id = raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + payload, fin=True)
    pair.run()
    assert pair.server.session(sid).state is SessionState.CONNECTED
    opened = pair.take("server", ev.StreamOpened)
    assert [e.stream_id for e in opened] == [stream_id]
    assert pair.stream_payload("server", stream_id) == (payload, True)


def test_an_opted_in_server_still_says_max_sessions_and_gets_flow_control_with_draft13() -> None:
    pair, _, sid = _draft13_session(EngineConfig(max_sessions=8))
    assert pair.server.local_settings[c.SETTINGS_WT_MAX_SESSIONS] == 8
    assert pair.server.session(sid).flow is not None  # draft-13 §5.1: both sent more than 1
