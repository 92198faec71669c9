"""What every stack adapter provides, and the one benchmark app all stacks serve.

The app is the same on every stack so that only the stack differs. A bidirectional stream
starts with one command byte: ``E`` echoes every chunk until EOF; ``U`` counts bytes until
EOF and answers the count; ``D`` + 8-byte length sends that many bytes; ``C`` answers how
many sink datagrams arrived since the last ``C``; ``R`` joins the fan-out relay, where every
64-byte record a member sends is written to every other member. Datagrams starting with
``S`` are counted (sink), all others are echoed.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "CHUNK",
    "CMD_COUNT",
    "CMD_DOWNLOAD",
    "CMD_ECHO",
    "CMD_RELAY",
    "CMD_UPLOAD",
    "DATAGRAM_SINK",
    "RECORD_SIZE",
    "SEND_HIGH_WATER",
    "SEND_LOW_WATER",
    "AppStream",
    "BenchClient",
    "BenchServer",
    "Certificate",
    "DatagramCounter",
    "RelayHub",
    "Stack",
    "serve_stream",
]

logger = logging.getLogger(__name__)

CMD_ECHO = b"E"
CMD_UPLOAD = b"U"
CMD_DOWNLOAD = b"D"
CMD_COUNT = b"C"
CMD_RELAY = b"R"
DATAGRAM_SINK = b"S"
#: Relay messages are fixed-size records: sender's monotonic timestamp, sender id, padding.
RECORD_SIZE = 64
RECORD = struct.Struct("!dI")
#: Write size of bulk senders.
CHUNK = 64 * 1024
#: Send-buffer bound of every writer: above the high-water mark a writer waits until its
#: backlog falls to the low-water mark. The numbers are pywebtransport's defaults
#: (``stream_buffer_size`` and half of it), applied to the raw stacks too.
SEND_HIGH_WATER = 1 << 20
SEND_LOW_WATER = SEND_HIGH_WATER // 2


@dataclass(frozen=True)
class Certificate:
    """The self-signed certificate every server of a run uses."""

    cert_path: Path
    key_path: Path
    sha256: bytes


class AppStream(Protocol):
    """A bidirectional byte stream as the app sees it (asyncio.StreamReader-like reads)."""

    async def read(self, n: int) -> bytes: ...
    async def readexactly(self, n: int) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    async def finish(self) -> None: ...


class BenchServer(Protocol):
    """A running server of the benchmark app."""

    port: int

    async def close(self) -> None: ...


class BenchClient(Protocol):
    """One client connection (a session on ours) to the benchmark app."""

    async def open_stream(self) -> AppStream: ...
    def send_datagram(self, data: bytes) -> bool: ...
    async def receive_datagram(self, timeout: float) -> bytes: ...
    async def close(self) -> None: ...


class Stack(Protocol):
    """One implementation under test."""

    name: str

    def unavailable(self) -> str | None:
        """Why this stack cannot run here (a missing package or feature), or None."""
        ...

    async def start_server(self, cert: Certificate, hub: RelayHub) -> BenchServer: ...
    async def connect(self, port: int, cert: Certificate) -> BenchClient: ...


class DatagramCounter:
    """Sink datagrams received on one connection since the last ``C`` query."""

    def __init__(self) -> None:
        self.count = 0

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


class RelayHub:
    """Fan-out relay shared by all connections of one server: records go to every other member."""

    def __init__(self) -> None:
        self._members: dict[int, Callable[[bytes], None]] = {}
        self._next_id = 0
        self.forwarded = 0

    def join(self, send: Callable[[bytes], None]) -> int:
        member = self._next_id
        self._next_id += 1
        self._members[member] = send
        return member

    def leave(self, member: int) -> None:
        self._members.pop(member, None)

    def publish(self, member: int, record: bytes) -> None:
        for other, send in self._members.items():
            if other != member:
                send(record)
                self.forwarded += 1


async def serve_stream(stream: AppStream, counter: DatagramCounter, hub: RelayHub) -> None:
    """Run one incoming bidirectional stream of the benchmark app, whatever the stack."""
    try:
        command = await stream.readexactly(1)
    except Exception:  # closed before it said anything
        return
    if command == CMD_ECHO:
        while chunk := await stream.read(CHUNK):
            stream.write(chunk)
            await stream.drain()
    elif command == CMD_UPLOAD:
        total = 0
        while chunk := await stream.read(CHUNK):
            total += len(chunk)
        stream.write(str(total).encode())
    elif command == CMD_DOWNLOAD:
        remaining = int.from_bytes(await stream.readexactly(8), "big")
        payload = b"\xcd" * CHUNK
        while remaining > 0:
            piece = payload if remaining >= CHUNK else payload[:remaining]
            stream.write(piece)
            remaining -= len(piece)
            await stream.drain()
    elif command == CMD_COUNT:
        stream.write(str(counter.take()).encode())
    elif command == CMD_RELAY:
        member = hub.join(stream.write)
        try:
            while True:
                record = await stream.readexactly(RECORD_SIZE)
                hub.publish(member, record)
        except Exception:  # the member went away (EOF, reset, closed session): it leaves
            logger.debug("relay member %d left", member)
        finally:
            hub.leave(member)
    else:
        logger.warning("unknown benchmark command %r", command)
    await stream.finish()
