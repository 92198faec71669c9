"""Application error codes <-> HTTP/3 error space (draft-ietf-webtrans-http3 §4.4).

h = 0x52e4a40fa8db + n + n // 0x1e; the reverse map refuses codes outside the range and the
reserved 0x1f * N + 0x21 codepoints (RFC 9114 §8.1) that the forward map steps over.
``error_codes`` is one plain module for both _wire variants, so these tests run once.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pywebtransport import constants as c
from pywebtransport._wire import error_codes

FIRST = 0x52E4A40FA8DB
LAST = 0x52E5AC983162

u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)


def reserved(n: int) -> int:
    return 0x1F * n + 0x21


def is_reserved(code: int) -> bool:
    """RFC 9114 §8.1: the 0x1f * N + 0x21 codepoints."""
    return code >= 0x21 and (code - 0x21) % 0x1F == 0


# First reserved codepoint at or above FIRST, and the last one at or below LAST.
FIRST_RESERVED_N = -(-(FIRST - 0x21) // 0x1F)
LAST_RESERVED_N = (LAST - 0x21) // 0x1F


def test_public_names_are_what_the_engine_uses() -> None:
    assert sorted(error_codes.__all__) == ["app_code_to_http", "http_code_to_app"]


def test_range_constants_match_the_draft() -> None:
    assert (c.WT_APP_ERROR_FIRST, c.WT_APP_ERROR_LAST) == (FIRST, LAST)


@pytest.mark.parametrize(
    ("app", "http"),
    [
        (0, FIRST),
        (1, FIRST + 1),
        (0x1D, FIRST + 0x1D),
        (0x1E, FIRST + 0x1F),  # FIRST + 0x1e is reserved and skipped
        (0x3B, FIRST + 0x3C),
        (0x3C, FIRST + 0x3E),
        (0xFFFFFFFF, LAST),
    ],
)
def test_boundaries_map_both_ways(app: int, http: int) -> None:
    assert error_codes.app_code_to_http(app) == http
    assert error_codes.http_code_to_app(http) == app
    assert not is_reserved(http)


def test_codepoints_skipped_by_the_mapping_are_the_reserved_ones() -> None:
    assert is_reserved(FIRST - 1)
    assert is_reserved(FIRST + 0x1E)
    assert error_codes.http_code_to_app(FIRST + 0x1E) is None
    assert reserved(FIRST_RESERVED_N) == FIRST + 0x1E


@pytest.mark.parametrize("n", [FIRST_RESERVED_N, FIRST_RESERVED_N + 1, FIRST_RESERVED_N + 12345, LAST_RESERVED_N])
def test_reserved_codes_inside_the_range_map_to_none(n: int) -> None:
    code = reserved(n)
    assert FIRST <= code <= LAST
    assert is_reserved(code)
    assert error_codes.http_code_to_app(code) is None


@pytest.mark.parametrize("code", [FIRST - 1, FIRST - 2, LAST + 1, LAST + 2, 0, 0x100, c.WT_SESSION_GONE, -1,
                                  2**62 - 1, 2**64, 2**100, -(2**100)])
def test_codes_outside_the_range_map_to_none(code: int) -> None:
    assert error_codes.http_code_to_app(code) is None


@pytest.mark.parametrize("code", [-1, 0x100000000, 2**64, -(2**64)])
def test_app_code_outside_u32_is_a_value_error(code: int) -> None:
    with pytest.raises(ValueError, match=rf"^code must be in \[0, 0xffffffff\], got {code}$"):
        error_codes.app_code_to_http(code)


@pytest.mark.parametrize("bad", [1.0, "1", None])
def test_non_integer_codes_are_a_type_error(bad: object) -> None:
    for call in (error_codes.app_code_to_http, error_codes.http_code_to_app):
        with pytest.raises(TypeError, match=f"^code must be an integer, not {type(bad).__name__}$"):
            call(bad)


def test_a_window_of_http_codes_maps_onto_consecutive_app_codes() -> None:
    apps = [error_codes.http_code_to_app(code) for code in range(FIRST - 3, FIRST + 200)]
    mapped = [app for app in apps if app is not None]
    assert mapped == list(range(len(mapped)))
    assert apps.count(None) == 3 + 6  # three below FIRST, then one reserved per 0x1f codes


@given(code=u32)
def test_property_round_trip_every_u32(code: int) -> None:
    http = error_codes.app_code_to_http(code)
    assert http == FIRST + code + code // 0x1E
    assert FIRST <= http <= LAST
    assert not is_reserved(http)
    assert error_codes.http_code_to_app(http) == code


@given(code=st.integers(min_value=0, max_value=0xFFFFFFFE))
def test_property_mapping_is_strictly_increasing(code: int) -> None:
    assert error_codes.app_code_to_http(code + 1) > error_codes.app_code_to_http(code)


@given(n=st.integers(min_value=FIRST_RESERVED_N, max_value=LAST_RESERVED_N))
def test_property_every_reserved_code_in_range_maps_to_none(n: int) -> None:
    assert error_codes.http_code_to_app(reserved(n)) is None
