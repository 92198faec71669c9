"""Flow-control accounting (WebTransport draft-15 §5.4).

``flow`` is one plain module for both _wire variants, so these tests run once.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport import constants as c
from pywebtransport._wire import flow
from pywebtransport.exceptions import FlowControlError


def test_public_names_are_what_the_engine_uses() -> None:
    assert sorted(flow.__all__) == ["ReceiveWindow", "SendCredit"]
    public = {name for name in dir(flow.SendCredit) if not name.startswith("_")}
    assert public == {"available", "blocked_at", "limit", "release", "try_consume", "update_limit"}
    public = {name for name in dir(flow.ReceiveWindow) if not name.startswith("_")}
    assert public == {"grant", "limit", "on_consume", "on_receive", "received"}


def test_send_credit_grants_what_is_left() -> None:
    credit = flow.SendCredit(100)
    assert (credit.limit, credit.available) == (100, 100)
    assert credit.try_consume(60) == 60
    assert credit.available == 40
    assert credit.try_consume(100) == 40
    assert credit.try_consume(1) == 0 and credit.available == 0


def test_send_credit_limits_only_grow() -> None:
    credit = flow.SendCredit(10)
    assert credit.update_limit(5) is False and credit.limit == 10
    assert credit.update_limit(10) is False
    assert credit.update_limit(11) is True and credit.limit == 11


def test_blocked_is_reported_once_per_limit() -> None:
    credit = flow.SendCredit(3)
    assert credit.blocked_at() is None  # credit left: not blocked
    credit.try_consume(3)
    assert credit.blocked_at() == 3
    assert credit.blocked_at() is None  # already reported for this limit
    credit.update_limit(5)
    assert credit.blocked_at() is None
    credit.try_consume(2)
    assert credit.blocked_at() == 5


def test_zero_limit_is_blocked_from_the_start() -> None:
    credit = flow.SendCredit(0)
    assert credit.try_consume(1) == 0
    assert credit.blocked_at() == 0


def test_receive_window_enforces_the_limit_with_wt_flow_control_error() -> None:
    window = flow.ReceiveWindow(100)
    window.on_receive(100)  # exactly the limit is fine
    with pytest.raises(FlowControlError) as info:
        window.on_receive(1)
    assert info.value.error_code == c.WT_FLOW_CONTROL_ERROR
    assert "101" in str(info.value) and "100" in str(info.value)
    assert window.received == 100


def test_auto_extend_advertises_once_half_the_window_is_consumed() -> None:
    window = flow.ReceiveWindow(100)
    window.on_receive(100)
    assert window.on_consume(50) is None  # 50 left: exactly half, not less
    assert window.on_consume(1) == 151  # 49 left < 50: extend to consumed + window
    assert window.limit == 151
    assert window.on_consume(1) is None


def test_without_auto_extend_only_grant_raises_the_limit() -> None:
    window = flow.ReceiveWindow(10, auto_extend=False)
    window.on_receive(10)
    assert window.on_consume(10) is None and window.limit == 10
    assert window.grant(5) is None
    assert window.grant(30) == 30 and window.limit == 30


def test_consuming_more_than_received_is_a_local_error() -> None:
    window = flow.ReceiveWindow(10)
    window.on_receive(3)
    with pytest.raises(ValueError, match="only 3 received"):
        window.on_consume(4)
    assert window.on_consume(3) is None  # the refused call consumed nothing


@pytest.mark.parametrize("bad", [-1, 2**62, 2**70])
def test_out_of_range_values_are_rejected_naming_the_argument(bad: int) -> None:
    message = rf"must be in \[0, 2\*\*62-1\], got {bad}$"
    with pytest.raises(ValueError, match=f"^limit {message}"):
        flow.SendCredit(bad)
    with pytest.raises(ValueError, match=f"^initial {message}"):
        flow.ReceiveWindow(bad)
    with pytest.raises(ValueError, match=f"^limit {message}"):
        flow.SendCredit(1).update_limit(bad)
    with pytest.raises(ValueError, match=f"^amount {message}"):
        flow.SendCredit(1).try_consume(bad)
    with pytest.raises(ValueError, match=f"^amount {message}"):
        flow.ReceiveWindow(1).on_receive(bad)


@pytest.mark.parametrize("bad", [1.0, "1", None])
def test_non_integer_values_are_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="^limit must be an integer"):
        flow.SendCredit(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^amount must be an integer"):
        flow.ReceiveWindow(10).on_receive(bad)  # type: ignore[arg-type]


def test_bool_counts_as_its_integer_value() -> None:
    credit = flow.SendCredit(True)
    assert credit.limit == 1 and type(credit.limit) is int


OPS = st.lists(st.tuples(st.sampled_from(["try", "update", "blocked", "recv", "use", "grant"]),
                         st.integers(0, 300)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(initial=st.integers(0, 500), ops=OPS)
def test_invariants_hold_for_any_operation_sequence(initial: int, ops: list[tuple[str, int]]) -> None:
    send = flow.SendCredit(initial)
    recv = flow.ReceiveWindow(initial)
    used = received = consumed = 0
    for op, n in ops:
        if op == "try":
            granted = send.try_consume(n)
            assert 0 <= granted <= n
            used += granted
        elif op == "update":
            before = send.limit
            assert send.update_limit(n) is (n > before)
        elif op == "blocked":
            reported = send.blocked_at()
            assert reported is None or (reported == send.limit and send.available == 0)
        elif op == "recv":
            try:
                recv.on_receive(n)
                received += n
            except FlowControlError:
                assert received + n > recv.limit
        elif op == "use":
            try:
                recv.on_consume(n)
                consumed += n
            except ValueError:
                assert consumed + n > received
        else:
            before = recv.limit
            assert recv.grant(n) == (n if n > before else None)
        assert send.available == send.limit - used >= 0
        assert consumed <= received == recv.received <= recv.limit
