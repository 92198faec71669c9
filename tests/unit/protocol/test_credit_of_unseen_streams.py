"""Session credit used by streams that ended before their session was established.

Draft-15 §4 lets a client "optimistically open unidirectional and bidirectional streams ...
even if it has not yet received the server's response", and §4.6 has the server buffer them
or refuse the excess. Draft-15 §5.6.2: the stream limit "includes streams that have been closed
as well as those that are open"; §5.4/§5.6.4: the data limit counts all Stream Body bytes, and
for a reset stream its final size (RFC 9000 §4.5). The client therefore used a stream, and its
payload, on a stream it opened and reset before the server accepted, or that the server
refused while waiting.

The engine used to drop such a stream without charging it to the session's books, so it never
counted it closed either: the WT_MAX_STREAMS it granted later lagged the client's count by one
for good (and WT_MAX_DATA by the payload); with an initial limit of one stream the client could
never open another. They are now counted once the session's flow control starts (``PreAccept``).
"""

from __future__ import annotations

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig
from pywebtransport._protocol import events as ev
from pywebtransport._wire import frames

from .harness import Pair, RawPeer, accept_raw_session, no_h3, raw_session_request

QPACK_ZEROS = {c.SETTINGS_QPACK_MAX_TABLE_CAPACITY: 0, c.SETTINGS_QPACK_BLOCKED_STREAMS: 0}
#: A draft-15 client opting into session flow control (draft-15 §3.1, §5.1, §5.5).
DRAFT15_CLIENT = {**QPACK_ZEROS, c.SETTINGS_H3_DATAGRAM: 1, c.SETTINGS_WT_ENABLED: 1,
                  c.SETTINGS_WT_INITIAL_MAX_DATA: 1 << 16, c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 4,
                  c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 4}
PAYLOAD = 100


def _early_stream_reset_before_accept(server_config: EngineConfig) -> tuple[Pair, int]:
    pair, raw, sid = raw_session_request(DRAFT15_CLIENT, server_config=server_config)
    # Optimistic stream (draft-15 §4): header + payload, then reset (RESET_STREAM_AT-like: the
    # header and payload already arrived, final size = header + PAYLOAD).
    stream_id = raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + b"x" * PAYLOAD)
    pair.run()
    raw.quic.reset_stream(stream_id, c.WT_APP_ERROR_FIRST)
    pair.run()
    accept_raw_session(pair, sid)
    return pair, sid


def test_an_early_stream_reset_before_accept_still_counts_and_returns_stream_credit() -> None:
    pair, sid = _early_stream_reset_before_accept(EngineConfig(initial_max_streams_uni=1))
    flow = pair.server.session(sid).flow
    assert flow is not None
    # The client used 1 of its 1 unidirectional streams; it is closed, so with auto-extend the
    # server owes WT_MAX_STREAMS_UNI >= 2. Without it the client is stuck at 1 forever.
    assert flow.recv_streams[True].limit >= 2, (
        f"server still grants {flow.recv_streams[True].limit} uni stream(s): the client's reset early "
        "stream was never counted, so its credit never comes back")


def test_an_early_stream_reset_before_accept_charges_its_final_size_to_session_data() -> None:
    pair, sid = _early_stream_reset_before_accept(EngineConfig(initial_max_data=1000))
    flow = pair.server.session(sid).flow
    assert flow is not None
    # Both ends must agree the PAYLOAD bytes used session credit (draft-15 §5.4, RFC 9000 §4.5).
    assert flow.recv_data.received == PAYLOAD, (
        f"server charged {flow.recv_data.received} bytes, the client {PAYLOAD}: books drift apart")


def test_an_early_stream_refused_as_excess_still_counts_and_returns_stream_credit() -> None:
    """Draft-15 §4.6: the excess early stream is refused with WT_BUFFERED_STREAM_REJECTED; the
    client opened it, so it used (and, now closed, should get back) one stream of the limit."""
    config = EngineConfig(initial_max_streams_uni=2, max_buffered_streams=1)
    pair, raw, sid = raw_session_request(DRAFT15_CLIENT, server_config=config)
    header = frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid)
    raw.uni(header + b"a", fin=True)  # buffered, delivered at accept, closed
    pair.run()
    raw.uni(header + b"b", fin=True)  # over max_buffered_streams: WT_BUFFERED_STREAM_REJECTED
    pair.run()
    accept_raw_session(pair, sid)
    flow = pair.server.session(sid).flow
    assert flow is not None
    # The client used 2 of 2 uni streams and both are closed: with auto-extend the server owes
    # more than 2; at 2 the client may never open another stream.
    assert flow.recv_data.received == 2  # "a" delivered, "b" arrived with its header and was dropped
    assert flow.recv_streams[True].limit > 2, (
        f"server grants {flow.recv_streams[True].limit} uni streams, counted {flow.recv_streams[True].received} "
        "opened: the refused early stream's credit is lost for good")


def test_an_early_stream_refused_for_waiting_too_long_still_counts_its_stream_and_bytes() -> None:
    config = EngineConfig(initial_max_streams_uni=1, early_stream_timeout=0.5)
    pair, raw, sid = raw_session_request(DRAFT15_CLIENT, server_config=config)
    raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + b"x" * PAYLOAD)
    pair.run(horizon=2.0)  # the early stream's deadline passes: WT_BUFFERED_STREAM_REJECTED
    accept_raw_session(pair, sid)
    flow = pair.server.session(sid).flow
    assert flow is not None
    assert flow.recv_data.received == PAYLOAD
    assert flow.recv_streams[True].limit >= 2


# -- streams that came before their session's CONNECT (draft-15 §4.6)

SID = 0  # the client's first bidirectional stream: its CONNECT, sent last below


def _client_without_connect(config: EngineConfig) -> tuple[Pair, RawPeer]:
    pair = Pair(tweak_client=no_h3, server_config=config)
    pair.run()
    raw = RawPeer(pair)
    raw.control(DRAFT15_CLIENT)
    pair.run()
    return pair, raw


def _connect_and_accept(pair: Pair, raw: RawPeer) -> None:
    assert raw.connect_request(b"/x") == SID
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == SID
    accept_raw_session(pair, SID)


def test_an_early_stream_refused_as_excess_before_its_connect_arrived_is_counted() -> None:
    pair, raw = _client_without_connect(EngineConfig(initial_max_streams_uni=2, max_buffered_streams=1))
    header = frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, SID)
    raw.uni(header + b"a", fin=True)  # held early: its CONNECT has not arrived (draft-15 §4.6)
    pair.run()
    raw.uni(header + b"b", fin=True)  # over max_buffered_streams: WT_BUFFERED_STREAM_REJECTED
    pair.run()
    _connect_and_accept(pair, raw)
    flow = pair.server.session(SID).flow
    assert flow is not None
    # The client opened 2 uni streams for the session and both are closed; it sent 2 payload bytes.
    assert flow.recv_streams[True].received == 2, (
        f"server counted {flow.recv_streams[True].received} uni stream(s) opened, the client 2")
    assert flow.recv_data.received == 2


def test_an_early_stream_reset_before_its_connect_arrived_is_counted() -> None:
    pair, raw = _client_without_connect(EngineConfig(initial_max_streams_uni=1))
    stream_id = raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, SID) + b"x" * 100)
    pair.run()
    raw.quic.reset_stream(stream_id, c.WT_APP_ERROR_FIRST)
    pair.run()
    _connect_and_accept(pair, raw)
    flow = pair.server.session(SID).flow
    assert flow is not None
    assert flow.recv_data.received == 100, f"server charged {flow.recv_data.received} bytes, the client 100"
    assert flow.recv_streams[True].limit >= 2, (
        f"server still grants {flow.recv_streams[True].limit} uni stream(s): the client used its only one "
        "and can never open another")


def test_sessions_whose_connect_never_comes_are_kept_for_at_most_max_buffered_streams() -> None:
    # A client naming ever new sessions that never arrive must not make the server keep a
    # record per name: beyond max_buffered_streams names, the credit of such streams is not kept.
    pair, raw = _client_without_connect(EngineConfig(max_buffered_streams=4))
    for index in range(40):
        raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, 4 * (index + 1)) + b"x", fin=True)
        pair.run()
    unseen = pair.server._unseen_sessions  # noqa: SLF001 - the bound is the point of the test
    assert unseen is not None and 0 < len(unseen) <= 4
