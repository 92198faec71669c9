"""WebTransportClient: connect to WebTransport servers and open sessions."""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import logging
import socket
import weakref
from collections.abc import Awaitable, Sequence
from typing import Any

from pywebtransport._addresses import format_address
from pywebtransport._io import UdpEndpoint
from pywebtransport.client.reconnect import OnConnect, ReconnectingClient, ReconnectPolicy
from pywebtransport.config import ClientConfig
from pywebtransport.connection import WebTransportConnection, build_quic_configuration
from pywebtransport.events import EventType
from pywebtransport.exceptions import ClientError, HandshakeError, TimeoutError, WebTransportError
from pywebtransport.session.session import WebTransportSession
from pywebtransport.types import Address, Headers
from pywebtransport.utils import parse_webtransport_url

__all__ = ["WebTransportClient"]

logger = logging.getLogger(__name__)


class WebTransportClient:
    """Opens WebTransport sessions to servers; ``async with`` closes everything it opened.

    TLS is verified by default. For development servers, pin the certificate by its SHA-256
    (``ClientConfig(server_certificate_hashes=[...])``, as browsers do) or, on loopback only,
    turn verification off with ``ClientConfig(verify_mode=False)``.

    A connection that ended keeps its socket for QUIC's closing period (RFC 9000 §10.2,
    three PTOs), answering the server's late packets with the close; ``close()`` waits for
    those periods, at most ``config.close_timeout``.
    """

    def __init__(self, *, config: ClientConfig | None = None) -> None:
        self._config = config or ClientConfig()
        self._connections: set[WebTransportConnection] = set()
        #: Iterators of sessions() to stop when the client closes (weakly: a dropped one goes).
        self._reconnecting: weakref.WeakSet[ReconnectingClient] = weakref.WeakSet()
        #: Closes under way and closing periods being waited out (see ``close``).
        self._closing: set[asyncio.Future[Any]] = set()
        self._closed = False
        self.sessions_opened = 0
        self.connect_failures = 0

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def connections(self) -> list[WebTransportConnection]:
        return [c for c in self._connections if not c.is_closed]

    @property
    def is_closed(self) -> bool:
        """Whether close() was called (no new sessions can be opened)."""
        return self._closed

    async def __aenter__(self) -> WebTransportClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, url: str, *, headers: Headers | None = None, timeout: float | None = None,
                      protocols: Sequence[str] | None = None) -> WebTransportSession:
        """Open a new connection to ``url`` (``https://host:port/path``) and a session on it.

        ``protocols`` offers subprotocols in order of preference (WT-Available-Protocols,
        draft-15 §3.3, the W3C ``protocols`` option); the server's choice is
        ``session.protocol``, and a choice outside the offer fails with SessionRejectedError.

        Raises SessionRejectedError when the server refuses (with its status code),
        ConnectionRefusedError at once when the server's host reports nothing listening on the
        port, TimeoutError after ``timeout`` seconds (default ``config.connect_timeout``) naming
        the stage reached, HandshakeError/CertificateError when QUIC or TLS fails, and
        ClientError when the client is closed, also while the connect is under way.
        """
        if self._closed:
            raise ClientError("the client is closed")
        host, port, path = parse_webtransport_url(url)
        timeout = self._config.connect_timeout if timeout is None else timeout
        attempts = 1 + self._config.max_retries
        for attempt in range(1, attempts + 1):
            try:
                return await self._connect_once(host, port, path, headers, protocols, timeout=timeout)
            except (builtins.TimeoutError, asyncio.TimeoutError, HandshakeError) as exc:  # distinct before 3.11
                self.connect_failures += 1
                if self._closed:  # close() ended the attempt (it closed the connection): say so
                    raise ClientError(f"the client was closed while connecting to {url}") from exc
                if attempt == attempts:
                    if isinstance(exc, (builtins.TimeoutError, asyncio.TimeoutError)):
                        raise TimeoutError(f"could not open a session to {url}: {exc}") from None
                    raise
                logger.info("connect attempt %d to %s failed (%s); retrying", attempt, url, exc)
                await asyncio.sleep(self._config.retry_delay)
                if self._closed:
                    raise ClientError(f"the client was closed while connecting to {url}") from exc
            except WebTransportError as exc:  # e.g. the session request ended by close()
                if self._closed and not isinstance(exc, ClientError):
                    raise ClientError(f"the client was closed while connecting to {url}") from exc
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def sessions(self, url: str, *, headers: Headers | None = None, policy: ReconnectPolicy | None = None,
                 on_connect: OnConnect | None = None) -> ReconnectingClient:
        """Sessions to ``url``, one after another: ``async for session in client.sessions(url)``.

        After a connection loss a new session is opened with backoff and jitter (``policy``)
        and ``on_connect(session)`` is awaited on it before it is handed out; a clean close by
        the server ends the iteration, a 4xx refusal raises SessionRejectedError.
        """
        reconnecting = ReconnectingClient(self, url, headers=headers, policy=policy, on_connect=on_connect)
        self._reconnecting.add(reconnecting)
        return reconnecting

    async def _connect_once(self, host: str, port: int, path: str, headers: Headers | None,
                            protocols: Sequence[str] | None = None, *, timeout: float) -> WebTransportSession:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def remaining() -> float:
            return max(0.0, deadline - loop.time())

        remote = _ip_literal_address(host, port)
        if remote is None:  # a name: ask the resolver (a thread-pool hop), bounded by the timeout
            try:
                remote = await asyncio.wait_for(self._resolve(loop, host, port), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"resolving {host!r} took longer than {timeout}s") from None
        if self._closed:  # closed while the resolver answered: open nothing
            raise ClientError(f"the client was closed while connecting to {format_address(host, port)}")
        local: Address = ("::", 0) if ":" in remote[0] else ("0.0.0.0", 0)
        # Connected to the server, so that an ICMP port unreachable fails the connect at once.
        endpoint = await UdpEndpoint.open(local_addr=local, remote_addr=remote,
                                          socket_buffer_size=self._config.socket_buffer_size)
        if self._closed:  # close() ran while the socket opened: it cannot have seen this one
            endpoint.close()
            raise ClientError(f"the client was closed while connecting to {format_address(host, port)}")
        connection = WebTransportConnection(
            config=self._config, endpoint=endpoint,
            quic_configuration=build_quic_configuration(self._config, server_name=host),
            remote_address=remote, owns_endpoint=True)
        endpoint.attach_client(connection)
        self._connections.add(connection)
        for ended in (EventType.CONNECTION_CLOSED, EventType.CONNECTION_LOST):
            connection.events.on(ended, lambda _event: self._connection_ended(connection))
        try:
            connection.connect()
            # Asked for before the handshake ends: the CONNECT leaves in the same packet as our
            # Finished when the server's SETTINGS came with its handshake flight (0.5-RTT).
            request_headers = {"user-agent": self._config.user_agent, **self._config.headers, **(headers or {})}
            authority = format_address(host, port)  # RFC 3986 §3.2.2: an IPv6 literal in brackets
            requested = connection.request_session(path=path, authority=authority, origin=self._config.origin,
                                                   headers=request_headers, protocols=protocols)
            await connection.wait_connected(timeout=remaining())
            session = await connection.wait_session_ready(requested, timeout=remaining())
        except BaseException:
            await connection.close()
            self._connections.discard(connection)
            raise
        self.sessions_opened += 1
        # Every session on the connection counts, also those opened later with
        # ``session.connection.open_session(...)``: the connection closes after the last one.
        connection.events.on(EventType.SESSION_CLOSED, lambda _event: self._session_closed(connection))
        if session.is_closed:  # closed in the flight that accepted it: its event came before the line above
            self._session_closed(connection)
        return session

    def _session_closed(self, connection: WebTransportConnection) -> None:
        """A session on ``connection`` ended: close the connection once it carries none. It
        stays among this client's connections until the close is done (``_connection_ended``),
        so that ``close()`` waits for a close already under way, as for any other."""
        if connection.sessions:
            return
        if not connection.is_closed:
            close = connection.start_close()  # the close's own task: no second task around it
            if close is not None:
                self._track(close)

    def _connection_ended(self, connection: WebTransportConnection) -> None:
        """``connection`` closed (either end): its socket lives on for QUIC's closing period in
        the background (bounded by ``config.close_timeout``); ``wait_closed()`` waits for it."""
        self._connections.discard(connection)
        self._track(connection.wait_closing_period(timeout=self._config.close_timeout))

    def _track(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> Address:
        """The address of the host name ``host`` from the loop's resolver (IPv4 first);
        ClientError naming the host when it cannot be resolved. IP literals never come here
        (``_connect_once`` uses them as they are)."""
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise ClientError(f"cannot resolve {host!r}: {exc}") from exc
        infos.sort(key=lambda info: info[0] != socket.AF_INET)  # IPv4 first, as browsers on loopback
        address = infos[0][4]
        return (str(address[0]), int(address[1]))

    async def close(self) -> None:
        """Close every connection this client opened (each session's close, then
        CONNECTION_CLOSE) and return.

        Each socket stays open in the background for QUIC's closing period (RFC 9000 §10.2:
        three PTOs, about 0.1 s on loopback, at most ``config.close_timeout``) to answer the
        server's late packets with the close again, then closes itself; ``wait_closed()``
        waits for that. A loop that shuts down first (``asyncio.run`` returning) cancels the
        wait and the sockets are closed at once."""
        self._closed = True
        for reconnecting in list(self._reconnecting):  # a backoff in progress ends now
            reconnecting.client_closed()
        connections, self._connections = list(self._connections), set()
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)

    async def wait_closed(self) -> None:
        """Wait until every connection this client closed is out of its closing period and its
        socket is closed (each bounded by ``config.close_timeout``)."""
        while pending := [task for task in self._closing if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    def get_stats(self) -> dict[str, Any]:
        return {"connections": len(self.connections), "sessions_opened": self.sessions_opened,
                "connect_failures": self.connect_failures}


def _ip_literal_address(host: str, port: int) -> Address | None:
    """``(host, port)`` when ``host`` is an IPv4 or IPv6 literal (in its canonical spelling, as
    the resolver would return it), else None: a literal needs no resolver round trip."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return (str(ip), port)
