"""HTTP datagrams (RFC 9297 §2.1) and the bounded receive ring, compiled and pure."""

from __future__ import annotations

from collections import deque
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


@pytest.mark.parametrize("session_id", [-4, 1, 2, 3, 6, 2**62, 2**64 - 4, 2**70])
def test_session_id_must_be_a_client_bidi_stream_id(wire: SimpleNamespace, session_id: int) -> None:
    # A stream id is a varint (RFC 9000 §2.1), so the largest session id is 2**62-4.
    with pytest.raises(ValueError, match="^session_id "):
        wire.datagrams.encode_datagram(session_id, b"")
    with pytest.raises(ValueError, match="^session_id "):
        wire.datagrams.max_payload_size(session_id, 1200, 1200)


def test_largest_session_id_has_an_8_byte_quarter_stream_id(wire: SimpleNamespace) -> None:
    encoded = wire.datagrams.encode_datagram(2**62 - 4, b"x")
    assert encoded == (2**60 - 1 | 0xC000000000000000).to_bytes(8, "big") + b"x"
    assert wire.datagrams.decode_datagram(encoded) == (2**62 - 4, b"x")


@pytest.mark.parametrize("bad", [4.0, "4", None])
def test_session_id_that_is_not_an_integer_is_a_type_error(wire: SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError, match=f"^session_id must be an integer, not {type(bad).__name__}$"):
        wire.datagrams.encode_datagram(bad, b"")


@pytest.mark.parametrize("data", [b"", b"\x40", b"\x80\x00\x00", b"\xc0" + b"\0" * 6])
def test_truncated_quarter_stream_id_is_h3_datagram_error(wire: SimpleNamespace, data: bytes) -> None:
    with pytest.raises(DatagramError) as info:
        wire.datagrams.decode_datagram(data)
    assert info.value.error_code == c.H3_DATAGRAM_ERROR


def test_decode_accepts_bytearray_and_memoryview(wire: SimpleNamespace) -> None:
    for form in (bytearray(b"\x01xy"), memoryview(b"\x01xy"), memoryview(b"..\x01xy")[2:]):
        session_id, payload = wire.datagrams.decode_datagram(form)
        assert (session_id, payload) == (4, b"xy") and type(payload) is bytes


def test_decode_reads_a_non_contiguous_view_in_order(wire: SimpleNamespace) -> None:
    # Every other byte of this is 0x40 0x41 0x05: quarter stream id 0x41 in two bytes, payload 0x05.
    assert wire.datagrams.decode_datagram(memoryview(b"\x40\x00\x41\x01\x05")[::2]) == (0x41 * 4, b"\x05")


def test_encode_and_decode_name_a_non_bytes_argument(wire: SimpleNamespace) -> None:
    with pytest.raises(TypeError, match="^payload must be a bytes-like object, not str$"):
        wire.datagrams.encode_datagram(0, "text")
    with pytest.raises(TypeError, match="^payload must be a bytes-like object, not int$"):
        wire.datagrams.encode_datagram(0, 3)  # not three zero bytes
    with pytest.raises(TypeError, match="^data must be a bytes-like object, not str$"):
        wire.datagrams.decode_datagram("text")


def test_max_payload_size_formula(wire: SimpleNamespace) -> None:
    d = wire.datagrams
    assert d.max_payload_size(0, 65536, 1309) == 1309 - 3 - 1  # the path is the limit
    assert d.max_payload_size(0, 100, 1309) == 100 - 3 - 1  # the peer's parameter is the limit
    assert d.max_payload_size(256, 100, 1309) == 100 - 3 - 2  # a 2-byte quarter stream id
    assert d.max_payload_size(0, 0, 1309) == 0  # the peer takes no datagrams
    assert d.max_payload_size(0, 2, 1309) == 0  # never negative
    with pytest.raises(TypeError, match="^max_datagram_frame_size must be an integer, not float$"):
        d.max_payload_size(0, 1200.0, 1309)
    with pytest.raises(TypeError, match="^path_limit must be an integer, not float$"):
        d.max_payload_size(0, 1200, 1309.5)


def test_check_payload_size(wire: SimpleNamespace) -> None:
    wire.datagrams.check_payload_size(10, 10)
    with pytest.raises(DatagramTooLargeError) as info:
        wire.datagrams.check_payload_size(11, 10)
    assert (info.value.size, info.value.limit) == (11, 10)


def test_ring_is_fifo_and_bounded_by_count(wire: SimpleNamespace) -> None:
    ring = wire.datagrams.DatagramRing(max_count=3, max_bytes=1000)
    for i in range(5):
        ring.push(bytes([i]))
    assert (len(ring), ring.dropped) == (3, 2)
    assert [ring.pop() for _ in range(4)] == [b"\x02", b"\x03", b"\x04", None]


def test_ring_is_bounded_by_bytes_dropping_the_oldest(wire: SimpleNamespace) -> None:
    ring = wire.datagrams.DatagramRing(max_count=100, max_bytes=10)
    assert ring.push(b"aaaa") == 0 and ring.push(b"bbbb") == 0
    assert ring.push(b"cccc") == 1  # 12 bytes would not fit: the oldest goes
    assert (ring.pop(), ring.pop(), ring.pop()) == (b"bbbb", b"cccc", None)
    assert ring.push(b"d" * 10) == 0  # popping gave the bytes back: exactly max_bytes fits again


def test_a_payload_larger_than_the_ring_is_dropped_itself(wire: SimpleNamespace) -> None:
    ring = wire.datagrams.DatagramRing(max_count=10, max_bytes=5)
    ring.push(b"ok")
    assert ring.push(b"x" * 6) == 1
    assert (len(ring), ring.dropped, ring.pop()) == (1, 1, b"ok")


@pytest.mark.parametrize(("argument", "kwargs"), [("max_count", {"max_count": 0, "max_bytes": 1}),
                                                  ("max_bytes", {"max_count": 1, "max_bytes": -5})])
def test_ring_bounds_must_be_positive(wire: SimpleNamespace, argument: str, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=f"^{argument} must be at least 1, got {kwargs[argument]}$"):
        wire.datagrams.DatagramRing(**kwargs)


@pytest.mark.parametrize("bad", [2.5, 8.0, "8", None])
def test_ring_bounds_must_be_integers(wire: SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError, match="^max_count must be an integer"):
        wire.datagrams.DatagramRing(max_count=bad, max_bytes=8)
    with pytest.raises(TypeError, match="^max_bytes must be an integer"):
        wire.datagrams.DatagramRing(max_count=8, max_bytes=bad)


def test_ring_bounds_beyond_memory_are_no_bound(wire: SimpleNamespace) -> None:
    ring = wire.datagrams.DatagramRing(max_count=2**70, max_bytes=2**70)
    assert [ring.push(bytes(100)) for _ in range(1000)] == [0] * 1000
    assert len(ring) == 1000 and ring.dropped == 0


@pytest.mark.parametrize("payload", [bytearray(b"ab"), memoryview(b"ab"), "ab", None])
def test_ring_takes_only_bytes(wire: SimpleNamespace, payload: object) -> None:
    ring = wire.datagrams.DatagramRing(max_count=4, max_bytes=64)
    with pytest.raises(TypeError, match=f"^payload must be bytes, not {type(payload).__name__}$"):
        ring.push(payload)
    assert len(ring) == 0 and ring.dropped == 0


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), max_size=50), max_count=st.integers(1, 8), max_bytes=st.integers(1, 100))
def test_ring_never_exceeds_its_bounds(wire: SimpleNamespace, sizes: list[int], max_count: int, max_bytes: int) -> None:
    # A model of the contract: a payload above max_bytes is dropped itself; otherwise the oldest
    # go until the new one fits both bounds.
    ring = wire.datagrams.DatagramRing(max_count=max_count, max_bytes=max_bytes)
    model: deque[bytes] = deque()
    for pushed, size in enumerate(sizes, start=1):
        payload = bytes([pushed % 256]) * size
        ring.push(payload)
        if size <= max_bytes:
            while model and (len(model) >= max_count or sum(map(len, model)) + size > max_bytes):
                model.popleft()
            model.append(payload)
        assert len(ring) == len(model) <= max_count
        assert len(ring) + ring.dropped == pushed
        assert ring.nbytes == sum(map(len, model))  # what the engine charges to the receive budget
    assert [ring.pop() for _ in range(len(model) + 1)] == [*model, None]
    assert sum(map(len, model)) <= max_bytes


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
