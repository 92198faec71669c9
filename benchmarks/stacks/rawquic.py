"""Raw QUIC as a benchmark floor: aioquic's or qh3's own asyncio API, no HTTP/3 at all.

qh3 is derived from aioquic and keeps its API (``asyncio.connect``/``serve``,
``QuicConnectionProtocol``, ``QuicConfiguration``, the events), so one adapter serves
both, given the package name. Streams carry the same app as every other stack.

Send buffers are bounded here, because the libraries' own ``StreamWriter.drain()``
returns at once and lets a writer queue without limit: a writer waits once more than
``SEND_HIGH_WATER`` bytes it wrote have not been sent yet (written minus the stream's
highest sent offset) and resumes at ``SEND_LOW_WATER``. Waiters are checked after every
transmit pass, which is when the backlog shrinks. pywebtransport bounds unacknowledged
bytes with the same numbers, so it holds at most a congestion window less than this.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import ssl
from collections.abc import Coroutine
from typing import Any

from benchmarks.stacks.base import (
    SEND_HIGH_WATER,
    SEND_LOW_WATER,
    AppStream,
    BenchClient,
    BenchServer,
    Certificate,
    DatagramCounter,
    RelayHub,
    serve_stream,
)

__all__ = ["RawQuicStack"]

logger = logging.getLogger(__name__)

ALPN = "bench"
#: pywebtransport's defaults, so that only the stacks differ: packet size, windows, datagrams.
MAX_DATAGRAM_SIZE = 1350
MAX_STREAM_DATA = 1 << 20
MAX_DATA = 16 << 20
MAX_DATAGRAM_FRAME_SIZE = 65536


class _RawStream:
    """A raw QUIC stream as an AppStream, with a bounded send backlog."""

    def __init__(self, protocol: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._protocol = protocol
        self._writer = writer
        self.stream_id: int = writer.get_extra_info("stream_id")
        self.written = 0
        self.read = reader.read
        self.readexactly = reader.readexactly

    def write(self, data: bytes) -> None:
        self._writer.write(data)
        self.written += len(data)

    async def drain(self) -> None:
        if self._protocol.backlog(self) > SEND_HIGH_WATER:
            await self._protocol.wait_backlog(self)

    async def finish(self) -> None:
        self._writer.write_eof()


def _protocol_class(base: type[Any], events: Any) -> type[Any]:
    """A QuicConnectionProtocol subclass (of this library) serving and using the app."""
    datagram_event = events.DatagramFrameReceived
    terminated_event = events.ConnectionTerminated

    class BenchProtocol(base):  # type: ignore[misc]
        hub: RelayHub | None = None

        def __init__(self, quic: Any, stream_handler: Any = None) -> None:
            super().__init__(quic, stream_handler=self._on_stream)
            self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()
            self.counter = DatagramCounter()
            self._waiters: dict[_RawStream, asyncio.Future[None]] = {}
            self._tasks: set[asyncio.Task[None]] = set()
            self._is_server = not quic.configuration.is_client

        # -- app (server side)
        def _on_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not self._is_server or self.hub is None:
                return
            stream = _RawStream(self, reader, writer)
            task = asyncio.ensure_future(self._serve(stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        async def _serve(self, stream: _RawStream) -> None:
            assert self.hub is not None
            with contextlib.suppress(Exception):
                await serve_stream(stream, self.counter, self.hub)

        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, datagram_event):
                if not self._is_server:
                    self.datagrams.put_nowait(event.data)
                elif event.data[:1] == b"S":
                    self.counter.count += 1
                else:
                    self._quic.send_datagram_frame(event.data)
                    self._transmit_soon()
            elif isinstance(event, terminated_event):
                for waiter in self._waiters.values():
                    if not waiter.done():
                        waiter.set_exception(ConnectionError("the QUIC connection closed"))
                self._waiters.clear()
                for task in self._tasks:
                    task.cancel()
            super().quic_event_received(event)

        # -- bounded send backlog
        def backlog(self, stream: _RawStream) -> int:
            """Bytes written to ``stream`` and not yet sent once."""
            # aioquic and qh3 expose no stream lookup; the stream table is read here only.
            quic_stream = self._quic._streams.get(stream.stream_id)  # noqa: SLF001
            if quic_stream is None:
                return 0
            return max(0, stream.written - int(quic_stream.sender.highest_offset))

        async def wait_backlog(self, stream: _RawStream) -> None:
            waiter = self._loop.create_future()
            self._waiters[stream] = waiter
            try:
                await waiter
            finally:
                self._waiters.pop(stream, None)

        def transmit(self) -> None:
            super().transmit()
            if self._waiters:
                for stream, waiter in list(self._waiters.items()):
                    if not waiter.done() and self.backlog(stream) <= SEND_LOW_WATER:
                        waiter.set_result(None)

        # -- client side
        async def open_stream(self) -> AppStream:
            reader, writer = await self.create_stream()
            return _RawStream(self, reader, writer)

        def send_datagram(self, data: bytes) -> bool:
            self._quic.send_datagram_frame(data)
            self._transmit_soon()
            return True

    return BenchProtocol


class _RawServer:
    def __init__(self, server: Any) -> None:
        self._server = server
        self.port = int(server._transport.get_extra_info("sockname")[1])  # noqa: SLF001 - no public accessor

    async def close(self) -> None:
        self._server.close()


class _RawClient:
    def __init__(self, owner: RawQuicStack, stack: contextlib.AsyncExitStack, protocol: Any) -> None:
        self._owner = owner
        self._stack = stack
        self._protocol = protocol

    async def open_stream(self) -> AppStream:
        stream: AppStream = await self._protocol.open_stream()
        return stream

    def send_datagram(self, data: bytes) -> bool:
        return bool(self._protocol.send_datagram(data))

    async def receive_datagram(self, timeout: float) -> bytes:
        return await asyncio.wait_for(self._protocol.datagrams.get(), timeout)

    async def close(self) -> None:
        """Send CONNECTION_CLOSE now; the library's own exit then waits out the draining period
        (RFC 9000 §10.2) in the background, as pywebtransport's close does not wait for it."""
        self._protocol.close()
        self._owner.close_in_background(self._stack.aclose())


class RawQuicStack:
    """Raw QUIC on the package ``package`` ("aioquic" or "qh3")."""

    def __init__(self, name: str, *, package: str) -> None:
        self.name = name
        self._package = package
        self._protocol: type[Any] | None = None
        self._closing: set[asyncio.Future[None]] = set()

    def close_in_background(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def wait_closed(self) -> None:
        """Wait for every background close to end."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def unavailable(self) -> str | None:
        if importlib.util.find_spec(self._package) is None:
            return f"{self._package} is not installed"
        return None

    def _modules(self) -> tuple[Any, Any, type[Any]]:
        asyncio_api = importlib.import_module(f"{self._package}.asyncio")
        configuration = importlib.import_module(f"{self._package}.quic.configuration")
        if self._protocol is None:
            events = importlib.import_module(f"{self._package}.quic.events")
            self._protocol = _protocol_class(asyncio_api.QuicConnectionProtocol, events)
        return asyncio_api, configuration.QuicConfiguration, self._protocol

    def _configuration(self, config_class: type[Any], *, is_client: bool) -> Any:
        options: dict[str, Any] = {
            "is_client": is_client, "alpn_protocols": [ALPN], "max_datagram_size": MAX_DATAGRAM_SIZE,
            "max_stream_data": MAX_STREAM_DATA, "max_data": MAX_DATA,
            "max_datagram_frame_size": MAX_DATAGRAM_FRAME_SIZE, "idle_timeout": 60.0,
        }
        fields = getattr(config_class, "__dataclass_fields__", {})
        if "congestion_control_algorithm" in fields:
            options["congestion_control_algorithm"] = "reno"  # as pywebtransport's default; qh3 has cubic only
        if "probe_datagram_size" in fields:
            options["probe_datagram_size"] = False  # no path MTU probing: aioquic and ours do none
        return config_class(**options)

    async def start_server(self, cert: Certificate, hub: RelayHub) -> BenchServer:
        asyncio_api, config_class, protocol = self._modules()
        configuration = self._configuration(config_class, is_client=False)
        configuration.load_cert_chain(str(cert.cert_path), str(cert.key_path))

        def create_protocol(quic: Any, stream_handler: Any = None, **_: Any) -> Any:
            instance = protocol(quic)
            instance.hub = hub
            return instance

        server = await asyncio_api.serve("127.0.0.1", 0, configuration=configuration,
                                         create_protocol=create_protocol)
        return _RawServer(server)

    async def connect(self, port: int, cert: Certificate) -> BenchClient:
        asyncio_api, config_class, protocol = self._modules()
        configuration = self._configuration(config_class, is_client=True)
        configuration.verify_mode = ssl.CERT_NONE  # as ours pinning by hash: no chain verification
        configuration.server_name = "localhost"
        stack = contextlib.AsyncExitStack()
        try:
            instance = await stack.enter_async_context(
                asyncio_api.connect("127.0.0.1", port, configuration=configuration, create_protocol=protocol))
        except BaseException:
            await stack.aclose()
            raise
        return _RawClient(self, stack, instance)
