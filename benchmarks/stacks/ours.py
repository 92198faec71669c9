"""pywebtransport as a benchmark stack: WebTransport sessions over HTTP/3 on its QUIC backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from benchmarks.stacks.base import (
    AppStream,
    BenchClient,
    BenchServer,
    Certificate,
    DatagramCounter,
    RelayHub,
    serve_stream,
)

__all__ = ["OursStack", "OursStream", "serve_session_streams"]

logger = logging.getLogger(__name__)

PATH = "/bench"


class OursStream:
    """A WebTransportStream seen as an AppStream."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.read = stream.read
        self.readexactly = stream.readexactly
        self.write = stream.write
        self.drain = stream.drain

    async def finish(self) -> None:
        await self._stream.close()


class _OursServer:
    def __init__(self, server: Any) -> None:
        self._server = server
        self.port = int(server.local_address[1])

    async def close(self) -> None:
        await self._server.close()


class _OursClient:
    def __init__(self, client: Any, session: Any) -> None:
        self._client = client
        self._session = session

    async def open_stream(self) -> AppStream:
        return OursStream(await self._session.create_bidirectional_stream())

    def send_datagram(self, data: bytes) -> bool:
        return bool(self._session.datagrams.send_nowait(data))

    async def receive_datagram(self, timeout: float) -> bytes:
        return bytes(await self._session.datagrams.receive(timeout=timeout))

    async def close(self) -> None:
        await self._session.close()
        await self._client.close()


async def serve_session_streams(session: Any, counter: DatagramCounter, hub: RelayHub,
                                tasks: set[asyncio.Task[None]]) -> None:
    """Serve the benchmark app on every stream the peer opens until the session ends
    (``session.serve_streams``: a task per stream, started as it arrives), then cancel
    ``tasks`` (the session's other work)."""

    async def one(stream: Any) -> None:
        with contextlib.suppress(Exception):
            await serve_stream(OursStream(stream), counter, hub)

    try:
        await session.serve_streams(one)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class OursStack:
    """pywebtransport, client and server, on the QUIC backend named by ``backend``.

    ``backend`` None uses the library's default (aioquic); any other name is passed as
    ``quic_backend=`` to both configs, and the stack is unavailable when the installed
    library does not accept it.
    """

    def __init__(self, name: str, *, backend: str | None = None) -> None:
        self.name = name
        self._backend = backend
        self._extra: dict[str, Any] = {} if backend is None else {"quic_backend": backend}

    def unavailable(self) -> str | None:
        try:
            from pywebtransport.config import ClientConfig
        except Exception as exc:  # a broken or missing installation is a reason, not a crash
            return f"pywebtransport does not import ({type(exc).__name__}: {exc})"
        if self._backend is None:
            return None
        try:
            ClientConfig(**self._extra)
        except Exception as exc:  # TypeError (unknown field) or ConfigurationError (unknown backend)
            return f"backend not available ({type(exc).__name__}: {exc})"
        return None

    async def start_server(self, cert: Certificate, hub: RelayHub) -> BenchServer:
        from pywebtransport.config import ServerConfig
        from pywebtransport.server import WebTransportServer

        config = ServerConfig(host="127.0.0.1", port=0, certfile=str(cert.cert_path), keyfile=str(cert.key_path),
                              max_connections=100_000, keep_alive_interval=None, **self._extra)

        async def handler(session: Any) -> None:
            counter = DatagramCounter()
            tasks: set[asyncio.Task[None]] = set()

            async def datagrams() -> None:
                async for payload in session.datagrams:
                    if payload[:1] == b"S":
                        counter.count += 1
                    else:
                        session.datagrams.send_nowait(payload)

            tasks.add(asyncio.ensure_future(datagrams()))
            await serve_session_streams(session, counter, hub, tasks)

        server = WebTransportServer(config=config)
        server.add_route(PATH, handler)
        await server.start()
        return _OursServer(server)

    async def connect(self, port: int, cert: Certificate) -> BenchClient:
        from pywebtransport.client import WebTransportClient
        from pywebtransport.config import ClientConfig

        config = ClientConfig(server_certificate_hashes=[cert.sha256], keep_alive_interval=None, **self._extra)
        client = WebTransportClient(config=config)
        try:
            session = await client.connect(f"https://127.0.0.1:{port}{PATH}")
        except BaseException:
            await client.close()
            raise
        return _OursClient(client, session)
