"""What a peer makes us hold of frames and capsules it never finishes is bounded.

A CONNECT stream's parsers hold an incomplete frame (up to ``max_header_block_size``) and an
incomplete capsule (up to ``max_capsule_size``) until the rest comes, and the bytes were
consumed at once, so QUIC flow control did not bound them. Nothing counted them: a peer with
100 sessions each holding 64 KiB of two of them kept 14 MB per connection alive, against a
``max_buffered_bytes`` of 4 MiB (found by a hostile-input hunt). They are now charged to the
receive budget and to the connection's bound; a session whose holdings do not fit ends with
H3_EXCESSIVE_LOAD. On the control stream after SETTINGS, a frame longer than the one varint
its allowed frames carry is refused as soon as it is seen.
"""

from __future__ import annotations

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._wire import buffer, frames
from pywebtransport.types import CloseCause

from .harness import Pair, RawPeer, assert_server_connection_error, no_h3

SETTINGS = {c.SETTINGS_ENABLE_WEBTRANSPORT: 1, c.SETTINGS_H3_DATAGRAM: 1}
LIMIT = 200_000
CAPSULE = 50_000


def _raw_client(config: EngineConfig | None = None) -> tuple[Pair, RawPeer, int]:
    pair = Pair(tweak_client=no_h3, server_config=config or EngineConfig())
    pair.run()
    raw = RawPeer(pair)
    control = raw.control(SETTINGS)
    pair.run()
    return pair, raw, control


def _session(pair: Pair, raw: RawPeer) -> int:
    sid = raw.connect_request()
    pair.run()
    for requested in pair.take("server", ev.SessionRequested):
        pair.server.accept_session(requested.session_id)
    pair.run()
    return sid


def _partial_datagram_capsule(missing: int = 1) -> bytes:
    """One DATA frame carrying a DATAGRAM capsule that declares CAPSULE bytes, ``missing`` short."""
    capsule = buffer.encode_varint(c.CAPSULE_DATAGRAM) + buffer.encode_varint(CAPSULE) + b"d" * (CAPSULE - missing)
    return frames.encode_frame(c.FRAME_DATA, capsule)


def test_incomplete_capsules_are_charged_and_a_session_that_would_pass_the_bound_ends() -> None:
    pair, raw, _ = _raw_client(EngineConfig(max_buffered_bytes=LIMIT))
    sessions = [_session(pair, raw) for _ in range(6)]
    for sid in sessions:
        raw.send(sid, _partial_datagram_capsule())
        pair.run()
    closed = {e.session_id: e for e in pair.take("server", ev.SessionClosed)}
    fitting = LIMIT // (CAPSULE - 1)  # sessions whose holdings fit the connection's bound
    assert sorted(closed) == sessions[fitting:]
    assert all(e.error_code == c.H3_EXCESSIVE_LOAD and e.cause is CloseCause.SESSION_ERROR
               for e in closed.values())
    assert pair.server.receive_buffered_total == fitting * (CAPSULE - 1)
    # The last byte: the capsule is whole and delivered, and nothing of it is held any more.
    raw.send(sessions[0], frames.encode_frame(c.FRAME_DATA, b"d"))
    pair.run()
    assert pair.server.receive_buffered_total == (fitting - 1) * (CAPSULE - 1)
    assert not pair.take("server", ev.SessionClosed)


def test_what_a_closed_session_held_is_returned() -> None:
    pair, raw, _ = _raw_client(EngineConfig(max_buffered_bytes=LIMIT))
    sid = _session(pair, raw)
    raw.send(sid, _partial_datagram_capsule())
    pair.run()
    assert pair.server.receive_buffered_total == CAPSULE - 1
    pair.server.close_session(sid, 0, "bye")
    pair.run()
    assert pair.server.receive_buffered_total == 0


def test_a_long_frame_on_the_control_stream_after_settings_is_refused_before_it_is_held() -> None:
    pair, raw, control = _raw_client()
    header = buffer.encode_varint(c.FRAME_HEADERS) + buffer.encode_varint(1 << 20)  # 1 MiB announced
    raw.send(control, header + b"h" * 100)
    assert_server_connection_error(pair, c.H3_FRAME_UNEXPECTED)


def test_a_goaway_declaring_more_than_one_varint_is_a_frame_error_at_once() -> None:
    pair, raw, control = _raw_client()
    raw.send(control, buffer.encode_varint(c.FRAME_GOAWAY) + buffer.encode_varint(1 << 20) + b"\x00" * 10)
    assert_server_connection_error(pair, c.H3_FRAME_ERROR)
