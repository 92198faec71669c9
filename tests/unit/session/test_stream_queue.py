"""The incoming-stream queue of a session (StreamQueue in session/core.py): FIFO order,
indexing, and no reference kept to a stream once it was taken."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from pywebtransport.session.core import StreamQueue


class _Stream:
    """A stand-in for a stream object (the queue only stores and returns it)."""


def test_items_come_out_in_the_order_they_went_in() -> None:
    queue = StreamQueue()
    assert not queue and len(queue) == 0
    for n in range(1000):
        queue.append((n, _Stream()))  # type: ignore[arg-type]
        if n % 3 == 2:
            queue.popleft()
    taken = [queue.popleft()[0] for _ in range(len(queue))]
    assert taken == sorted(taken) and len(taken) == 1000 - 333
    assert not queue


def test_index_zero_is_the_oldest_item() -> None:
    queue = StreamQueue()
    queue.append((1, "a"))  # type: ignore[arg-type]
    queue.append((2, "b"))  # type: ignore[arg-type]
    queue.popleft()
    assert queue[0] == (2, "b") and len(queue) == 1
    with pytest.raises(IndexError):
        queue[1]


def test_popleft_on_an_empty_queue_raises_index_error() -> None:
    with pytest.raises(IndexError):
        StreamQueue().popleft()


def test_a_taken_stream_is_not_kept_alive_by_the_queue() -> None:
    queue = StreamQueue()
    streams: list[Any] = [_Stream() for _ in range(5)]
    for n, stream in enumerate(streams):
        queue.append((n, stream))
    first = weakref.ref(streams[0])
    queue.popleft()
    del streams[0]
    gc.collect()
    assert first() is None
    assert len(queue) == 4
