"""The reconnecting client's pure parts: backoff math, session-end and error classification."""

from __future__ import annotations

import asyncio
import builtins
import math
import socket

import pytest

from pywebtransport.client import (
    ReconnectingClient,
    ReconnectPolicy,
    SessionEnd,
    WebTransportClient,
    backoff_delay,
    classify_session_end,
    is_retryable_error,
)
from pywebtransport.exceptions import (
    CertificateError,
    ClientError,
    ConfigurationError,
    ConnectionClosedError,
    HandshakeError,
    ProtocolError,
    SessionClosedError,
    SessionRejectedError,
    TimeoutError,
)
from pywebtransport.types import CloseCause


def _delay(retry: int, rand: float, **overrides: float) -> float:
    params = {"initial_delay": 1.0, "factor": 2.0, "max_delay": 30.0, "jitter": 0.5, **overrides}
    return backoff_delay(retry, rand=rand, **params)


# ---------------------------------------------------------------------- backoff_delay


def test_backoff_without_jitter_draw_grows_by_factor() -> None:
    assert [_delay(n, 0.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped_at_max_delay() -> None:
    assert _delay(6, 0.0) == 30.0
    assert _delay(60, 0.0) == 30.0


def test_backoff_huge_retry_number_does_not_overflow() -> None:
    assert _delay(10_000, 0.0, factor=10.0) == 30.0


def test_backoff_jitter_takes_off_up_to_its_fraction() -> None:
    assert _delay(3, 0.5) == pytest.approx(4.0 * (1 - 0.5 * 0.5))
    assert _delay(3, 1.0) == pytest.approx(2.0)
    assert _delay(3, 1.0, jitter=1.0) == 0.0
    assert _delay(3, 0.9, jitter=0.0) == 4.0


def test_backoff_never_exceeds_max_delay_whatever_the_draw() -> None:
    for retry in range(1, 40):
        for rand in (0.0, 0.25, 0.999999, 1.0):
            delay = _delay(retry, rand, max_delay=7.0)
            assert 0.0 <= delay <= 7.0


def test_backoff_factor_one_is_constant() -> None:
    assert {_delay(n, 0.0, factor=1.0, initial_delay=0.25) for n in range(1, 20)} == {0.25}


@pytest.mark.parametrize(("retry", "rand"), [(0, 0.5), (-1, 0.5), (1, -0.1), (1, 1.5)])
def test_backoff_rejects_bad_inputs(retry: int, rand: float) -> None:
    with pytest.raises(ValueError):
        _delay(retry, rand)


def test_policy_delay_draws_jitter_from_injected_source() -> None:
    policy = ReconnectPolicy(initial_delay=0.1, factor=3.0, max_delay=5.0, jitter=0.2)
    draws = iter([0.0, 0.5, 1.0])
    delays = [policy.delay(n, random=lambda: next(draws)) for n in (1, 2, 3)]
    assert delays == pytest.approx([0.1, 0.3 * 0.9, 0.9 * 0.8])


def test_policy_delay_with_real_random_stays_in_band() -> None:
    policy = ReconnectPolicy(initial_delay=2.0, factor=2.0, max_delay=10.0, jitter=0.5)
    for _ in range(200):
        assert 2.0 <= policy.delay(2) <= 4.0


@pytest.mark.parametrize("changes", [
    {"initial_delay": -1.0}, {"factor": 0.5}, {"max_delay": -0.1}, {"jitter": 1.5}, {"jitter": -0.1},
    {"max_attempts": 0}, {"max_attempts": True}, {"connect_timeout": 0.0}, {"initial_delay": float("nan")},
])
def test_policy_rejects_invalid_values(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        ReconnectPolicy(**changes)  # type: ignore[arg-type]


def test_policy_defaults() -> None:
    policy = ReconnectPolicy()
    assert (policy.initial_delay, policy.factor, policy.max_delay, policy.jitter) == (0.5, 2.0, 30.0, 0.5)
    assert policy.max_attempts is None and policy.connect_timeout is None


# ---------------------------------------------------------------------- classify_session_end


@pytest.mark.parametrize(("error_code", "cause", "going_away", "expected"), [
    (0, CloseCause.PEER_CLOSE, False, SessionEnd.PEER_CLOSED),
    (7, CloseCause.PEER_CLOSE, False, SessionEnd.PEER_ERROR),
    (0, CloseCause.IDLE_TIMEOUT, False, SessionEnd.CONNECTION_LOST),
    (0, CloseCause.PEER_CONNECTION_CLOSE, False, SessionEnd.CONNECTION_LOST),
    (0, CloseCause.CONNECTION_ERROR, True, SessionEnd.CONNECTION_LOST),
    (0, CloseCause.PEER_CLOSE, True, SessionEnd.GOING_AWAY),          # server drained, then closed the session
    (0, CloseCause.LOCAL_CLOSE, False, SessionEnd.LOCAL_CLOSED),      # session.close()
    (0, CloseCause.CONNECTION_CLOSED, False, SessionEnd.LOCAL_CLOSED),  # client.close()
    (0, CloseCause.LOCAL_CLOSE, True, SessionEnd.GOING_AWAY),         # we closed it because the server asked
    (0, CloseCause.SESSION_ERROR, False, SessionEnd.PEER_ERROR),
    (0, CloseCause.REJECTED, False, SessionEnd.PEER_ERROR),
    (0, CloseCause.PEER_RESET, False, SessionEnd.PEER_ERROR),        # the server reset the CONNECT stream
])
def test_classify_session_end(error_code: int, cause: CloseCause, going_away: bool, expected: SessionEnd) -> None:
    assert classify_session_end(error_code=error_code, cause=cause, going_away=going_away) is expected


def test_only_losses_and_server_errors_reconnect() -> None:
    assert {end for end in SessionEnd if end.reconnects} == {
        SessionEnd.CONNECTION_LOST, SessionEnd.GOING_AWAY, SessionEnd.PEER_ERROR}


# ---------------------------------------------------------------------- is_retryable_error


@pytest.mark.parametrize("status", [0, 429, 500, 502, 503, 504, 599])
def test_server_errors_and_429_are_retryable(status: int) -> None:
    assert is_retryable_error(SessionRejectedError("no", status_code=status))


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 408, 410, 499])
def test_other_refusals_are_fatal(status: int) -> None:
    assert not is_retryable_error(SessionRejectedError("no", status_code=status))


@pytest.mark.parametrize("exc", [
    TimeoutError("slow"), builtins.TimeoutError(), asyncio.TimeoutError(), OSError("unreachable"),
    ConnectionRefusedError(), HandshakeError("closed during handshake"), HandshakeError("x", error_code=0x0A),
    HandshakeError("overloaded", error_code=0x107),  # an HTTP/3 code in the TLS alerts' range: no alert
    ConnectionClosedError("gone"), SessionClosedError("closed before ready"),
])
def test_network_failures_are_retryable(exc: BaseException) -> None:
    assert is_retryable_error(exc)


def test_tls_alerts_and_certificate_errors_are_fatal() -> None:
    assert not is_retryable_error(HandshakeError("bad certificate", error_code=0x12A, tls_alert=0x2A))
    assert not is_retryable_error(CertificateError("pinned hash mismatch"))


def test_client_errors_are_retryable_only_when_caused_by_the_network() -> None:
    lookup = ClientError("cannot resolve")
    lookup.__cause__ = socket.gaierror("temporary failure")
    assert is_retryable_error(lookup)
    assert not is_retryable_error(ClientError("the client is closed"))


@pytest.mark.parametrize("exc", [ValueError("bug"), ProtocolError("bad frame"), RuntimeError()])
def test_unexpected_errors_are_fatal(exc: BaseException) -> None:
    assert not is_retryable_error(exc)


# ---------------------------------------------------------------------- the iterator object


async def test_sessions_returns_an_idle_reconnecting_client() -> None:
    policy = ReconnectPolicy(max_attempts=2)
    async with WebTransportClient() as client:
        sessions = client.sessions("https://127.0.0.1:1/x", policy=policy)
        assert isinstance(sessions, ReconnectingClient)
        assert sessions.policy is policy and sessions.url == "https://127.0.0.1:1/x"
        assert (sessions.attempts, sessions.reconnects, sessions.connected) == (0, 0, False)
        assert sessions.last_error is None and sessions.session is None


async def test_closed_client_raises_at_once_without_retrying() -> None:
    client = WebTransportClient()
    await client.close()
    assert client.is_closed
    sessions = client.sessions("https://127.0.0.1:1/x", policy=ReconnectPolicy(initial_delay=0.0))
    with pytest.raises(ClientError):
        await sessions.__anext__()
    assert sessions.attempts == 1
    assert isinstance(sessions.last_error, ClientError)
    with pytest.raises(StopAsyncIteration):  # finished for good
        await sessions.__anext__()


# ---------------------------------------------------------------------- non-finite backoff

_INF = float("inf")


@pytest.mark.parametrize("factor", [_INF, float("nan"), -_INF])
def test_policy_rejects_a_factor_that_is_not_a_finite_number(factor: float) -> None:
    with pytest.raises(ConfigurationError, match="factor must be a finite number >= 1") as info:
        ReconnectPolicy(initial_delay=0.0, factor=factor, max_delay=5.0)
    assert isinstance(info.value, ValueError)


def test_backoff_delay_rejects_an_infinite_factor_and_nan_parameters() -> None:
    with pytest.raises(ValueError, match="factor"):
        _delay(2, 0.0, factor=_INF)
    for name in ("initial_delay", "max_delay", "jitter"):
        with pytest.raises(ValueError, match=name):
            _delay(2, 0.0, **{name: float("nan")})


@pytest.mark.parametrize("retry", [1, 2, 1100, 10**6])
@pytest.mark.parametrize("factor", [2.0, 2, 10.0])
def test_a_zero_initial_delay_stays_zero_however_many_retries(retry: int, factor: float) -> None:
    assert _delay(retry, 0.5, initial_delay=0.0, factor=factor) == 0.0
    assert ReconnectPolicy(initial_delay=0.0, factor=factor, max_delay=5.0).delay(retry, random=lambda: 0.5) == 0.0


def test_an_infinite_max_delay_with_full_jitter_is_never_nan() -> None:
    for rand in (0.0, 0.5, 1.0):
        delay = _delay(2000, rand, max_delay=_INF, jitter=1.0)
        assert not math.isnan(delay)
    assert _delay(3, 1.0, max_delay=_INF, jitter=1.0) == 0.0
