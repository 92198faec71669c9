"""A server's lifecycle: binding the UDP socket, serving, and closing (draining sessions,
closing connections, waiting out QUIC's closing periods, cancelling handlers).
"""

from __future__ import annotations

import asyncio
import logging

from pywebtransport._addresses import format_address
from pywebtransport._io import UdpEndpoint
from pywebtransport._protocol.quic import build_connection_refused
from pywebtransport._protocol.quic_initial import initial_decrypts
from pywebtransport._protocol.settings import DIALECT_DRAFT02
from pywebtransport.connection import WebTransportConnection, build_quic_configuration
from pywebtransport.exceptions import ServerError
from pywebtransport.server.core import ServerCore
from pywebtransport.types import Address

__all__ = ["ServerLifecycle"]

#: The server's logger (docs/debugging.md names it): every part of the class logs to it.
logger = logging.getLogger("pywebtransport.server.server")


class ServerLifecycle(ServerCore):
    """Starting, serving and closing (a part of WebTransportServer)."""

    # -- lifecycle
    @property
    def local_address(self) -> Address:
        if self._endpoint is None:
            raise ServerError("the server is not listening; call start() first")
        return self._endpoint.local_address

    @property
    def is_serving(self) -> bool:
        return self._endpoint is not None and not self._closing

    async def start(self) -> None:
        """Bind the UDP socket and start accepting; ServerError once the server was closed
        (make a new one: a closed server keeps its state for whoever awaits its close)."""
        if self._close_task is not None:
            raise ServerError("the server was closed; create a new one to serve again")
        if self._endpoint is not None:
            return
        self._quic_configuration = build_quic_configuration(self._config)
        try:
            self._endpoint = await UdpEndpoint.open(local_addr=(self._config.host, self._config.port),
                                                    new_connection=self._new_connection,
                                                    socket_buffer_size=self._config.socket_buffer_size,
                                                    refuse=_refusal, reuse_port=self._config.reuse_port,
                                                    initial_check=initial_decrypts)
        except OSError as exc:
            raise ServerError(f"cannot listen on {self._config.host}:{self._config.port}: {exc}") from exc
        host, port = self.local_address
        logger.info("WebTransport server listening on %s", format_address(host, port))

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
                try:
                    await self._drain(connections, drain_timeout)
                except Exception:  # the close below must still happen, for every connection
                    logger.exception("server close: the drain failed; closing every connection now")
            await asyncio.gather(*(c.close(reason="server shutting down") for c in connections),
                                 return_exceptions=True)
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                # Bounded: a handler that swallows its cancellation must not hold the close
                # (and a SIGTERM'd ServerApp) forever. It is named and left behind.
                _, stuck = await asyncio.wait(tasks, timeout=self._config.close_timeout)
                for task in stuck:
                    logger.warning("server close: task %s did not end within close_timeout (%.1fs) after "
                                   "its cancellation; closing without it", task.get_name(),
                                   self._config.close_timeout)
            if self._endpoint is not None:
                # RFC 9000 §10.2: the socket answers late packets with each CONNECTION_CLOSE
                # until the closing periods are over (bounded by close_timeout).
                await self._endpoint.wait_quiet(self._config.close_timeout)
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


def _refusal(version: int, client_dcid: bytes, client_scid: bytes) -> bytes | None:
    """The endpoint's answer to an Initial the server declines: CONNECTION_REFUSED, at once."""
    return build_connection_refused(version=version, client_dcid=client_dcid, client_scid=client_scid)
