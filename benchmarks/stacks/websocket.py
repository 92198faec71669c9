"""The websockets library as a reference stack: the fan-out relay app over WebSocket + TLS.

Only the relay row runs on it (it is the comparison the project's target names); each
relay record is one binary message, and the server writes with ``broadcast``, the
library's own non-blocking fan-out write, so the reference is as cheap as websockets gets.
"""

from __future__ import annotations

import importlib.util
import ssl
from typing import Any

from benchmarks.stacks.base import BenchClient, BenchServer, Certificate, RelayHub

__all__ = ["WebSocketLink", "WebSocketStack"]

#: The rows this stack runs; others report "n/a: not measured on this stack".
ROWS = frozenset({"relay"})


class _WsServer:
    def __init__(self, server: Any) -> None:
        self._server = server
        self.port = int(next(iter(server.sockets)).getsockname()[1])

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


class WebSocketLink:
    """One relay member's connection: send records, receive records."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def send(self, record: bytes) -> None:
        from websockets.asyncio.server import broadcast

        broadcast([self._connection], record)

    async def receive(self) -> list[bytes]:
        message = await self._connection.recv()
        return [message if isinstance(message, bytes) else message.encode()]

    async def close(self) -> None:
        await self._connection.close()


class WebSocketStack:
    """websockets (asyncio implementation) over TLS on 127.0.0.1."""

    rows = ROWS

    def __init__(self, name: str = "websockets") -> None:
        self.name = name

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("websockets") is None:
            return "websockets is not installed (pip install 'pywebtransport[bench]')"
        return None

    async def start_server(self, cert: Certificate, hub: RelayHub) -> BenchServer:
        from websockets.asyncio.server import broadcast, serve

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert.cert_path), str(cert.key_path))

        async def handler(connection: Any) -> None:
            member = hub.join(lambda record: broadcast([connection], record))
            try:
                async for message in connection:
                    hub.publish(member, message)
            finally:
                hub.leave(member)

        server = await serve(handler, "127.0.0.1", 0, ssl=context, compression=None, max_queue=None)
        return _WsServer(server)

    async def connect(self, port: int, cert: Certificate) -> BenchClient:
        raise NotImplementedError("websockets runs only the relay row; use open_relay_link")

    async def open_relay_link(self, port: int, cert: Certificate) -> WebSocketLink:
        from websockets.asyncio.client import connect

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # as the QUIC stacks: no chain verification on loopback
        connection = await connect(f"wss://127.0.0.1:{port}/", ssl=context, compression=None, max_queue=None)
        return WebSocketLink(connection)


