"""WT_MAX_STREAM_DATA and WT_STREAM_DATA_BLOCKED belong to WebTransport over HTTP/2: over
HTTP/3 QUIC limits each stream itself, and draft-15 §5.4 (draft-13 §5.4) says "Endpoints MUST
treat receipt of a WT_MAX_STREAM_DATA or a WT_STREAM_DATA_BLOCKED capsule as a session error".
They were skipped as unknown capsules and the session went on."""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam
from pywebtransport._wire import buffer, capsules
from pywebtransport.types import CloseCause

from .harness import Pair, record_aborts
from .test_engine_hardening import send_capsules_raw

PROHIBITED = [pytest.param(c.WT_CAPSULE_MAX_STREAM_DATA, id="WT_MAX_STREAM_DATA"),
              pytest.param(c.WT_CAPSULE_STREAM_DATA_BLOCKED, id="WT_STREAM_DATA_BLOCKED")]
#: A server with session flow control on (draft-15 §5.1: non-zero WT_INITIAL_*), and one with it off.
FLOW = [pytest.param(EngineConfig(initial_max_data=1 << 20, initial_max_streams_bidi=10, initial_max_streams_uni=10),
                     id="flow-control"),
        pytest.param(EngineConfig(initial_max_data=0, initial_max_streams_bidi=0, initial_max_streams_uni=0),
                     id="no-flow-control")]


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.mark.parametrize("capsule_type", PROHIBITED)
@pytest.mark.parametrize("config", FLOW)
def test_a_prohibited_stream_capsule_ends_the_session_with_a_message_error(backend: str, capsule_type: int,
                                                                           config: EngineConfig) -> None:
    pair = Pair(backend=backend, server_config=config)
    sid = pair.open_session()
    aborts = record_aborts(pair.server)
    value = buffer.encode_varint(4) + buffer.encode_varint(1000)  # stream id, limit: as over HTTP/2
    send_capsules_raw(pair, sid, capsules.encode_capsule(capsule_type, value))
    pair.run()
    closed = pair.take("server", ev.SessionClosed)
    assert [(e.session_id, e.error_code, e.cause) for e in closed] == [(sid, c.H3_MESSAGE_ERROR,
                                                                        CloseCause.SESSION_ERROR)]
    assert "draft-15 §5.4" in closed[0].reason
    assert ("reset", sid, c.H3_MESSAGE_ERROR) in aborts


def test_an_unknown_capsule_is_still_skipped(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    send_capsules_raw(pair, sid, capsules.encode_capsule(0x190B4D46, b"\x01\x02"))  # not a known type
    pair.run()
    assert not pair.take("server", ev.SessionClosed)
    assert pair.server.session_state(sid).value == "connected"
