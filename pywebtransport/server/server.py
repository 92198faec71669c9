"""WebTransportServer: accept QUIC connections and WebTransport sessions on a UDP port.

The class is put together from parts, each in the module named for what it holds:

- ``core.py``: the server's state, its tasks (``spawn``), the handler types;
- ``lifecycle.py``: ``start()``, ``serve_forever()``, ``close()`` with draining;
- ``sessions.py``: routes, the decision on each session request, running handlers.

This module holds the class itself and its admission control: which new connections are
served (``max_connections`` with reaping of idle ones, the concurrent handshake cap, and
refusals, logged at most once per interval). Every name stays importable from here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pywebtransport._addresses import format_address
from pywebtransport.connection import WebTransportConnection
from pywebtransport.events import Event, EventType
from pywebtransport.server.core import RequestDecider, SessionHandler
from pywebtransport.server.lifecycle import ServerLifecycle
from pywebtransport.server.sessions import ServerSessions
from pywebtransport.types import Address

__all__ = ["DEFAULT_MAX_CONCURRENT_HANDSHAKES", "DEFAULT_PRE_SESSION_GRACE", "REAP_REASON", "RequestDecider",
           "SessionHandler", "WebTransportServer"]

logger = logging.getLogger(__name__)

#: Handshakes in progress at once (each costs the server 8-16 ms of CPU); beyond it new
#: clients are refused at once, so a burst cannot starve established sessions. Read from
#: ``ServerConfig.max_concurrent_handshakes`` when the config has that field.
DEFAULT_MAX_CONCURRENT_HANDSHAKES = 64
#: At ``max_connections``, a connection that has carried no session for this many seconds
#: (since it was accepted, or since its last session ended) may be closed to admit a new
#: client: the default of ``ServerConfig.pre_session_grace``.
DEFAULT_PRE_SESSION_GRACE = 3.0
#: The reason phrase of the CONNECTION_CLOSE (H3_NO_ERROR) that a reaped connection gets.
REAP_REASON = "closed while idle without a session: the server is at max_connections"
#: Original destination connection ids of recently refused Initials: a client's retransmitted
#: Initial is not counted or logged again.
_REMEMBERED_REFUSALS = 4096


class WebTransportServer(ServerLifecycle, ServerSessions):
    """A WebTransport server bound to ``config.host``/``config.port``.

    Register handlers per path with ``@server.route("/path")`` (or ``handler=`` for every
    path); a request for a path without a handler is refused with 404. Use
    ``async with server:`` and ``await server.serve_forever()``.

    Before a session is accepted: a present ``origin`` header not in ``config.allowed_origins``
    gets 403, then the path's handler and ``decider`` are consulted, then ``session_manager``
    (if given) must have room for it, else ``session_limit_status`` (503). New connections
    over the concurrent handshake cap are refused with CONNECTION_REFUSED. At
    ``config.max_connections``, the connection without a session for the longest time is
    closed to make room, if that is longer than ``pre_session_grace`` (3 s; see
    ``DEFAULT_PRE_SESSION_GRACE``); only when there is none is the new client refused.
    Connections in QUIC's closing period (RFC 9000 §10.2) do not count.
    """

    @property
    def connections(self) -> list[WebTransportConnection]:
        """The live connections (a connection leaves as soon as it closes or is lost)."""
        return [c for c in self._connections if _is_live(c)]

    @property
    def pre_session_grace(self) -> float:
        """Seconds without a session after which a connection may be closed to admit a new
        client when the server is at ``max_connections`` (``ServerConfig.pre_session_grace``)."""
        return float(self._config.pre_session_grace)

    @property
    def max_concurrent_handshakes(self) -> int:
        """How many handshakes may be in progress at once before new clients are refused."""
        value = getattr(self._config, "max_concurrent_handshakes", None)
        return DEFAULT_MAX_CONCURRENT_HANDSHAKES if value is None else int(value)

    async def __aenter__(self) -> WebTransportServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connections and sessions
    def _new_connection(self, original_dcid: bytes, addr: Address) -> WebTransportConnection | None:
        if self._closing:
            return None
        # Both limits are checked without a pass over every connection unless one may be
        # reached: a burst of new clients must not cost time quadratic in their number.
        handshaking = self._handshakes_in_progress(exact=False)
        if handshaking >= self.max_concurrent_handshakes:
            self._note_refusal(original_dcid, addr, f"{handshaking} handshakes in progress "
                                                    f"(max_concurrent_handshakes)", handshake=True)
            return None
        limit = self._config.max_connections
        if len(self._connections) >= limit:  # it holds some that ended: count the live ones
            live = self.connections
            # A retransmitted Initial of a client already refused reaps nothing: that client has gone.
            if len(live) >= limit and (original_dcid in self._recent_refusals or not self._reap(live)):
                self._note_refusal(original_dcid, addr, f"max_connections ({limit}) reached")
                return None
        self._recent_refusals.pop(original_dcid, None)
        assert self._endpoint is not None and self._quic_configuration is not None
        connection = WebTransportConnection(
            config=self._config, endpoint=self._endpoint, quic_configuration=self._quic_configuration,
            remote_address=addr, original_destination_connection_id=original_dcid,
            on_session_request=self._on_session_request, budgets=self._budgets)
        self._connections.add(connection)
        self._handshaking[connection] = time.monotonic()

        def established(_event: Event) -> None:
            self._handshaking.pop(connection, None)

        def gone(_event: Event) -> None:
            self._connections.discard(connection)
            self._handshaking.pop(connection, None)

        connection.events.on(EventType.CONNECTION_ESTABLISHED, established)
        connection.events.on(EventType.CONNECTION_CLOSED, gone)
        connection.events.on(EventType.CONNECTION_LOST, gone)
        return connection

    def _reap(self, live: list[WebTransportConnection]) -> bool:
        """At ``max_connections``: close the connection that has carried no session for the
        longest time, if that is longer than ``pre_session_grace``, with CONNECTION_CLOSE
        (H3_NO_ERROR, ``REAP_REASON``). False when none qualifies (the new client is refused)."""
        grace = self.pre_session_grace
        idle = [(since, c) for c in live if (since := c.sessionless_for) is not None and since >= grace]
        if not idle:
            return False
        since, victim = max(idle, key=lambda entry: entry[0])
        victim.start_close(reason=REAP_REASON)  # it stops counting at once
        self.spawn(victim.close(), name=f"pywebtransport-reap-{victim.connection_id}")
        self._handshaking.pop(victim, None)
        self.connections_reaped += 1
        unlogged = self._reap_log.admit(time.monotonic())
        if unlogged is None:
            return True
        more = f" ({unlogged} more since the last message)" if unlogged else ""
        logger.info("max_connections (%d) reached: closed the connection from %s, %.1fs without a session, "
                    "to admit a new client%s", self._config.max_connections, format_address(*victim.remote_address),
                    since, more)
        return True

    def _handshakes_in_progress(self, *, exact: bool = True) -> int:
        """Handshakes under way; one older than ``config.connect_timeout`` is abandoned (its
        connection closed), so peers that never finish cannot hold the cap.

        The table is in order of arrival, so the overdue ones are found at its front. With
        ``exact`` False the ones that ended without a word yet (QUIC closing) are only swept
        out when the count reaches ``max_concurrent_handshakes``: below it, the count may
        include them, which decides nothing."""
        deadline = time.monotonic() - self._config.connect_timeout
        overdue = []
        for connection, started in self._handshaking.items():
            if started >= deadline:
                break
            overdue.append(connection)
        for connection in overdue:
            del self._handshaking[connection]
            if not _is_live(connection):
                continue
            self.handshakes_abandoned += 1
            logger.info("abandoning the handshake with %s: not done within %.1fs",
                        format_address(*connection.remote_address), self._config.connect_timeout)
            self.spawn(connection.close(reason="handshake timeout"),
                       name=f"pywebtransport-abandon-{connection.connection_id}")
        if exact or len(self._handshaking) >= self.max_concurrent_handshakes:
            for connection in [c for c in self._handshaking if not _is_live(c)]:
                del self._handshaking[connection]
        return len(self._handshaking)

    def _note_refusal(self, original_dcid: bytes, addr: Address, why: str, *, handshake: bool = False) -> None:
        """Count and log a connection we will not serve (at most one warning per interval,
        with how many were suppressed), unless it is a retransmission of an Initial already
        refused. The endpoint answers the Initial itself with CONNECTION_REFUSED."""
        if original_dcid in self._recent_refusals:
            return
        self._recent_refusals[original_dcid] = None
        while len(self._recent_refusals) > _REMEMBERED_REFUSALS:
            self._recent_refusals.popitem(last=False)
        self.connections_refused += 1
        if handshake:
            self.handshakes_refused += 1
        suppressed = self._refusal_log.admit(time.monotonic())
        if suppressed is None:
            return
        self.refusal_warnings += 1
        more = f" ({suppressed} more refused since the last warning)" if suppressed else ""
        logger.warning("refusing connection from %s: %s%s", format_address(addr[0], addr[1]), why, more)

    def get_stats(self) -> dict[str, Any]:
        return {
            "connections": len(self.connections),
            "sessions_accepted": self.sessions_accepted,
            "sessions_rejected": self.sessions_rejected,
            "connections_refused": self.connections_refused,
            "handshakes_in_progress": self._handshakes_in_progress(),
            "handshakes_refused": self.handshakes_refused,
            "handshakes_abandoned": self.handshakes_abandoned,
            "connections_reaped": self.connections_reaped,
            "connections_closing": self._endpoint.closing_count if self._endpoint is not None else 0,
            "datagrams_received": self._endpoint.datagrams_in if self._endpoint is not None else 0,
            "initials_dropped": self._endpoint.initials_dropped if self._endpoint is not None else 0,
            "tasks": len(self._tasks),
        }


def _is_live(connection: WebTransportConnection) -> bool:
    """Not closed, and not already ending at the QUIC level (when the engine can tell)."""
    if connection.is_closed:
        return False
    return not getattr(connection.protocol_handler, "is_closing", False)

