"""``readline()`` and ``readuntil(limit=...)`` at the limit behave as asyncio.StreamReader's
(the reference each test runs on the same bytes first):

- ``readuntil`` counts the bytes before the separator against ``limit``, not the separator;
- ``readline`` raises ValueError for a line over the limit and drops it, so the next call
  reads on (it used to raise LimitOverrunError on the same bytes for good).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.session.test_stream_reader import RecordingPort, arrive, receiving


def _reference(data: bytes, *, limit: int = 1 << 16, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_readuntil_counts_the_line_before_the_separator_against_the_limit() -> None:
    data = b"abcde\r\nrest"
    assert await _reference(data, limit=5).readuntil(b"\r\n") == b"abcde\r\n"
    with pytest.raises(asyncio.LimitOverrunError):
        await _reference(data, limit=4).readuntil(b"\r\n")

    stream = receiving(RecordingPort())
    arrive(stream, data, fin=True)
    with pytest.raises(asyncio.LimitOverrunError):
        await stream.readuntil(b"\r\n", limit=4)
    assert await stream.readuntil(b"\r\n", limit=5) == b"abcde\r\n"  # nothing was taken by the refusal
    assert await stream.read() == b"rest"


async def test_a_partial_line_may_wait_with_up_to_limit_bytes_before_its_separator() -> None:
    port = RecordingPort()
    port.config.read_timeout = 0.0  # a read that would wait raises TimeoutError at once instead
    stream = receiving(port)
    arrive(stream, b"abcde\r")  # 6 bytes, the separator's first byte last: still a line within 5
    with pytest.raises(TimeoutError):  # it waits for more (it used to refuse the line here)
        await stream.readuntil(b"\r\n", limit=5)
    arrive(stream, b"\nrest", fin=True)
    assert await stream.readuntil(b"\r\n", limit=5) == b"abcde\r\n"


async def test_readline_drops_a_line_over_the_limit_and_reads_on() -> None:
    data = b"x" * 70_000 + b"\nnext\n"
    reference = _reference(data)
    with pytest.raises(ValueError):
        await reference.readline()
    assert await reference.readline() == b"next\n"

    port = RecordingPort()
    stream = receiving(port)
    arrive(stream, data, fin=True)
    with pytest.raises(ValueError, match="exceeds the limit"):
        await stream.readline()
    assert await stream.readline() == b"next\n"
    assert await stream.readline() == b""
    assert port.consumed == len(data)  # the dropped line's credit went back too


async def test_readline_drops_what_it_holds_of_a_long_line_still_arriving() -> None:
    reference = _reference(b"x" * 70_000, eof=False)
    with pytest.raises(ValueError):
        await reference.readline()
    reference.feed_data(b"xx\nnext\n")
    reference.feed_eof()
    assert [await reference.readline(), await reference.readline()] == [b"xx\n", b"next\n"]

    port = RecordingPort()
    stream = receiving(port)
    arrive(stream, b"x" * 70_000)
    with pytest.raises(ValueError):
        await stream.readline()
    arrive(stream, b"xx\nnext\n", fin=True)
    assert [await stream.readline(), await stream.readline()] == [b"xx\n", b"next\n"]
    assert port.consumed == 70_000 + 8
