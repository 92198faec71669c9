"""A fake event loop, UDP socket and connection for driving ``UdpEndpoint`` step by step.

The loop records what the endpoint asks of it (readers, ``call_soon``, ``call_later``) and
the test decides when each runs, so "one wake-up" is exactly one reader callback plus the
callbacks it queued.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from pywebtransport._io import UdpEndpoint
from pywebtransport._io.endpoint import NewConnectionFactory, RefusalBuilder
from pywebtransport._io.modes import UdpMode
from pywebtransport.types import Address

FAKE_FD = 1000
SERVER_ADDR: Address = ("127.0.0.1", 4433)


class FakeHandle:
    """What ``call_soon``/``call_later`` return: runs once unless cancelled."""

    def __init__(self, callback: Callable[..., object], args: tuple[Any, ...], delay: float | None = None) -> None:
        self.callback = callback
        self.args = args
        self.delay = delay
        self.cancelled = False
        self.ran = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Records the endpoint's requests; ``wake_up`` plays one loop iteration for a reader."""

    def __init__(self) -> None:
        self.readers: dict[int, Callable[[], object]] = {}
        self.soon: deque[FakeHandle] = deque()
        self.timers: list[FakeHandle] = []

    def add_reader(self, fd: int, callback: Callable[[], object]) -> None:
        self.readers[fd] = callback

    def remove_reader(self, fd: int) -> bool:
        return self.readers.pop(fd, None) is not None

    def call_soon(self, callback: Callable[..., object], *args: Any) -> FakeHandle:
        handle = FakeHandle(callback, args)
        self.soon.append(handle)
        return handle

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> FakeHandle:
        handle = FakeHandle(callback, args, delay)
        self.timers.append(handle)
        return handle

    def run_soon(self) -> int:
        """Run the queued ``call_soon`` callbacks (those queued meanwhile wait): how many ran."""
        ran = 0
        for _ in range(len(self.soon)):
            handle = self.soon.popleft()
            if not handle.cancelled:
                handle.callback(*handle.args)
                ran += 1
        return ran

    def wake_up(self, fd: int = FAKE_FD) -> int:
        """The socket became readable: call its reader, then what that queued."""
        self.readers[fd]()
        return self.run_soon()

    def fire(self, timer: FakeHandle) -> None:
        """The timer's delay has passed: run it (a cancelled timer must never be fired)."""
        assert not timer.cancelled and not timer.ran
        timer.ran = True
        timer.callback(*timer.args)

    def live_timers(self) -> list[FakeHandle]:
        """Timers armed and neither cancelled nor run yet."""
        return [t for t in self.timers if not t.cancelled and not t.ran]


class FakeSocket:
    """A non-blocking UDP socket: ``inbox`` is what the kernel holds, ``sent`` what went out."""

    family = socket.AF_INET

    def __init__(self) -> None:
        self.inbox: deque[tuple[bytes, Address]] = deque()
        self.sent: list[tuple[bytes, Address]] = []
        self.closed = False

    def fileno(self) -> int:
        return FAKE_FD

    def getsockname(self) -> Address:
        return SERVER_ADDR

    def recvfrom(self, size: int) -> tuple[bytes, Address]:
        if not self.inbox:
            raise BlockingIOError
        data, addr = self.inbox.popleft()
        return data[:size], addr

    def sendto(self, data: bytes, addr: Address) -> int:
        self.sent.append((data, addr))
        return len(data)

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    """A ConnectionDriver that records calls; ``outbox`` is sent at its next transmit."""

    def __init__(self, name: str = "conn") -> None:
        self.name = name
        self.received: list[tuple[bytes, Address]] = []
        self.outbox: list[tuple[bytes, Address]] = []
        self.transmits = 0
        self.timer: float | None = None
        self.timer_calls: list[float] = []
        self.on_datagram: Callable[[bytes, Address], None] | None = None

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        self.received.append((data, addr))
        if self.on_datagram is not None:
            self.on_datagram(data, addr)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        self.transmits += 1
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return self.timer

    def handle_timer(self, now: float) -> None:
        self.timer_calls.append(now)

    def __repr__(self) -> str:
        return f"FakeConnection({self.name})"


class Factory:
    """A ``new_connection`` callback that records its calls and hands out FakeConnections."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.calls: list[tuple[bytes, Address]] = []
        self.made: list[FakeConnection] = []
        self.refuse = refuse

    def __call__(self, original_dcid: bytes, addr: Address) -> FakeConnection | None:
        self.calls.append((original_dcid, addr))
        if self.refuse:
            return None
        connection = FakeConnection(f"#{len(self.made)}")
        self.made.append(connection)
        return connection


def make_endpoint(factory: NewConnectionFactory | None = None, *,
                  refuse: RefusalBuilder | None = None) -> tuple[UdpEndpoint, FakeLoop, FakeSocket]:
    """An endpoint reading a FakeSocket in ``reader`` mode on a FakeLoop."""
    loop = FakeLoop()
    sock = FakeSocket()
    endpoint = UdpEndpoint(new_connection=factory, loop=cast(asyncio.AbstractEventLoop, loop), refuse=refuse)
    endpoint.attach_socket(cast(socket.socket, sock), mode=UdpMode.READER)
    return endpoint, loop, sock
