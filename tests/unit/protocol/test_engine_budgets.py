"""Bounded buffered bytes (issue #10): per connection and per server, both directions.

Send side: what our application wrote on a connection's session streams and QUIC has not
finished with is bounded per connection (``EngineConfig.max_send_buffer``) and, through a
``ByteBudget`` shared by engines, per server; writers that respect ``send_buffer_room()``
never pass it and are told (``StreamWritable``) when room frees, also by another engine.
Receive side: early streams and incomplete request headers of all the engines sharing a
receive budget are refused once it is spent (draft-15 §4.6), and the budget comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pywebtransport import constants as c
from pywebtransport._protocol import EngineConfig, WebTransportEngine
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.budget import BudgetAccount, ByteBudget, SharedBudgets
from pywebtransport._wire import frames

from .harness import Pair, RawPeer, record_aborts

KIB = 1024


# ---------------------------------------------------------------- the budget itself


def test_try_take_is_all_or_nothing_and_counts_refusals() -> None:
    budget = ByteBudget(100)
    assert budget.try_take(60)
    assert not budget.try_take(41)
    assert (budget.used, budget.refusals) == (60, 1)
    assert budget.try_take(40)
    assert not budget.try_take(0)  # spent: not even an empty new stream fits
    assert (budget.used, budget.available, budget.refusals, budget.peak) == (100, 0, 2, 100)


def test_take_may_pass_the_limit_and_release_never_goes_below_zero() -> None:
    budget = ByteBudget(10)
    budget.take(25)
    assert (budget.used, budget.available, budget.peak) == (25, 0, 25)
    budget.release(100)
    assert budget.used == 0


def test_waiters_are_called_once_when_enough_room_frees_and_can_be_cancelled() -> None:
    budget = ByteBudget(100)
    budget.take(100)
    calls: list[str] = []
    budget.notify_when(50, lambda: calls.append("half"))
    cancelled = lambda: calls.append("cancelled")  # noqa: E731
    budget.notify_when(1, cancelled)
    budget.cancel(cancelled)
    budget.release(30)
    assert calls == []
    budget.release(30)
    assert calls == ["half"]
    budget.release(40)
    assert calls == ["half"]
    budget.notify_when(10, lambda: calls.append("at once"))
    assert calls == ["half", "at once"] and budget.waiting == 0


def test_an_account_returns_everything_it_holds_when_closed() -> None:
    budget = ByteBudget(100)
    one, two = BudgetAccount(budget), BudgetAccount(budget)
    assert one.try_take(30) and two.try_take(50)
    one.set_held(45)
    assert budget.used == 95
    assert not two.try_take(10)
    assert (two.refusals, budget.refusals) == (1, 1)
    one.close()
    assert (budget.used, one.held) == (50, 0)
    assert not one.try_take(1)  # a closed account takes nothing
    one.release(10)
    assert budget.used == 50


def test_budget_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        ByteBudget(0)


# ---------------------------------------------------------------- send side


@dataclass
class Writers:
    """Application writers on many streams of one engine that respect its send room, as
    ``write_all`` does: each writes at most the room left, and once there is none waits for
    the StreamWritable its watch announces."""

    engine: WebTransportEngine
    payloads: dict[int, bytes]
    chunk: int = 4 * KIB
    offsets: dict[int, int] = field(default_factory=dict)
    waiting: set[int] = field(default_factory=set)

    def write(self) -> int:
        """Chunks, round robin over the streams that are not waiting, until each waits or is
        done (writers run until they block); returns bytes written."""
        written = 0
        while True:
            before = written
            for stream_id, payload in self.payloads.items():
                offset = self.offsets.get(stream_id, 0)
                if offset >= len(payload) or stream_id in self.waiting:
                    continue
                room = self.engine.send_buffer_room()
                if room <= 0:
                    self.waiting.add(stream_id)
                    self.engine.watch_writable(stream_id, 1 << 30)
                    continue
                end = min(len(payload), offset + self.chunk, offset + room)
                self.engine.send_stream_data(stream_id, payload[offset:end], end_stream=end == len(payload))
                self.offsets[stream_id] = end
                written += end - offset
            if written == before:
                return written

    def woken(self, events: list[ev.StreamWritable]) -> None:
        for event in events:
            self.waiting.discard(event.stream_id)

    @property
    def done(self) -> bool:
        return all(self.offsets.get(sid, 0) == len(p) for sid, p in self.payloads.items())


def held_by_quic(engine: WebTransportEngine, stream_ids: list[int]) -> int:
    """What the streams hold, measured stream by stream (QUIC's buffers + engine-pending)."""
    return sum(engine.stream_send_buffered(stream_id) for stream_id in stream_ids)


def test_fifty_streams_blocked_by_a_peer_that_does_not_read_hold_at_most_the_bound_then_deliver_all() -> None:
    bound, window = 64 * KIB, 8 * KIB
    pair = Pair(client_config=EngineConfig(max_send_buffer=bound), server_quic={"max_stream_data": window})
    sid = pair.open_session()
    streams = [pair.client.open_stream(sid, is_unidirectional=True) for _ in range(50)]
    payloads = {stream_id: bytes([index]) * (24 * KIB) for index, stream_id in enumerate(streams)}
    writers = Writers(pair.client, payloads)
    received: dict[int, bytearray] = {stream_id: bytearray() for stream_id in streams}
    fins: set[int] = set()

    def deliver(*, read: bool) -> None:
        for event in pair.take("server", ev.StreamDataReceived):
            received[event.stream_id] += event.data
            if event.end_stream:
                fins.add(event.stream_id)
            if read:
                pair.server.consume_stream_data(event.stream_id, len(event.data))

    # The peer reads nothing: the writers fill the bound and all end up waiting.
    for _ in range(50):
        moved = writers.write()
        pair.run()
        writers.woken(pair.take("client", ev.StreamWritable))
        deliver(read=False)
        assert pair.client.send_buffered_total <= bound
        assert held_by_quic(pair.client, streams) <= bound
        if not moved and writers.waiting:
            break
    assert writers.waiting and not writers.done
    assert pair.client.send_buffer_room() == 0
    assert bound // 2 < pair.client.send_buffered_total <= bound  # the connection bound is what blocks
    assert sum(map(len, received.values())) <= 50 * window

    # The peer reads what it holds: the writers resume, and every byte arrives once, in order.
    for stream_id, data in received.items():
        pair.server.consume_stream_data(stream_id, len(data))
    for _ in range(500):
        pair.run()
        writers.woken(pair.take("client", ev.StreamWritable))
        deliver(read=True)
        writers.write()
        assert held_by_quic(pair.client, streams) <= bound
        if writers.done and len(fins) == len(streams):
            break
    assert {stream_id: bytes(data) for stream_id, data in received.items()} == payloads
    assert fins == set(streams)
    assert pair.client.send_buffered_peak <= bound
    pair.run()
    assert pair.client.send_buffered_total == 0


def test_a_stream_whose_peer_stopped_reading_does_not_freeze_the_others() -> None:
    bound, window = 64 * KIB, 8 * KIB
    pair = Pair(client_config=EngineConfig(max_send_buffer=bound), server_quic={"max_stream_data": window})
    sid = pair.open_session()
    stuck, moving = (pair.client.open_stream(sid, is_unidirectional=True) for _ in range(2))
    pair.client.send_stream_data(stuck, b"s" * (48 * KIB))  # the peer never reads this one
    pair.run()
    assert pair.client.send_buffered_total > bound // 2  # unsendable: held for good
    writers = Writers(pair.client, {moving: bytes(range(256)) * 1024})  # 256 KiB, read as it comes
    got = bytearray()
    for _ in range(500):
        writers.write()
        pair.run()
        writers.woken(pair.take("client", ev.StreamWritable))
        for event in pair.take("server", ev.StreamDataReceived):
            if event.stream_id == moving:
                got += event.data
                pair.server.consume_stream_data(moving, len(event.data))
        assert pair.client.send_buffered_total <= bound
        if writers.done and len(got) == len(writers.payloads[moving]):
            break
    assert bytes(got) == writers.payloads[moving]


def test_write_is_never_refused_but_past_the_bound_there_is_no_room() -> None:
    pair = Pair(client_config=EngineConfig(max_send_buffer=16 * KIB), server_quic={"max_stream_data": 4 * KIB})
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"x" * (40 * KIB))  # queued whole, as write() documents
    assert pair.client.send_buffered_total >= 40 * KIB
    assert pair.client.send_buffer_room() == 0
    pair.client.watch_writable(stream_id, 1 << 30)
    pair.run()
    assert not pair.take("client", ev.StreamWritable)  # the peer reads nothing: no room
    pair.client.reset_stream(stream_id, 1)  # dropping the bytes frees the room at once
    pair.run()
    assert pair.take("client", ev.StreamWritable)


def sending_pair(budgets: SharedBudgets, bound: int) -> tuple[Pair, int]:
    """A pair whose *server* writes (one session, accepted); its client reads nothing."""
    pair = Pair(server_config=EngineConfig(max_send_buffer=bound), client_quic={"max_stream_data": 4 * KIB},
                server_budgets=budgets)
    return pair, pair.open_session()


def fill(pair: Pair, sid: int, streams: int) -> tuple[Writers, list[int]]:
    ids = [pair.server.open_stream(sid, is_unidirectional=True) for _ in range(streams)]
    writers = Writers(pair.server, {stream_id: b"d" * (64 * KIB) for stream_id in ids})
    for _ in range(50):
        moved = writers.write()
        pair.run()
        writers.woken(pair.take("server", ev.StreamWritable))
        if not moved and writers.waiting:
            break
    assert writers.waiting
    return writers, ids


def test_the_server_send_budget_bounds_all_connections_and_room_freed_by_one_wakes_another() -> None:
    budget = ByteBudget(96 * KIB)
    budgets = SharedBudgets(send=budget)
    first, first_sid = sending_pair(budgets, 64 * KIB)
    second, second_sid = sending_pair(budgets, 64 * KIB)
    fill(first, first_sid, 8)
    assert first.server.send_buffered_total > 32 * KIB
    _, second_ids = fill(second, second_sid, 8)
    # Each connection is under its own bound; together they spent the server's budget.
    assert second.server.send_buffered_total < 64 * KIB
    assert budget.used == first.server.send_buffered_total + second.server.send_buffered_total
    assert budget.peak <= budget.limit
    assert second.server.send_buffer_room() == 0
    wakeups: list[str] = []
    second.server.watch_writable(second_ids[0], 1 << 30, wakeup=lambda: wakeups.append("second"))
    assert budget.waiting == 1

    # The first connection's peer reads: its acknowledgements free budget, and the second
    # connection hears of it without a packet of its own.
    for _ in range(20):
        for event in first.take("client", ev.StreamDataReceived):
            first.client.consume_stream_data(event.stream_id, len(event.data))
        first.run()
        if wakeups:
            break
    assert wakeups == ["second"]
    assert second.server.send_buffer_room() > 0
    writable = [e for e in iter(second.server.next_event, None) if isinstance(e, ev.StreamWritable)]
    assert second_ids[0] in {e.stream_id for e in writable}
    assert budget.peak <= budget.limit


def test_a_closing_connection_returns_its_share_of_the_send_budget() -> None:
    budget = ByteBudget(256 * KIB)
    pair, sid = sending_pair(SharedBudgets(send=budget), 64 * KIB)
    fill(pair, sid, 4)
    assert budget.used > 0
    pair.server.close()
    assert budget.used == 0 and pair.server.send_buffered_total == 0


# ---------------------------------------------------------------- receive side


def requested_pair(budgets: SharedBudgets) -> tuple[Pair, int, RawPeer]:
    """A pair whose client asked for a session the server has not answered yet; streams
    written for it from the client's QUIC connection are early streams on the server."""
    pair = Pair(server_budgets=budgets)
    pair.run()
    sid = pair.client.open_session(authority="localhost", path="/early")
    pair.run()
    pair.one("server", ev.SessionRequested)
    return pair, sid, RawPeer(pair)


def early(raw: RawPeer, sid: int, size: int) -> int:
    return raw.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_WEBTRANSPORT, sid) + b"e" * size)


def test_early_streams_of_several_connections_are_refused_once_the_server_budget_is_spent() -> None:
    budget = ByteBudget(3000)
    budgets = SharedBudgets(receive=budget)
    first, first_sid, first_raw = requested_pair(budgets)
    second, second_sid, second_raw = requested_pair(budgets)
    first_aborts, second_aborts = record_aborts(first.server), record_aborts(second.server)
    kept = [early(first_raw, first_sid, 1000), early(first_raw, first_sid, 1000)]
    first.run()
    too_big = early(second_raw, second_sid, 1001)  # 2000 + 1001 > 3000: its bytes do not fit
    second.run()
    assert second_aborts == [("stop", too_big, c.WT_BUFFERED_STREAM_REJECTED)]
    early(second_raw, second_sid, 1000)  # exactly spends the budget
    second.run()
    assert (budget.used, first.server.receive_buffered_total, second.server.receive_buffered_total) == \
        (3000, 2000, 1000)
    # Spent: a new early stream is refused on either connection, though each holds far
    # less than its own limits (max_buffered_bytes, max_buffered_streams).
    late_first, late_second = early(first_raw, first_sid, 0), early(second_raw, second_sid, 1)
    first.run()
    second.run()
    assert first_aborts == [("stop", late_first, c.WT_BUFFERED_STREAM_REJECTED)]
    assert second_aborts[1:] == [("stop", late_second, c.WT_BUFFERED_STREAM_REJECTED)]
    assert first.server.early_stream_count == 2 and second.server.early_stream_count == 1
    assert (first.server.receive_budget_refusals, second.server.receive_budget_refusals) == (1, 2)
    assert budget.refusals == 3

    # Accepting the first session releases its early streams and returns their bytes.
    first.server.accept_session(first_sid)
    first.run()
    delivered = {e.stream_id: e.data for e in first.take("server", ev.StreamDataReceived)}
    assert delivered == {stream_id: b"e" * 1000 for stream_id in kept}
    assert budget.used == 1000 and first.server.receive_buffered_total == 0
    refused_before = len(second_aborts)
    early(second_raw, second_sid, 1500)
    second.run()
    assert len(second_aborts) == refused_before
    assert second.server.early_stream_count == 2 and budget.used == 2500
    # A connection that ends gives back what its early streams held.
    second.server.close()
    assert budget.used == 0


def test_early_streams_dropped_by_their_deadline_return_the_budget() -> None:
    budget = ByteBudget(4000)
    budgets = SharedBudgets(receive=budget)
    pair = Pair(server_budgets=budgets, server_config=EngineConfig(early_stream_timeout=2.0))
    pair.run()
    sid = pair.client.open_session(authority="localhost", path="/early")
    pair.run()
    raw = RawPeer(pair)
    early(raw, sid, 1500)
    pair.run()
    assert budget.used == 1500
    pair.run(horizon=3.0)
    assert pair.server.early_stream_count == 0 and budget.used == 0


def connect_block(raw: RawPeer, stream_id: int, padding: int) -> bytes:
    """A complete, well-formed extended CONNECT HEADERS frame about ``padding`` bytes long."""
    headers = [(b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"https"),
               (b":authority", b"localhost"), (b":path", b"/held"),
               (b"x-padding", bytes(range(33, 127)) * (padding // 94))]
    return raw.headers_frame(stream_id, headers)


def test_incomplete_request_headers_of_several_connections_share_the_server_receive_budget() -> None:
    budget = ByteBudget(3000)
    budgets = SharedBudgets(receive=budget)
    first, second = Pair(server_budgets=budgets), Pair(server_budgets=budgets)
    first.run()
    second.run()
    first_raw, second_raw = RawPeer(first), RawPeer(second)
    second_aborts = record_aborts(second.server)
    stream_id = first.client.quic.get_next_available_stream_id(is_unidirectional=False)
    block = connect_block(first_raw, stream_id, 2600)
    assert len(block) > 2000
    first_raw.send(stream_id, block[:2000])
    first.run()
    assert 1990 <= first.server.receive_buffered_total <= 2000
    assert not first.take("server", ev.SessionRequested)
    # The second connection's half-sent request does not fit the rest of the budget.
    refused = second_raw.bidi(frames.encode_frame_header(c.FRAME_HEADERS, 5000) + b"\x00" * 1500)
    second.run()
    assert second_aborts == [("stop", refused, c.H3_REQUEST_REJECTED), ("reset", refused, c.H3_REQUEST_REJECTED)]
    assert second.server.receive_budget_refusals == 1 and second.server.receive_buffered_total == 0
    # The first request completes: its bytes are no longer held, the budget is whole again.
    first_raw.send(stream_id, block[2000:])
    first.run()
    assert first.one("server", ev.SessionRequested).session_id == stream_id
    assert budget.used == 0 and first.server.receive_buffered_total == 0
    second_raw.bidi(frames.encode_frame_header(c.FRAME_HEADERS, 5000) + b"\x00" * 1500)
    second.run()
    assert len(second_aborts) == 2  # held this time: the budget had room
    assert 1500 <= budget.used == second.server.receive_buffered_total
    second.server.close()
    assert budget.used == 0


def test_without_shared_budgets_an_engine_is_bounded_by_its_own_config_alone() -> None:
    pair = Pair()
    pair.run()
    sid = pair.client.open_session(authority="localhost", path="/early")
    pair.run()
    raw = RawPeer(pair)
    early(raw, sid, 3000)
    pair.run()
    assert pair.server.receive_buffered_total == 3000
    assert pair.server.receive_budget_refusals == 0
    assert pair.server.budgets == SharedBudgets()
