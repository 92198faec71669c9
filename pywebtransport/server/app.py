"""ServerApp: routes with path parameters, middleware, hooks, graceful shutdown."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pywebtransport.config import ServerConfig
from pywebtransport.server.middleware import Middleware, OriginAllowList, Reject, SessionRequest
from pywebtransport.server.router import Router
from pywebtransport.server.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.types import Address

__all__ = ["ServerApp"]

logger = logging.getLogger(__name__)

Hook = Callable[[], "Awaitable[None] | None"]
RouteHandler = Callable[..., Awaitable[None]]


class ServerApp:
    """A WebTransport application::

        app = ServerApp(config=ServerConfig(...))

        @app.route("/rooms/{room}")
        async def room(session, room):
            ...

        async with app:
            await app.serve_forever()

    Each request runs the middleware chain, then its route; no route means
    ``config.reject_status_for_unknown_path`` (404). ``config.allowed_origins`` adds an
    origin allow-list in front of the chain. Handlers get the session and the path
    parameters as keyword arguments; the session is closed when the handler returns.
    """

    def __init__(self, *, config: ServerConfig | None = None, middleware: list[Middleware] | None = None) -> None:
        self._config = config or ServerConfig()
        self._router = Router()
        self._middleware: list[Middleware] = []
        if self._config.allowed_origins is not None:
            self._middleware.append(OriginAllowList(self._config.allowed_origins))
        self._middleware += middleware or []
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._server = WebTransportServer(config=self._config, handler=self._dispatch, decider=self._decide)
        self._started = False

    # -- declaration
    def route(self, pattern: str) -> Callable[[RouteHandler], RouteHandler]:
        def register(handler: RouteHandler) -> RouteHandler:
            self._router.add(pattern, handler)
            return handler
        return register

    def add_middleware(self, middleware: Middleware) -> None:
        self._middleware.append(middleware)

    def on_startup(self, hook: Hook) -> Hook:
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        self._shutdown.append(hook)
        return hook

    # -- running
    @property
    def server(self) -> WebTransportServer:
        return self._server

    @property
    def local_address(self) -> Address:
        return self._server.local_address

    async def start(self) -> None:
        if self._started:
            return
        for hook in self._startup:
            await _run(hook)
        await self._server.start()
        self._started = True

    async def serve_forever(self) -> None:
        await self.start()
        await self._server.serve_forever()

    async def close(self, *, drain_timeout: float = 5.0) -> None:
        """GOAWAY and WT_DRAIN_SESSION to everyone, ``drain_timeout`` for sessions to end, then
        close; shutdown hooks run last."""
        await self._server.close(drain_timeout=drain_timeout)
        if self._started:
            self._started = False
            for hook in self._shutdown:
                try:
                    await _run(hook)
                except Exception:
                    logger.exception("shutdown hook %r failed", hook)

    async def __aenter__(self) -> ServerApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- per request
    async def _decide(self, session: WebTransportSession) -> int | None:
        found = self._router.match(session.path)
        if found is None:
            return self._config.reject_status_for_unknown_path
        _, params = found
        connection = session.connection
        request = SessionRequest(session=session, path=session.path, headers=session.headers,
                                 remote_address=connection.remote_address if connection else None, params=params)
        for middleware in self._middleware:
            try:
                verdict = await middleware(request)
            except Reject as exc:
                verdict = exc.status
            if verdict is not None:
                logger.info("%s rejected with %d by %r", session.path, verdict, middleware)
                return verdict
        return None

    async def _dispatch(self, session: WebTransportSession) -> None:
        found = self._router.match(session.path)  # matched again: cheap, and nothing to forget
        if found is None:  # the decider already refused; nothing to run
            return
        route, params = found
        await route.handler(session, **params)


async def _run(hook: Hook) -> Any:
    result = hook()
    if inspect.isawaitable(result):
        return await result
    return result
