"""ServerApp: routes with path parameters, middleware, hooks, graceful shutdown."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from pywebtransport.config import ServerConfig
from pywebtransport.exceptions import ServerError
from pywebtransport.server import workers as _workers
from pywebtransport.server._signals import STOP_SIGNALS, on_signals
from pywebtransport.server.core import is_rejection_status
from pywebtransport.server.middleware import Middleware, Reject, SessionRequest
from pywebtransport.server.router import Router
from pywebtransport.server.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.types import Address

if TYPE_CHECKING:
    from pywebtransport.manager.session_manager import SessionManager

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
    ``config.reject_status_for_unknown_path`` (404). ``config.allowed_origins`` is checked
    first, by the server: a present, disallowed ``origin`` gets 403. Handlers get the session
    and the path parameters as keyword arguments; a handler whose signature does not fit its
    route is refused by ``route()`` with TypeError. The session is closed when the handler
    returns. ``session_manager`` (entered by the caller) tracks accepted sessions; when it is
    full, requests get 503 instead of being accepted.
    """

    def __init__(self, *, config: ServerConfig | None = None, middleware: list[Middleware] | None = None,
                 session_manager: SessionManager | None = None, protocols: Sequence[str] = ()) -> None:
        self._config = config or ServerConfig()
        self._router = Router()
        self._middleware: list[Middleware] = list(middleware or [])
        self._startup: list[Hook] = []
        self._ready: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._server = WebTransportServer(config=self._config, handler=self._dispatch, decider=self._decide,
                                          session_manager=session_manager, protocols=protocols)
        self._started = False
        #: The one close (server close, then shutdown hooks), shared by every close() call.
        self._closing: asyncio.Future[None] | None = None
        self._worker: _workers.WorkerContext | None = None  # set in a worker process of run(workers=N)

    # -- declaration
    def route(self, pattern: str) -> Callable[[RouteHandler], RouteHandler]:
        """Decorator: run the handler as ``handler(session, **params)`` for paths matching
        ``pattern``; TypeError now if it does not take exactly the pattern's parameters."""
        def register(handler: RouteHandler) -> RouteHandler:
            self._router.add(pattern, handler)
            return handler
        return register

    def add_route(self, pattern: str, handler: RouteHandler) -> None:
        """The same as ``route(pattern)(handler)``."""
        self._router.add(pattern, handler)

    def add_middleware(self, middleware: Middleware) -> None:
        self._middleware.append(middleware)

    def on_startup(self, hook: Hook) -> Hook:
        """Run ``hook`` before the server binds its socket (set up what handlers need)."""
        self._startup.append(hook)
        return hook

    def on_ready(self, hook: Hook) -> Hook:
        """Run ``hook`` once the server listens (``local_address`` is valid): announce it.

        With ``run(workers=N)`` it runs in every worker, once all N are listening."""
        self._ready.append(hook)
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
        """Run the startup hooks, bind the server's socket, then run the ready hooks.

        A start that fails part-way (a hook raises, the port is taken, it is cancelled) does
        not leave the app half up: once a startup hook has run, the server is closed and the
        shutdown hooks run, as ``close()`` does, before the error is raised again. The app is
        closed then; make a new one to try again.
        """
        if self._started:
            return
        begun = False
        try:
            for hook in self._startup:
                await _run(hook)
                begun = True
            await self._server.start()
            self._started = begun = True
            if self._worker is not None and not await self._worker.listening():
                return  # the server is stopping before every worker listened: nothing to announce
            for hook in self._ready:
                await _run(hook)
        except BaseException as exc:
            if begun:
                await self._undo_start(exc)
            raise

    async def _undo_start(self, exc: BaseException) -> None:
        """Close what a failed ``start()`` opened: the server, then the shutdown hooks."""
        logger.warning("the app failed to start (%r); closing the server and running the shutdown hooks", exc)
        self._started = True  # close() runs the shutdown hooks of a started app
        try:
            await self.close(drain_timeout=0.0)
        except Exception:
            logger.exception("closing the app after its failed start failed too")

    async def serve_forever(self) -> None:
        await self.start()
        await self._server.serve_forever()

    async def serve_until_signalled(self, *, drain_timeout: float = 5.0,
                                    signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> signal.Signals | None:
        """Serve until SIGINT or SIGTERM arrives (or ``close()`` is called), then close
        gracefully with ``drain_timeout``; returns the signal that stopped it, if any."""
        received: list[signal.Signals] = []
        stop = asyncio.Event()

        def stop_on(signum: signal.Signals) -> None:
            if not received:
                logger.info("received %s; closing the server", signum.name)
                received.append(signum)
            stop.set()

        with on_signals(stop_on, signals):
            await self.start()
            serving = asyncio.ensure_future(self._server.serve_forever())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                await self.close(drain_timeout=drain_timeout)
                await asyncio.gather(serving, stopping, return_exceptions=True)
        return received[0] if received else None

    def run(self, *, drain_timeout: float = 5.0, workers: int = 1) -> None:
        """Blocking entry point for scripts: serve until SIGINT or SIGTERM, then close
        gracefully (sessions see WT_CLOSE_SESSION code 0, shutdown hooks run).

        ``workers=N`` (Linux) forks N processes that share the UDP port with SO_REUSEPORT,
        each running this app (startup, ready and shutdown hooks included) for the clients
        the kernel hashes to it by address; limits such as ``max_connections`` apply per
        worker. A signal to this process closes every worker gracefully. A worker that dies
        stops the others and makes ``run`` raise ServerError, as does one that cannot start
        (see ``pywebtransport.server.workers`` for why it is not restarted). Where several
        processes cannot share a port (not Linux, no fork), one process serves and a warning
        says why. ``workers=1`` serves in this process.
        """
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        if workers > 1:
            why = _workers.multiprocess_unavailable()
            if why is None:
                self._run_workers(workers, drain_timeout)
                return
            logger.warning("serving from one process instead of %d workers: %s", workers, why)
        asyncio.run(self.serve_until_signalled(drain_timeout=drain_timeout))

    def _run_workers(self, workers: int, drain_timeout: float) -> None:
        reservation = _workers.reserve_port(self._config.host, self._config.port)
        port = reservation.port

        def serve(context: _workers.WorkerContext) -> int:
            # This is the worker's own copy of the app and its config (after the fork): every
            # worker listens on the same port, in one SO_REUSEPORT group.
            self._config.port = context.port
            self._config.reuse_port = True
            self._worker = context
            asyncio.run(self.serve_until_signalled(drain_timeout=drain_timeout))
            return 0

        stop_timeout = drain_timeout + self._config.close_timeout + _workers.STOP_GRACE
        try:
            result = _workers.Supervisor(serve, workers=workers, port=port, stop_timeout=stop_timeout,
                                         reservation=reservation).run()
        finally:
            reservation.release()
        if not result.clean:
            raise ServerError("; ".join(result.failures))

    async def close(self, *, drain_timeout: float = 5.0) -> None:
        """GOAWAY and WT_DRAIN_SESSION to everyone, ``drain_timeout`` for sessions to end, then
        close; shutdown hooks run last. The close, hooks included, finishes even if its
        caller is cancelled (as the server's does); every call waits for that one close."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(drain_timeout))
        await asyncio.shield(self._closing)

    async def _close(self, drain_timeout: float) -> None:
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
                verdict: object = await middleware(request)
            except Reject as exc:
                verdict = exc.status
            if verdict is None:
                continue
            if not is_rejection_status(verdict):
                # Fail closed: a middleware that answers something else has a bug, and whether
                # it meant to let the request through cannot be told.
                logger.error("%s rejected with 500: middleware %r answered %r, which is not a verdict (None lets "
                             "the request through, an int in 300-599 rejects it with that status)",
                             session.path, middleware, verdict)
                return 500
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
