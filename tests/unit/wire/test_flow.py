"""Flow-control accounting (WebTransport draft §5.4), compiled and pure."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport import constants as c
from pywebtransport.exceptions import FlowControlError


def test_send_credit_counts_and_refuses_overrun(wire: SimpleNamespace) -> None:
    credit = wire.flow.SendCredit(100)
    assert (credit.limit, credit.used, credit.available) == (100, 0, 100)
    credit.consume(60)
    assert credit.available == 40
    with pytest.raises(ValueError, match="only 40"):
        credit.consume(41)
    assert credit.used == 60  # unchanged by the refused call
    assert credit.try_consume(100) == 40
    assert credit.try_consume(1) == 0 and credit.available == 0


def test_send_credit_limits_only_grow(wire: SimpleNamespace) -> None:
    credit = wire.flow.SendCredit(10)
    assert credit.update_limit(5) is False and credit.limit == 10
    assert credit.update_limit(10) is False
    assert credit.update_limit(11) is True and credit.limit == 11


def test_blocked_is_reported_once_per_limit(wire: SimpleNamespace) -> None:
    credit = wire.flow.SendCredit(3)
    assert credit.blocked_at() is None  # credit left: not blocked
    credit.consume(3)
    assert credit.blocked_at() == 3
    assert credit.blocked_at() is None  # already reported for this limit
    credit.update_limit(5)
    assert credit.blocked_at() is None
    credit.consume(2)
    assert credit.blocked_at() == 5


def test_zero_limit_is_blocked_from_the_start(wire: SimpleNamespace) -> None:
    credit = wire.flow.SendCredit(0)
    assert credit.try_consume(1) == 0
    assert credit.blocked_at() == 0


def test_receive_window_enforces_the_limit_with_wt_flow_control_error(wire: SimpleNamespace) -> None:
    window = wire.flow.ReceiveWindow(100)
    window.on_receive(100)  # exactly the limit is fine
    with pytest.raises(FlowControlError) as info:
        window.on_receive(1)
    assert info.value.error_code == c.WT_FLOW_CONTROL_ERROR
    assert "101" in str(info.value) and "100" in str(info.value)
    assert window.received == 100


def test_auto_extend_advertises_once_half_the_window_is_consumed(wire: SimpleNamespace) -> None:
    window = wire.flow.ReceiveWindow(100)
    window.on_receive(100)
    assert window.on_consume(50) is None  # 50 left: exactly half, not less
    assert window.on_consume(1) == 151  # 49 left < 50: extend to consumed + window
    assert window.limit == 151
    assert window.on_consume(1) is None


def test_without_auto_extend_only_grant_raises_the_limit(wire: SimpleNamespace) -> None:
    window = wire.flow.ReceiveWindow(10, auto_extend=False)
    assert window.auto_extend is False
    window.on_receive(10)
    assert window.on_consume(10) is None and window.limit == 10
    assert window.grant(5) is None
    assert window.grant(30) == 30 and window.limit == 30


def test_consuming_more_than_received_is_a_local_error(wire: SimpleNamespace) -> None:
    window = wire.flow.ReceiveWindow(10)
    window.on_receive(3)
    with pytest.raises(ValueError):
        window.on_consume(4)
    assert window.consumed == 0


@pytest.mark.parametrize("bad", [-1, 2**62])
def test_out_of_range_values_are_rejected(wire: SimpleNamespace, bad: int) -> None:
    with pytest.raises(ValueError):
        wire.flow.SendCredit(bad)
    with pytest.raises(ValueError):
        wire.flow.ReceiveWindow(bad)
    with pytest.raises(ValueError):
        wire.flow.SendCredit(1).update_limit(bad)
    with pytest.raises(ValueError):
        wire.flow.ReceiveWindow(1).on_receive(bad)


OPS = st.lists(st.tuples(st.sampled_from(["consume", "try", "update", "blocked", "recv", "use", "grant"]),
                         st.integers(0, 300)), max_size=60)


def _play(flow: object, initial: int, ops: list[tuple[str, int]]) -> list[object]:
    send = flow.SendCredit(initial)  # type: ignore[attr-defined]
    recv = flow.ReceiveWindow(initial)  # type: ignore[attr-defined]
    out: list[object] = []
    for op, n in ops:
        calls = {"consume": send.consume, "try": send.try_consume, "update": send.update_limit,
                 "blocked": lambda _n: send.blocked_at(), "recv": recv.on_receive, "use": recv.on_consume,
                 "grant": recv.grant}
        try:
            out.append(calls[op](n))
        except Exception as exc:  # noqa: BLE001 - the exception type is part of the comparison
            out.append(type(exc).__name__)
        assert send.used <= send.limit
        assert recv.consumed <= recv.received <= recv.limit
        out.append((send.limit, send.used, recv.limit, recv.received, recv.consumed))
    return out


@settings(max_examples=200, deadline=None)
@given(initial=st.integers(0, 500), ops=OPS)
def test_compiled_and_pure_agree_on_any_operation_sequence(both_wires, initial: int, ops) -> None:
    if both_wires is None:
        pytest.skip("PYWEBTRANSPORT_NO_EXTENSIONS is set: only the pure twin is present")
    compiled, pure = both_wires
    assert _play(compiled.flow, initial, ops) == _play(pure.flow, initial, ops)


@settings(max_examples=200, deadline=None)
@given(initial=st.integers(0, 500), ops=OPS)
def test_invariants_hold_for_any_operation_sequence(wire: SimpleNamespace, initial: int, ops) -> None:
    _play(wire.flow, initial, ops)  # _play asserts the invariants after every step
