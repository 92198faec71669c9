"""Draft-15's capsule error rules are not applied to a draft-13 peer.

Draft-15 §5.6.2 / §5.6.4 added "If an endpoint receives a WT_MAX_STREAMS [WT_MAX_DATA] capsule
with a ... value less than a previously received value, it MUST close the WebTransport session
with a WT_FLOW_CONTROL_ERROR", and §5.6.2 an H3_DATAGRAM_ERROR for Maximum Streams above 2^60.
Draft-13 has neither rule, and does not even define WT_FLOW_CONTROL_ERROR (its §9.5 registers
only WT_BUFFERED_STREAM_REJECTED, WT_SESSION_GONE and the application range). Its capsules are
"Like the QUIC MAX_STREAMS frame" (draft-13 §5.3), and QUIC ignores a limit that does not grow
(RFC 9000 §4.1: "A receiver MUST ignore any MAX_STREAM_DATA or MAX_DATA frames that do not
increase flow control limits"; §4.6 for MAX_STREAMS).

SessionFlow.on_max_data / on_max_streams raised whatever dialect the peer spoke, so a
draft-13 peer whose WT_MAX_DATA is below its SETTINGS_WT_INITIAL_MAX_DATA (a per-session window
smaller than the connection-wide initial value) had its session torn down with a code its
draft does not know; such a value is now ignored (``SessionFlow.strict``).
"""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._wire import capsules, frames
from pywebtransport.types import SessionState

from .harness import accept_raw_session, raw_session_request, record_aborts

QPACK_ZEROS = {c.SETTINGS_QPACK_MAX_TABLE_CAPACITY: 0, c.SETTINGS_QPACK_BLOCKED_STREAMS: 0}
DRAFT13_CLIENT = {**QPACK_ZEROS, c.SETTINGS_H3_DATAGRAM: 1, c.SETTINGS_WT_MAX_SESSIONS: 4,
                  c.SETTINGS_WT_INITIAL_MAX_DATA: 1 << 20, c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 10,
                  c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 10}


@pytest.mark.parametrize(("capsule_type", "value"), [
    pytest.param(c.WT_CAPSULE_MAX_DATA, 1000, id="max-data-below-initial"),
    pytest.param(c.WT_CAPSULE_MAX_STREAMS_UNI, 5, id="max-streams-below-initial"),
])
def test_a_draft13_peers_non_increasing_limit_is_ignored_not_a_session_error(capsule_type: int, value: int) -> None:
    pair, raw, sid = raw_session_request(DRAFT13_CLIENT)
    accept_raw_session(pair, sid)
    session = pair.server.session(sid)
    assert session.flow is not None  # draft-13 §5.1: both sent WT_MAX_SESSIONS > 1
    aborts = record_aborts(pair.server)
    raw.send(sid, frames.encode_frame(c.FRAME_DATA, capsules.encode_varint_capsule(capsule_type, value)))
    pair.run()
    assert session.state is SessionState.CONNECTED, (
        f"session {session.state.value} with {session.close_code!r}: {session.close_reason}; aborts={aborts}")
