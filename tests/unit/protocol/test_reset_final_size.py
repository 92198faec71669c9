"""A reset stream's final size is what both ends charge to session flow control (draft-15
§5.4: "for streams that were reset, implementing WT_MAX_DATA requires that the QUIC stack
provide the WebTransport implementation with information about the final size of streams",
RFC 9000 §4.5).

Found by a reproducer: the sender counted the bytes of a stream whose packets were lost and
which it then reset, the receiver counted none of them and never raised its limit, and the
session's later writes waited forever. Now the receiver charges the final size (received and
consumed at once, so its window moves on), and the sender counts no byte its QUIC stack left
out of the final size (written, but never put in a STREAM frame)."""

from __future__ import annotations

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig, WebTransportEngine
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam
from pywebtransport._wire import flow, frames
from pywebtransport.types import SessionState

from .harness import CLIENT_ADDR, Pair

WINDOW = 8000  #: each side's session data window (WT_MAX_DATA)
FLOW = EngineConfig(initial_max_data=WINDOW)


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _sides(pair: Pair, sender: str) -> tuple[WebTransportEngine, WebTransportEngine, str]:
    """(sending engine, receiving engine, the receiver's side name)."""
    if sender == "client":
        return pair.client, pair.server, "server"
    return pair.server, pair.client, "client"


def _lose_everything_written(pair: Pair, engine: WebTransportEngine, stream_id: int) -> None:
    """Send every byte written to ``stream_id`` in packets that never arrive (the virtual
    clock moves on so that pacing releases them; no timer runs meanwhile)."""
    for _ in range(200):
        offsets = engine.quic.stream_offsets(stream_id)
        assert offsets is not None
        if offsets.sent == offsets.written:
            return
        engine.datagrams_to_send(pair.now)
        pair.now += 0.005
    raise AssertionError(f"stream {stream_id}: QUIC kept bytes unsent")


def _read_everything(pair: Pair, side: str, total: int) -> int:
    """Run until ``total`` payload bytes reached ``side`` (each read at once); returns how many did."""
    engine = pair.client if side == "client" else pair.server
    got = 0
    for _ in range(30):
        pair.run(horizon=3.0)
        for event in pair.take(side, ev.StreamDataReceived):
            if event.data:
                engine.consume_stream_data(event.stream_id, len(event.data))
                got += len(event.data)
        if got >= total:
            break
    return got


def _open_stream(pair: Pair, engine: WebTransportEngine, sid: int, *, is_unidirectional: bool = True) -> int:
    """A stream whose header has reached the peer (its session is known there)."""
    stream_id = engine.open_stream(sid, is_unidirectional=is_unidirectional)
    pair.run()
    return stream_id


def _read_what_arrived(pair: Pair, side: str) -> None:
    engine = pair.client if side == "client" else pair.server
    for event in pair.take(side, ev.StreamDataReceived):
        if event.data:
            engine.consume_stream_data(event.stream_id, len(event.data))


@pytest.mark.parametrize("sender", ["client", "server"])
def test_a_reset_streams_lost_bytes_count_on_both_ends_and_the_session_goes_on(backend: str, sender: str) -> None:
    pair = Pair(backend=backend, client_config=FLOW, server_config=FLOW)
    sid = pair.open_session()
    writer, reader, reader_side = _sides(pair, sender)
    stream_id = _open_stream(pair, writer, sid)
    writer.send_stream_data(stream_id, b"x" * 6000)
    _lose_everything_written(pair, writer, stream_id)
    writer.reset_stream(stream_id, 1)
    pair.run(horizon=3.0)
    assert [e.stream_id for e in pair.take(reader_side, ev.StreamReset)] == [stream_id]

    sent, received = writer.session(sid).flow, reader.session(sid).flow
    assert sent.send_data._used == 6000  # every byte went into a frame: all of it is in the final size
    assert received.recv_data.received == received.recv_data._consumed == 6000
    assert received.recv_data.limit == 6000 + WINDOW  # the window moved on past the reset stream
    assert sent.send_data.limit == 6000 + WINDOW

    later = _open_stream(pair, writer, sid)
    writer.send_stream_data(later, b"y" * 5000, end_stream=True)
    assert _read_everything(pair, reader_side, 5000) == 5000
    assert sent.blocked_bytes == 0
    assert sent.send_data._used == received.recv_data.received == 11000


def test_bytes_quic_never_sent_are_not_counted_after_a_reset(backend: str) -> None:
    # The server's QUIC stream window (2000 bytes) holds the stream back: of 6000 bytes the
    # client wrote, QUIC framed about 2000, and its RESET_STREAM's final size says so.
    pair = Pair(backend=backend, client_config=FLOW, server_config=FLOW, server_quic={"max_stream_data": 2000})
    sid = pair.open_session()
    stream_id = _open_stream(pair, pair.client, sid)
    pair.client.send_stream_data(stream_id, b"x" * 6000)
    pair.run()
    offsets = pair.client.quic.stream_offsets(stream_id)
    assert offsets is not None and offsets.sent < offsets.written
    pair.client.reset_stream(stream_id, 1)
    pair.run()
    _read_what_arrived(pair, "server")

    sent, received = pair.client.session(sid).flow, pair.server.session(sid).flow
    assert sent.send_data._used == received.recv_data.received == received.recv_data._consumed < 2000

    later = _open_stream(pair, pair.client, sid)
    pair.client.send_stream_data(later, b"y" * 7500, end_stream=True)
    assert _read_everything(pair, "server", 7500) == 7500
    assert sent.send_data._used == received.recv_data.received


def test_a_reply_on_the_peers_stream_counts_only_what_its_reset_carried(backend: str) -> None:
    # The server writes on the client's bidirectional stream (no header of ours on it).
    pair = Pair(backend=backend, client_config=FLOW, server_config=FLOW, client_quic={"max_stream_data": 2000})
    sid = pair.open_session()
    stream_id = _open_stream(pair, pair.client, sid, is_unidirectional=False)
    pair.server.send_stream_data(stream_id, b"x" * 6000)
    pair.run()
    pair.server.reset_stream(stream_id, 1)
    pair.run()
    _read_what_arrived(pair, "client")

    sent, received = pair.server.session(sid).flow, pair.client.session(sid).flow
    assert sent.send_data._used == received.recv_data.received == received.recv_data._consumed == 2000

    later = _open_stream(pair, pair.server, sid)
    pair.server.send_stream_data(later, b"y" * 7500, end_stream=True)
    assert _read_everything(pair, "client", 7500) == 7500


def test_both_ends_read_the_final_size_that_reset_stream_carried(backend: str) -> None:
    pair = Pair(backend=backend, client_config=FLOW, server_config=FLOW, server_quic={"max_stream_data": 2000})
    sid = pair.open_session()
    stream_id = _open_stream(pair, pair.client, sid)
    pair.client.send_stream_data(stream_id, b"x" * 6000)
    pair.run()
    pair.client.reset_stream(stream_id, 1)
    sent = pair.client.quic.stream_offsets(stream_id)
    header = len(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid))
    assert sent is not None and sent.written == header + 6000 and sent.sent < sent.written
    for datagram, _ in pair.client.datagrams_to_send(pair.now):  # the RESET_STREAM
        pair.server.receive_datagram(datagram, CLIENT_ADDR, pair.now)
    received = pair.server.quic.stream_offsets(stream_id)  # before QUIC discards the stream
    assert received is not None and received.final_size == sent.sent == received.delivered


def test_a_stream_the_receiver_stops_counts_its_final_size_on_both_ends(backend: str) -> None:
    # STOP_SENDING makes the sender's QUIC stack reset the stream by itself, at what it framed.
    pair = Pair(backend=backend, client_config=FLOW, server_config=FLOW, server_quic={"max_stream_data": 2000})
    sid = pair.open_session()
    stream_id = _open_stream(pair, pair.client, sid)
    pair.client.send_stream_data(stream_id, b"x" * 6000)
    pair.run()
    _read_what_arrived(pair, "server")
    pair.server.stop_stream(stream_id, 2)
    pair.run()
    assert [e.stream_id for e in pair.take("client", ev.StreamStopSending)] == [stream_id]

    sent, received = pair.client.session(sid).flow, pair.server.session(sid).flow
    assert sent.send_data._used == received.recv_data.received == received.recv_data._consumed

    later = _open_stream(pair, pair.client, sid)
    pair.client.send_stream_data(later, b"y" * 7500, end_stream=True)
    assert _read_everything(pair, "server", 7500) == 7500


def test_a_stop_sending_crossing_our_reset_gives_no_credit_back_twice(backend: str) -> None:
    pair = Pair(backend=backend, client_config=FLOW, server_config=FLOW, server_quic={"max_stream_data": 2000})
    sid = pair.open_session()
    stream_id = _open_stream(pair, pair.client, sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"x" * 6000)
    pair.run()
    _read_what_arrived(pair, "server")
    pair.client.reset_stream(stream_id, 1)  # crosses the server's STOP_SENDING in flight
    pair.server.stop_stream(stream_id, 2)
    pair.run()
    assert not pair.take("client", ev.ProtocolViolation) and not pair.take("server", ev.ProtocolViolation)

    sent, received = pair.client.session(sid).flow, pair.server.session(sid).flow
    assert sent.send_data._used == received.recv_data.received == received.recv_data._consumed

    later = _open_stream(pair, pair.client, sid)
    pair.client.send_stream_data(later, b"y" * 7500, end_stream=True)
    assert _read_everything(pair, "server", 7500) == 7500
    assert sent.send_data._used == received.recv_data.received


def test_a_reset_final_size_above_the_session_limit_is_a_wt_flow_control_error(backend: str) -> None:
    pair = Pair(backend=backend, client_config=FLOW, server_config=EngineConfig(initial_max_data=WINDOW,
                                                                                  flow_control_auto_extend=False))
    sid = pair.open_session()
    pair.client.session(sid).flow.send_data = flow.SendCredit(10**9)  # a client that ignores WT_MAX_DATA
    stream_id = _open_stream(pair, pair.client, sid)
    pair.client.send_stream_data(stream_id, b"x" * (WINDOW + 1000))
    _lose_everything_written(pair, pair.client, stream_id)  # the server never sees a byte of it
    pair.client.reset_stream(stream_id, 1)
    pair.run(horizon=3.0)

    closed = pair.one("server", ev.SessionClosed)
    assert closed.error_code == c.WT_FLOW_CONTROL_ERROR
    assert pair.server.session(sid).state is SessionState.CLOSED
    assert not pair.take("server", ev.StreamReset)  # the session went, and the stream with it
    assert pair.one("client", ev.SessionClosed).by_peer
