"""Flow-control capsules a client sends before the server accepts are kept for its flow control.

Draft-15 §4: "The client MAY optimistically open ... streams ... on a session for which it
has sent the CONNECT request, even if it has not yet received the server's response", and the
engine itself parses a not-yet-accepted session's CONNECT stream ("a server before accepting:
parse, so GREASE and CLOSE still work", requests.py). Flow control is already enabled then:
both SETTINGS are known (draft-15 §5.1), so draft-15 §5.1's "MUST ignore ... flow control
capsules" applies only "if flow control is not enabled".

``_on_capsule`` used to drop every WT_MAX_DATA / WT_MAX_STREAMS while ``session.flow`` was None
(the flow is made only at accept). WT_MAX_* are cumulative and a client never repeats a grant
it already made (§5.6.2, §5.6.4), so the server kept the client's SETTINGS limits for good:
its sends stalled at SETTINGS_WT_INITIAL_MAX_DATA although the client granted far more. They
are now kept until the session's flow control starts (``PreAccept``).
"""

from __future__ import annotations

from pywebtransport import constants as c
from pywebtransport._wire import capsules, frames

from .harness import accept_raw_session, raw_session_request

QPACK_ZEROS = {c.SETTINGS_QPACK_MAX_TABLE_CAPACITY: 0, c.SETTINGS_QPACK_BLOCKED_STREAMS: 0}
INITIAL_DATA = 1000
DRAFT15_CLIENT = {**QPACK_ZEROS, c.SETTINGS_H3_DATAGRAM: 1, c.SETTINGS_WT_ENABLED: 1,
                  c.SETTINGS_WT_INITIAL_MAX_DATA: INITIAL_DATA, c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 1,
                  c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 1}
GRANTED_DATA = 1 << 20


def test_a_clients_wt_max_data_sent_right_after_connect_is_not_lost() -> None:
    pair, raw, sid = raw_session_request(DRAFT15_CLIENT)
    raw.send(sid, frames.encode_frame(c.FRAME_DATA, capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_DATA,
                                                                                   GRANTED_DATA))
             + frames.encode_frame(c.FRAME_DATA, capsules.encode_varint_capsule(c.WT_CAPSULE_MAX_STREAMS_UNI, 50)))
    pair.run()  # the grants arrive before the server answers
    accept_raw_session(pair, sid)
    flow = pair.server.session(sid).flow
    assert flow is not None  # both sides opted in (draft-15 §5.1)
    # What the server may now send: the client's grant, not its SETTINGS value.
    stream_id = pair.server.open_stream(sid, is_unidirectional=True)
    pair.server.send_stream_data(stream_id, b"y" * 5000, end_stream=True)
    pair.run()
    assert flow.send_data.limit == GRANTED_DATA, f"server kept {flow.send_data.limit}, client granted {GRANTED_DATA}"
    assert flow.blocked_bytes == 0, f"{flow.blocked_bytes} bytes wait for credit the client already gave"
    assert flow.send_streams[True].limit == 50
