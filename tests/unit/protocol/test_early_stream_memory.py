"""Early streams (draft-15 §4.6) hold about the memory their bytes count, however the peer
cuts them, and hand the bytes over intact once their session is established.

Found by a hunt: every STREAM frame of an early stream was kept as its own ``bytes`` object,
so a peer sending 2-byte frames made each counted byte cost ~28 bytes of memory, and the
4 MiB per-connection early-bytes bound (32 MiB per server) really cost ~28 times that.
Each early stream now holds its bytes in one growable buffer.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam
from pywebtransport._protocol.streams import StreamKind, StreamRecord, StreamTable
from pywebtransport._wire import frames

from .harness import Pair, RawPeer, no_h3, record_aborts

#: Memory an early stream may hold: this many bytes per counted byte, plus ``SLACK``.
PER_BYTE = 2
SLACK = 8 * 1024


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class _NoQuic:
    """A QUIC shim that holds no streams (the table only asks it when a stream finishes)."""

    def has_stream(self, stream_id: int) -> bool:
        return False

    def forget_stream(self, stream_id: int) -> None:
        pass


def _pattern(size: int) -> bytes:
    """``size`` bytes in which a reordered or dropped piece would show."""
    return bytes((i * 7 + i // 251) & 0xFF for i in range(size))


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


# ---------------------------------------------------------------- the table alone


def test_early_bytes_added_two_at_a_time_cost_about_what_they_count() -> None:
    table = StreamTable(_NoQuic())
    record = table.add(StreamRecord(stream_id=2, kind=StreamKind.PENDING_UNI, is_unidirectional=True, local=False))
    table.hold_early(record, 0, now=0.0)
    payload = _pattern(64 * 1024)
    tracemalloc.start()
    try:
        before = _traced()
        for offset in range(0, len(payload), 2):
            # A new object per piece, as QUIC hands over one per STREAM frame.
            assert table.add_early_bytes(record, payload[offset:offset + 2], fin=False)
        held = _traced() - before
    finally:
        tracemalloc.stop()
    assert record.early_bytes == table.early_bytes == len(payload)
    assert held <= PER_BYTE * len(payload) + SLACK, f"{held} bytes held for {len(payload)} counted"
    assert table.release_early(record) == (payload, False)
    assert table.early_bytes == table.early_count == 0 and record.early is None


def test_released_early_bytes_are_immutable_bytes_in_arrival_order_with_fin() -> None:
    table = StreamTable(_NoQuic())
    record = table.add(StreamRecord(stream_id=6, kind=StreamKind.PENDING_UNI, is_unidirectional=True, local=False))
    table.hold_early(record, 4, now=0.0)
    for piece in (b"ab", b"", b"c", b"defg"):
        assert table.add_early_bytes(record, piece, fin=False)
    assert table.add_early_bytes(record, b"", fin=True)  # FIN in a frame of its own
    payload, fin = table.release_early(record)
    assert (payload, fin) == (b"abcdefg", True) and type(payload) is bytes


def test_an_early_stream_without_bytes_releases_empty_bytes() -> None:
    table = StreamTable(_NoQuic())
    record = table.add(StreamRecord(stream_id=10, kind=StreamKind.PENDING_UNI, is_unidirectional=True, local=False))
    table.hold_early(record, 4, now=0.0)
    payload, fin = table.release_early(record)
    assert (payload, fin) == (b"", False) and type(payload) is bytes


# ---------------------------------------------------------------- over QUIC, 2-byte STREAM frames


def _requested(backend: str) -> tuple[Pair, int, RawPeer]:
    """A server that has a session request it has not answered: streams of that session are early."""
    pair = Pair(backend=backend)
    pair.run()
    sid = pair.client.open_session(authority="localhost", path="/early")
    pair.run()
    pair.one("server", ev.SessionRequested)
    return pair, sid, RawPeer(pair)


def _open_early(raw: RawPeer, sid: int, kind: str) -> int:
    if kind == "uni":
        return raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid))
    return raw.bidi(frames.encode_bidi_stream_header(sid))


def _send_in_two_byte_frames(pair: Pair, stream_id: int, payload: bytes, *, fin: bool = False) -> None:
    """Each 2-byte piece in its own packet (one STREAM frame each), straight to the server."""
    quic = pair.client.quic
    for index, offset in enumerate(range(0, len(payload), 2)):
        quic.send_stream_data(stream_id, payload[offset:offset + 2])
        for datagram, _ in pair.client.datagrams_to_send(pair.now):
            pair.server.receive_datagram(datagram, ("10.0.0.1", 50000), pair.now)
        pair.now += 0.0001  # past the pacer: each piece leaves at once, in a frame of its own
        if index % 50 == 0:
            pair.run(horizon=0)  # acknowledgements both ways, no timers
    if fin:
        quic.send_stream_data(stream_id, b"", end_stream=True)  # FIN in a frame of its own
    pair.run(horizon=0)


@pytest.mark.parametrize("kind", ["uni", "bidi"])
def test_an_early_stream_sent_in_two_byte_frames_holds_about_what_it_counts(backend: str, kind: str) -> None:
    pair, sid, raw = _requested(backend)
    stream_id = _open_early(raw, sid, kind)
    pair.run(horizon=0)
    assert pair.server.early_stream_count == 1
    payload = _pattern(4000)
    tracemalloc.start()
    try:
        _send_in_two_byte_frames(pair, stream_id, payload)
        assert pair.server.early_stream_count == 1
        assert pair.server.receive_buffered_total == len(payload)
        held = _traced()
        # The peer resets the stream before its session: the server drops it and what it held.
        pair.client.quic.reset_stream(stream_id, c.WT_BUFFERED_STREAM_REJECTED)
        for datagram, _ in pair.client.datagrams_to_send(pair.now):
            pair.server.receive_datagram(datagram, ("10.0.0.1", 50000), pair.now)
        assert pair.server.early_stream_count == 0
        released = held - _traced()
    finally:
        tracemalloc.stop()
    # Bytes the server lets go of when it drops the stream: what it held for the payload
    # (less what handling the reset itself allocates).
    assert released <= PER_BYTE * len(payload) + SLACK, f"{released} bytes held for {len(payload)} counted"
    assert pair.server.receive_buffered_total == 0


@pytest.mark.parametrize("fin", [False, True], ids=["open", "fin"])
@pytest.mark.parametrize("kind", ["uni", "bidi"])
def test_early_bytes_in_two_byte_frames_are_delivered_intact_once_the_session_is_accepted(
        backend: str, kind: str, fin: bool) -> None:
    pair, sid, raw = _requested(backend)
    aborts = record_aborts(pair.server)
    stream_id = _open_early(raw, sid, kind)
    payload = _pattern(1001)  # odd: the last frame carries one byte
    _send_in_two_byte_frames(pair, stream_id, payload, fin=fin)
    assert pair.server.early_stream_count == 1
    assert not pair.take("server", ev.StreamOpened) and not pair.take("server", ev.StreamDataReceived)
    pair.server.accept_session(sid)
    pair.run(horizon=0)
    opened = pair.one("server", ev.StreamOpened)
    assert (opened.stream_id, opened.is_unidirectional) == (stream_id, kind == "uni")
    received = [e for e in pair.take("server", ev.StreamDataReceived) if e.stream_id == stream_id]
    assert all(type(e.data) is bytes for e in received)
    assert b"".join(e.data for e in received) == payload
    assert [e.end_stream for e in received][-1:] == [fin]
    assert pair.server.early_stream_count == 0
    assert aborts == []


@pytest.mark.parametrize("kind", ["uni", "bidi"])
def test_early_bytes_before_their_connect_arrives_are_delivered_intact(backend: str, kind: str) -> None:
    """The CONNECT stream itself arrives after the stream that names it (reordering)."""
    pair = Pair(backend=backend, tweak_client=no_h3)
    pair.run()
    raw = RawPeer(pair)
    raw.control()
    sid = raw.quic.get_next_available_stream_id(is_unidirectional=False)
    raw.quic.send_stream_data(sid, b"")  # reserve the id: a later bidi stream may overtake it
    stream_id = _open_early(raw, sid, kind)
    payload = _pattern(601)
    _send_in_two_byte_frames(pair, stream_id, payload, fin=True)
    assert pair.server.early_stream_count == 1
    raw.send(sid, raw.headers_frame(sid, [(b":method", b"CONNECT"), (b":protocol", b"webtransport"),
                                          (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", b"/x")]))
    pair.run(horizon=0)
    assert pair.one("server", ev.SessionRequested).session_id == sid
    pair.server.accept_session(sid)
    pair.run(horizon=0)
    assert pair.one("server", ev.StreamOpened).stream_id == stream_id
    assert pair.stream_payload("server", stream_id) == (payload, True)
