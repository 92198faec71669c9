"""``SendCredit.release``: credit counted for bytes that a reset's final size leaves out
(RFC 9000 §4.5) is given back, so the sender's count matches the receiver's (draft-15 §5.4)."""

from __future__ import annotations

import pytest

from pywebtransport._wire import flow


def test_released_credit_can_be_used_again() -> None:
    credit = flow.SendCredit(100)
    assert credit.try_consume(100) == 100 and credit.available == 0
    credit.release(30)
    assert credit.available == 30 and credit.limit == 100
    assert credit.try_consume(50) == 30


def test_releasing_more_than_was_used_is_refused_and_changes_nothing() -> None:
    credit = flow.SendCredit(100)
    credit.try_consume(10)
    with pytest.raises(ValueError, match="only 10 used"):
        credit.release(11)
    with pytest.raises(ValueError):
        credit.release(-1)
    assert credit.available == 90


def test_a_blocked_sender_reports_the_same_limit_once_even_after_a_release() -> None:
    credit = flow.SendCredit(10)
    credit.try_consume(10)
    assert credit.blocked_at() == 10
    credit.release(5)
    credit.try_consume(5)
    assert credit.blocked_at() is None  # this limit was reported already
