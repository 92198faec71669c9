"""A stream's receive buffer (pywebtransport/stream_reader.py) costs about the bytes it holds
however the peer cuts them, without copying the long chunks of ordinary traffic.

Found by a hunt: each STREAM frame's bytes were kept as an object of their own until read,
so a peer sending 2-byte frames to an application that does not read made the 1 MiB stream
window cost ~22 MiB (~21 bytes of memory per byte held). Small chunks that arrive while
others wait unread are now gathered into one growable buffer.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from .test_stream_reader import RecordingPort, arrive, receiving

#: Memory the buffer may hold: this many bytes per byte held, plus ``SLACK``.
PER_BYTE = 2
SLACK = 8 * 1024


def _pattern(size: int) -> bytes:
    """``size`` bytes in which a reordered or dropped piece would show."""
    return bytes((i * 7 + i // 251) & 0xFF for i in range(size))


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_a_window_sent_in_two_byte_chunks_and_not_read_costs_about_what_it_holds() -> None:
    port = RecordingPort()
    stream = receiving(port)
    window = _pattern(256 * 1024)
    tracemalloc.start()
    try:
        before = _traced()
        for offset in range(0, len(window), 2):
            # A new object per piece, as the engine hands over one per STREAM frame.
            arrive(stream, window[offset:offset + 2])
        held = _traced() - before
    finally:
        tracemalloc.stop()
    assert held <= PER_BYTE * len(window) + SLACK, f"{held} bytes held for {len(window)} buffered"
    assert port.consumed == 0  # nothing read: no credit went back
    assert await stream.readexactly(len(window)) == window
    assert port.consumed == len(window)


async def test_long_chunks_are_kept_as_they_came_without_a_copy() -> None:
    stream = receiving(RecordingPort())
    first, second = _pattern(1200), _pattern(1500)[::-1]
    arrive(stream, first)
    arrive(stream, b"xy")  # a short one between: gathered onto nothing long
    arrive(stream, second, fin=True)
    chunks = list(stream._chunks)
    assert chunks[0] is first and chunks[-1] is second
    assert await stream.read() == first + b"xy" + second


async def test_a_chunk_arriving_while_nothing_waits_is_kept_as_it_came() -> None:
    stream = receiving(RecordingPort())
    small = bytes(_pattern(10))
    arrive(stream, small)
    assert list(stream._chunks) == [small] and stream._chunks[0] is small
    assert await stream.read(4) == small[:4]


async def test_bytes_read_from_gathered_chunks_do_not_change_when_more_arrive() -> None:
    stream = receiving(RecordingPort())
    for piece in (b"ab", b"cd", b"ef"):
        arrive(stream, piece)
    first = await stream.read(3)
    whole = await stream.read(10)  # all that is buffered, the gathered buffer itself emptied
    arrive(stream, b"gh")
    arrive(stream, b"ij")
    arrive(stream, b"kl", fin=True)
    assert (first, whole) == (b"abc", b"def")
    assert type(first) is bytes and type(whole) is bytes
    assert await stream.read() == b"ghijkl" and stream.at_eof


async def test_readuntil_waiting_on_a_partial_line_finds_a_separator_cut_into_small_chunks() -> None:
    port = RecordingPort()
    stream = receiving(port)
    arrive(stream, b"ab")
    arrive(stream, b"cd")  # gathered with the first
    line = stream.readuntil(b"\r\n")
    waiting_on = line.send(None)  # runs readuntil up to its wait for more bytes
    assert isinstance(waiting_on, asyncio.Future) and not waiting_on.done()
    for piece in (b"ef", b"\r", b"\n", b"gh"):  # gathered onto the buffer readuntil searches
        arrive(stream, piece)
    assert waiting_on.done()
    try:
        line.send(None)
    except StopIteration as done:
        assert done.value == b"abcdef\r\n"
    else:
        raise AssertionError("readuntil did not return once the separator came")
    arrive(stream, b"ij", fin=True)
    assert await stream.read() == b"ghij"
    assert port.consumed == 12


_READS = st.tuples(st.sampled_from(["read", "readexactly", "readuntil"]), st.integers(0, 40),
                   st.sampled_from([b"\n", b"ab", b"\n\n"]))


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(st.binary(min_size=1, max_size=700), max_size=30),
       steps=st.lists(st.tuples(st.integers(0, 4), _READS), max_size=30))
def test_bytes_come_out_whole_in_order_and_credited_once_however_cut_and_read(
        pieces: list[bytes], steps: list[tuple[int, tuple[str, int, bytes]]]) -> None:
    """Arrivals of any sizes (gathered or not) between reads of every kind, then FIN: the
    bytes read are the bytes sent, and the credit given back is what was read."""

    async def scenario() -> None:
        port = RecordingPort()
        stream = receiving(port)
        sent = b"".join(pieces)
        queue = list(pieces)
        out = bytearray()
        for arrivals, (kind, size, separator) in steps:
            for _ in range(arrivals):
                if queue:
                    arrive(stream, queue.pop(0))
            held = sent[len(out):len(out) + stream._buffered]  # what reads may take without waiting
            if kind == "read" and held and size:
                out += await stream.read(size)
            elif kind == "readexactly" and size <= len(held):
                out += await stream.readexactly(size)
            elif kind == "readuntil" and separator in held:
                out += await stream.readuntil(separator)
            assert port.consumed == len(out)
        for piece in queue:
            arrive(stream, piece)
        arrive(stream, b"", fin=True)
        out += await stream.read()
        assert bytes(out) == sent
        assert port.consumed == len(sent) and stream.at_eof

    asyncio.run(scenario())
