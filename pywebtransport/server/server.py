"""WebTransportServer: accept QUIC connections and WebTransport sessions on a UDP port."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aioquic.quic.configuration import QuicConfiguration

from pywebtransport._io import UdpEndpoint
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.settings import DIALECT_DRAFT02
from pywebtransport.config import ServerConfig
from pywebtransport.connection import WebTransportConnection, build_quic_configuration
from pywebtransport.exceptions import ServerError
from pywebtransport.session.session import WebTransportSession
from pywebtransport.types import Address

__all__ = ["RequestDecider", "SessionHandler", "WebTransportServer"]

logger = logging.getLogger(__name__)

#: Runs a session once it is accepted; the session is closed when it returns.
SessionHandler = Callable[[WebTransportSession], Awaitable[None]]
#: Decides on a request: True/None accepts, False rejects with 403, an int rejects with that status.
RequestDecider = Callable[[WebTransportSession], Awaitable["bool | int | None"]]


class WebTransportServer:
    """A WebTransport server bound to ``config.host``/``config.port``.

    Register handlers per path with ``@server.route("/path")`` (or ``handler=`` for every
    path); a request for a path without a handler is refused with 404. Use
    ``async with server:`` and ``await server.serve_forever()``.
    """

    def __init__(self, *, config: ServerConfig | None = None, handler: SessionHandler | None = None,
                 decider: RequestDecider | None = None) -> None:
        self._config = config or ServerConfig()
        self._default_handler = handler
        self._decider = decider
        self._routes: dict[str, SessionHandler] = {}
        self._endpoint: UdpEndpoint | None = None
        self._quic_configuration: QuicConfiguration | None = None
        self._connections: set[WebTransportConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self.sessions_accepted = 0
        self.sessions_rejected = 0
        self.connections_refused = 0

    # -- configuration
    @property
    def config(self) -> ServerConfig:
        return self._config

    def route(self, path: str) -> Callable[[SessionHandler], SessionHandler]:
        """Decorator: run the decorated coroutine for sessions on ``path``."""
        def register(handler: SessionHandler) -> SessionHandler:
            self.add_route(path, handler)
            return handler
        return register

    def add_route(self, path: str, handler: SessionHandler) -> None:
        if not path.startswith("/"):
            raise ValueError(f"a route path must start with '/', got {path!r}")
        self._routes[path] = handler

    def resolve(self, session: WebTransportSession) -> SessionHandler | None:
        """The handler for a session's path (the query string is ignored), or None."""
        return self._routes.get(session.path.split("?", 1)[0], self._default_handler)

    # -- lifecycle
    @property
    def local_address(self) -> Address:
        if self._endpoint is None:
            raise ServerError("the server is not listening; call start() first")
        return self._endpoint.local_address

    @property
    def is_serving(self) -> bool:
        return self._endpoint is not None and not self._closing

    @property
    def connections(self) -> list[WebTransportConnection]:
        return [c for c in self._connections if not c.is_closed]

    async def start(self) -> None:
        """Bind the UDP socket and start accepting."""
        if self._endpoint is not None:
            return
        self._quic_configuration = build_quic_configuration(self._config)
        try:
            self._endpoint = await UdpEndpoint.open(local_addr=(self._config.host, self._config.port),
                                                    new_connection=self._new_connection,
                                                    socket_buffer_size=self._config.socket_buffer_size)
        except OSError as exc:
            raise ServerError(f"cannot listen on {self._config.host}:{self._config.port}: {exc}") from exc
        host, port = self.local_address
        logger.info("WebTransport server listening on %s:%d", host, port)

    async def serve_forever(self) -> None:
        """Serve until close() is called."""
        await self.start()
        await self._closed.wait()

    async def close(self, *, drain_timeout: float = 0.0) -> None:
        """Stop accepting, close every session cleanly, then every connection; cancel handlers.

        With ``drain_timeout`` > 0, sessions first get WT_DRAIN_SESSION and that long to end
        by themselves; connections get GOAWAY, except draft-02 peers (Chromium's network
        service crashes on a GOAWAY, see docs/browsers.md). Browsers ignore WT_DRAIN_SESSION,
        so whatever is still open at the deadline is closed with WT_CLOSE_SESSION code 0,
        which a page sees as a clean close. The close runs to its end even if the caller is
        cancelled; every call waits for the same close.
        """
        if self._close_task is None:
            self._closing = True
            self._close_task = asyncio.get_running_loop().create_task(self._close(drain_timeout),
                                                                      name="pywebtransport-server-close")
        await asyncio.shield(self._close_task)

    async def _close(self, drain_timeout: float) -> None:
        try:
            connections = list(self._connections)
            if drain_timeout > 0:
                await self._drain(connections, drain_timeout)
            await asyncio.gather(*(c.close(reason="server shutting down") for c in connections),
                                 return_exceptions=True)
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if self._endpoint is not None:
                self._endpoint.close()
            self._closed.set()

    @staticmethod
    async def _drain(connections: list[WebTransportConnection], drain_timeout: float) -> None:
        for connection in connections:
            if connection.dialect != DIALECT_DRAFT02:
                connection.send_goaway()
            for session in connection.sessions:
                if session.is_ready:
                    try:
                        await session.drain()
                    except Exception:
                        logger.debug("could not drain session %d", session.session_id)
        sessions = [s for c in connections for s in c.sessions if not s.is_closed]
        if sessions:
            waiters = [asyncio.ensure_future(s.wait_closed()) for s in sessions]
            try:
                await asyncio.wait(waiters, timeout=drain_timeout)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def __aenter__(self) -> WebTransportServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connections and sessions
    def _new_connection(self, original_dcid: bytes, addr: Address) -> WebTransportConnection | None:
        if self._closing:
            return None
        if len(self.connections) >= self._config.max_connections:
            self.connections_refused += 1
            logger.warning("refusing connection from %s:%d: max_connections (%d) reached", addr[0], addr[1],
                           self._config.max_connections)
            return None
        assert self._endpoint is not None and self._quic_configuration is not None
        connection = WebTransportConnection(
            config=self._config, endpoint=self._endpoint, quic_configuration=self._quic_configuration,
            remote_address=addr, original_destination_connection_id=original_dcid,
            on_session_request=self._on_session_request)
        self._connections.add(connection)
        connection.events.on("connection.closed", lambda _e: self._connections.discard(connection))
        connection.events.on("connection.lost", lambda _e: self._connections.discard(connection))
        return connection

    def _on_session_request(self, connection: WebTransportConnection, session: WebTransportSession,
                            request: ev.SessionRequested) -> None:
        self.spawn(self._decide(connection, session), name=f"pywebtransport-decide-{session.session_id}")

    def spawn(self, coro: Awaitable[Any], *, name: str) -> asyncio.Task[Any]:
        """Run a coroutine as a named task the server tracks and cancels on close."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("server task %s failed", task.get_name(), exc_info=task.exception())

    async def _decide(self, connection: WebTransportConnection, session: WebTransportSession) -> None:
        handler = self.resolve(session)
        status: int | None = None if handler is not None else self._config.reject_status_for_unknown_path
        if status is None and self._decider is not None:
            try:
                verdict = await self._decider(session)
            except Exception:
                logger.exception("request decider failed for %s; rejecting with 500", session.path)
                verdict = 500
            if verdict is False:
                status = 403
            elif isinstance(verdict, int) and not isinstance(verdict, bool):
                status = verdict
        if connection.is_closed or session.is_closed:
            return
        if status is not None:
            self.sessions_rejected += 1
            connection.reject_session(session, status_code=status)
            return
        connection.accept_session(session)
        self.sessions_accepted += 1
        assert handler is not None
        await self._run_handler(handler, session)

    async def _run_handler(self, handler: SessionHandler, session: WebTransportSession) -> None:
        try:
            await handler(session)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("session handler for %s failed", session.path)
            if not session.is_closed:
                await session.close(error_code=1, reason="internal server error")
            return
        if not session.is_closed:
            await session.close()

    def get_stats(self) -> dict[str, Any]:
        return {
            "connections": len(self.connections),
            "sessions_accepted": self.sessions_accepted,
            "sessions_rejected": self.sessions_rejected,
            "connections_refused": self.connections_refused,
            "tasks": len(self._tasks),
        }
