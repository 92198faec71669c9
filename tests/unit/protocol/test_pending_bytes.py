"""PendingBytes: bytes waiting for session credit, taken from the front in grants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pywebtransport._protocol.streams import PendingBytes


@given(st.lists(st.binary(max_size=40), max_size=20), st.lists(st.integers(min_value=0, max_value=60), max_size=30))
def test_takes_return_the_appended_bytes_in_order(chunks: list[bytes], takes: list[int]) -> None:
    pending = PendingBytes()
    for chunk in chunks:
        pending.append(chunk)
    whole = b"".join(chunks)
    assert len(pending) == len(whole)
    out = b""
    for n in takes:
        piece = pending.take(n)
        assert len(piece) == min(n, len(whole) - len(out))
        out += piece
        assert len(pending) == len(whole) - len(out)
    out += pending.take(len(whole))
    assert out == whole and len(pending) == 0


def test_an_empty_buffer_holds_no_deque_and_gives_it_back_when_drained() -> None:
    pending = PendingBytes()
    assert pending._chunks is None and pending.take(10) == b""
    pending.append(b"abc")
    pending.append(b"defg")
    assert pending.take(5) == b"abcde" and pending._chunks is not None
    assert pending.take(5) == b"fg"
    assert pending._chunks is None and len(pending) == 0
    pending.append(b"xyz")
    assert pending.clear() == 3 and pending._chunks is None and pending.take(1) == b""
