"""The QPACK decoder is made only when it must keep state (pywebtransport/_protocol/h3.py).

Our SETTINGS give QPACK no dynamic table, so a decoder keeps nothing from one header block to
the next and an idle connection holds none (each is 4.4 KiB). Bytes on the peer's encoder
stream are the exception: an instruction may be cut anywhere, so once they come, one decoder
meets them all (RFC 9204 §4.3, fed whole and one byte per packet here)."""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._wire import frames

from .harness import Pair, RawPeer, no_h3

ENCODER_STREAM = frames.encode_uni_stream_header(c.STREAM_TYPE_QPACK_ENCODER)


def _raw_pair(chunked: bool) -> tuple[Pair, RawPeer]:
    pair = Pair(tweak_client=no_h3)
    pair.run()
    return pair, RawPeer(pair, chunked=chunked)


def _control_streams(raw: RawPeer, encoder_bytes: bytes) -> None:
    """A proper client's control and QPACK streams, with ``encoder_bytes`` on its encoder stream."""
    settings = {c.SETTINGS_ENABLE_WEBTRANSPORT: 1, c.SETTINGS_H3_DATAGRAM: 1}
    raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_CONTROL)
            + frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings(settings)))
    raw.uni(ENCODER_STREAM + encoder_bytes)
    raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_QPACK_DECODER))


def _holds_decoder(pair: Pair) -> bool:
    return pair.server._h3._decoder is not None


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "byte-by-byte"])
def test_sessions_are_decoded_without_a_decoder_kept_between_them(chunked: bool) -> None:
    pair, raw = _raw_pair(chunked)
    raw.control()  # its encoder stream carries the stream type and nothing else
    first = raw.connect_request(b"/one")
    pair.run()
    second = raw.connect_request(b"/two")
    pair.run()
    requested = pair.take("server", ev.SessionRequested)
    assert [(event.session_id, event.path) for event in requested] == [(first, "/one"), (second, "/two")]
    assert not pair.take("server", ev.ProtocolViolation)
    assert not _holds_decoder(pair)


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "byte-by-byte"])
def test_a_capacity_instruction_cut_in_two_is_read_as_one(chunked: bool) -> None:
    """0x3f 0x20 sets the capacity to 31 + 32 = 63, above our 0: QPACK_ENCODER_STREAM_ERROR
    (RFC 9204 §4.3.1). Read from a fresh decoder, the second byte alone would be a valid
    "capacity 0" and the error would go unseen."""
    pair, raw = _raw_pair(chunked)
    _control_streams(raw, b"\x3f\x20")
    pair.run(horizon=2.0)
    assert pair.one("server", ev.ProtocolViolation).error_code == c.QPACK_ENCODER_STREAM_ERROR


def test_a_zero_capacity_instruction_keeps_a_decoder_and_requests_still_decode() -> None:
    pair, raw = _raw_pair(chunked=False)
    _control_streams(raw, b"\x20")  # Set Dynamic Table Capacity 0: allowed
    session_id = raw.connect_request(b"/after")
    pair.run()
    assert not pair.take("server", ev.ProtocolViolation)
    assert pair.one("server", ev.SessionRequested).session_id == session_id
    assert _holds_decoder(pair)
