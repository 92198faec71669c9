"""HTTP datagrams (RFC 9297 §2.1) and the bounded receive ring, compiled and pure."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport import constants as c
from pywebtransport.exceptions import DatagramError, DatagramTooLargeError


@pytest.mark.parametrize(("session_id", "prefix"), [(0, b"\x00"), (4, b"\x01"), (252, b"\x3f"), (256, b"\x40\x40")])
def test_quarter_stream_id_prefix(wire: SimpleNamespace, session_id: int, prefix: bytes) -> None:
    encoded = wire.datagrams.encode_datagram(session_id, b"hi")
    assert encoded == prefix + b"hi"
    assert wire.datagrams.decode_datagram(encoded) == (session_id, b"hi")


@pytest.mark.parametrize("session_id", [-4, 1, 2, 3, 6])
def test_session_id_must_be_a_client_bidi_stream_id(wire: SimpleNamespace, session_id: int) -> None:
    with pytest.raises(ValueError):
        wire.datagrams.encode_datagram(session_id, b"")


@pytest.mark.parametrize("data", [b"", b"\x40", b"\x80\x00\x00", b"\xc0" + b"\0" * 6])
def test_truncated_quarter_stream_id_is_h3_datagram_error(wire: SimpleNamespace, data: bytes) -> None:
    with pytest.raises(DatagramError) as info:
        wire.datagrams.decode_datagram(data)
    assert info.value.error_code == c.H3_DATAGRAM_ERROR


def test_decode_accepts_bytearray_and_memoryview(wire: SimpleNamespace) -> None:
    assert wire.datagrams.decode_datagram(bytearray(b"\x01xy")) == (4, b"xy")
    assert wire.datagrams.decode_datagram(memoryview(b"\x01xy")) == (4, b"xy")


def test_max_payload_size_formula(wire: SimpleNamespace) -> None:
    d = wire.datagrams
    assert d.DATAGRAM_FRAME_OVERHEAD == 3
    assert d.max_payload_size(0, 65536, 1309) == 1309 - 3 - 1  # the path is the limit
    assert d.max_payload_size(0, 100, 1309) == 100 - 3 - 1  # the peer's parameter is the limit
    assert d.max_payload_size(256, 100, 1309) == 100 - 3 - 2  # a 2-byte quarter stream id
    assert d.max_payload_size(0, 0, 1309) == 0  # the peer takes no datagrams
    assert d.max_payload_size(0, 2, 1309) == 0  # never negative


def test_check_payload_size(wire: SimpleNamespace) -> None:
    wire.datagrams.check_payload_size(10, 10)
    with pytest.raises(DatagramTooLargeError) as info:
        wire.datagrams.check_payload_size(11, 10)
    assert (info.value.size, info.value.limit) == (11, 10)


def test_ring_is_fifo_and_bounded_by_count(wire: SimpleNamespace) -> None:
    ring = wire.datagrams.DatagramRing(max_count=3, max_bytes=1000)
    for i in range(5):
        ring.push(bytes([i]))
    assert (len(ring), ring.dropped, ring.nbytes) == (3, 2, 3)
    assert [ring.pop() for _ in range(4)] == [b"\x02", b"\x03", b"\x04", None]


def test_ring_is_bounded_by_bytes_dropping_the_oldest(wire: SimpleNamespace) -> None:
    ring = wire.datagrams.DatagramRing(max_count=100, max_bytes=10)
    assert ring.push(b"aaaa") == 0 and ring.push(b"bbbb") == 0
    assert ring.push(b"cccc") == 1  # 12 bytes would not fit: the oldest goes
    assert (ring.pop(), ring.pop(), ring.pop()) == (b"bbbb", b"cccc", None)
    assert ring.nbytes == 0


def test_a_payload_larger_than_the_ring_is_dropped_itself(wire: SimpleNamespace) -> None:
    ring = wire.datagrams.DatagramRing(max_count=10, max_bytes=5)
    ring.push(b"ok")
    assert ring.push(b"x" * 6) == 1
    assert (len(ring), ring.dropped, ring.pop()) == (1, 1, b"ok")


def test_ring_clear_and_properties(wire: SimpleNamespace) -> None:
    ring = wire.datagrams.DatagramRing(max_count=4, max_bytes=64)
    ring.push(b"a")
    ring.push(b"b")
    assert ring.clear() == 2 and len(ring) == 0 and ring.nbytes == 0 and ring.dropped == 0
    assert (ring.max_count, ring.max_bytes) == (4, 64)
    with pytest.raises(ValueError):
        wire.datagrams.DatagramRing(max_count=0, max_bytes=1)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), max_size=50), max_count=st.integers(1, 8), max_bytes=st.integers(1, 100))
def test_ring_never_exceeds_its_bounds(wire: SimpleNamespace, sizes: list[int], max_count: int, max_bytes: int) -> None:
    ring = wire.datagrams.DatagramRing(max_count=max_count, max_bytes=max_bytes)
    for pushed, size in enumerate(sizes, start=1):
        ring.push(b"d" * size)
        assert len(ring) <= max_count and ring.nbytes <= max_bytes
        assert len(ring) + ring.dropped == pushed


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=20))
def test_compiled_and_pure_decode_alike(both_wires, data: bytes) -> None:
    if both_wires is None:
        pytest.skip("PYWEBTRANSPORT_NO_EXTENSIONS is set: only the pure twin is present")

    def outcome(module: SimpleNamespace) -> object:
        try:
            return module.datagrams.decode_datagram(data)
        except DatagramError as exc:
            return ("error", exc.error_code)

    compiled, pure = both_wires
    assert outcome(compiled) == outcome(pure)
