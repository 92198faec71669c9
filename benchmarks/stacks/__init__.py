"""Benchmark stacks: one adapter per implementation, all serving the same app (see ``base``)."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.stacks.base import Stack
from benchmarks.stacks.ours import OursStack
from benchmarks.stacks.rawquic import RawQuicStack
from benchmarks.stacks.websocket import WebSocketStack

__all__ = ["STACKS", "Stack"]

#: Every stack by its command-line name, in report order.
STACKS: dict[str, Callable[[], Stack]] = {
    "ours-aioquic": lambda: OursStack("ours-aioquic"),
    "ours-qh3": lambda: OursStack("ours-qh3", backend="qh3"),
    "raw-aioquic": lambda: RawQuicStack("raw-aioquic", package="aioquic"),
    "raw-qh3": lambda: RawQuicStack("raw-qh3", package="qh3"),
    "websockets": lambda: WebSocketStack("websockets"),
}
