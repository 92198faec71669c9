"""QUIC's closing and draining periods at the endpoint (RFC 9000 §10.2).

A connection that has closed is retired (``retire``): for its closing or draining period
(three PTOs) its connection ids still route, to a ``ClosingConnection`` holding only the
datagrams of its CONNECTION_CLOSE. A peer whose copy of the close was lost learns of it
from the answer to its next packet instead of waiting out its idle timeout.
"""

from __future__ import annotations

import asyncio
import time

from pywebtransport._addresses import format_address
from pywebtransport._io.drivers import ConnectionDriver
from pywebtransport._io.endpoint_core import EndpointCore
from pywebtransport.types import Address

__all__ = ["MAX_CLOSING_PERIOD", "ClosingConnection", "EndpointClosing"]

#: The longest a closed connection is kept routed (seconds), whatever its PTO says: a peer
#: that inflates its RTT cannot make closing connections pile up.
MAX_CLOSING_PERIOD = 10.0
#: RFC 9000 §8.1: before the peer's address is validated, at most this many bytes are sent
#: per byte received from it.
_AMPLIFICATION_FACTOR = 3


class ClosingConnection:
    """What is left of a connection in its closing or draining period (RFC 9000 §10.2).

    Closing (we sent CONNECTION_CLOSE): packets from the peer are answered with the same
    datagrams again, which §10.2.1 allows, at a limited rate: after the 1st, 2nd, 4th, 8th...
    packet, and within three times the bytes received while the peer's address is not
    validated (§8.1). Draining (the peer closed, ``close_datagrams`` empty): nothing is sent
    (§10.2.2). At ``until`` the endpoint forgets it. Under a kilobyte each (its close
    datagrams, connection ids and counters).
    """

    __slots__ = ("_budget", "_due", "_next_answer", "answers", "cids", "close_datagrams", "close_endpoint", "peer",
                 "received", "until", "validated")

    def __init__(self, *, close_datagrams: tuple[bytes, ...], peer: Address, until: float, validated: bool,
                 close_endpoint: bool, cids: tuple[bytes, ...] = ()) -> None:
        #: The connection ids that still route here.
        self.cids = cids
        self.close_datagrams = close_datagrams
        self.peer = peer
        #: When the period ends (``time.monotonic()``); None once it is over.
        self.until: float | None = until
        self.validated = validated
        #: Close the endpoint once the period is over (a client's own socket).
        self.close_endpoint = close_endpoint
        self.received = 0  # packets from the peer during the period
        self.answers = 0  # times the CONNECTION_CLOSE was sent again
        self._next_answer = 1
        self._due = False
        self._budget = 0

    @property
    def draining(self) -> bool:
        """Whether nothing is ever sent (the peer closed, or our close could not be built)."""
        return not self.close_datagrams

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        self.received += 1
        self.peer = addr
        if not self.validated:
            self._budget += _AMPLIFICATION_FACTOR * len(data)
        if self.close_datagrams and self.received >= self._next_answer:
            self._next_answer *= 2
            self._due = True

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        if not self._due:
            return []
        self._due = False
        if not self.validated:
            size = sum(len(data) for data in self.close_datagrams)
            if size > self._budget:
                return []  # it would amplify: wait for more from the peer
            self._budget -= size
        self.answers += 1
        return [(data, self.peer) for data in self.close_datagrams]

    def get_timer(self) -> float | None:
        return self.until

    def handle_timer(self, now: float) -> None:
        """Nothing to do here: the endpoint forgets it once ``until`` has passed."""

    def error_received(self, exc: OSError) -> None:
        """The connection is gone already: a socket error concerns no one."""

    def __repr__(self) -> str:
        kind = "draining" if self.draining else "closing"
        return f"<ClosingConnection {kind} peer={format_address(self.peer[0], self.peer[1])} received={self.received}>"


class EndpointClosing(EndpointCore):
    """Retiring closed connections for their closing period (a part of UdpEndpoint)."""

    @property
    def closing_count(self) -> int:
        """Closed connections still in their closing or draining period (see ``retire``)."""
        return len(self._closing)

    def retire(self, connection: ConnectionDriver, *, close_datagrams: tuple[bytes, ...] = (),
               until: float | None = None, validated: bool = True, peer: Address | None = None,
               close_endpoint: bool = False) -> ClosingConnection | None:
        """A connection has closed: route its connection ids to a ``ClosingConnection`` until
        ``until`` (``time.monotonic()``; at most ``MAX_CLOSING_PERIOD`` from now), then forget them.

        ``close_datagrams`` are the datagrams that carried our CONNECTION_CLOSE, sent again to
        answer late packets; none means draining (RFC 9000 §10.2.2): packets are dropped.
        ``validated`` says whether the peer's address was validated (else answers stay within
        three times what it sent, §8.1). ``close_endpoint`` closes this endpoint when the
        period ends (a client's own socket), or at once when there is no period (``until``
        None or past). Returns the record kept, or None.
        """
        was_client = self._client is connection
        cids = self._forget(connection)
        now = time.monotonic()
        if until is None or until <= now or not (cids or was_client):
            if close_endpoint:
                self.close()
            return None
        address = peer if peer is not None else self._peer
        if address is None:
            if close_endpoint:
                self.close()
            return None
        closing = ClosingConnection(close_datagrams=close_datagrams, peer=address,
                                    until=min(until, now + MAX_CLOSING_PERIOD), validated=validated,
                                    close_endpoint=close_endpoint, cids=tuple(cids))
        for cid in cids:
            self._by_cid[cid] = closing
        if was_client:
            self._client = closing
        self._closing.add(closing)
        self._quiet.clear()
        self._arm_timer(closing)
        return closing

    def _expire(self, closing: ClosingConnection) -> None:
        """The closing period of ``closing`` is over: forget it (and close a client's socket)."""
        closing.until = None
        self._closing.discard(closing)
        self.forget(closing)
        if not self._closing:
            self._set_quiet()
        if closing.close_endpoint:
            self.close()

    async def wait_quiet(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, until no closed connection is in its closing
        period any more (True), or the endpoint closed; False when the time ran out first."""
        if self._quiet.is_set():
            return True
        # A future woken by ``_set_quiet`` or the timer: no task per wait (one per closed client).
        loop = asyncio.get_running_loop()  # the waiter's loop (the endpoint's, but for fakes in tests)
        waiter: asyncio.Future[bool] = loop.create_future()
        self._quiet_waiters.append(waiter)
        timer = loop.call_later(timeout, _wake, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()
            if waiter in self._quiet_waiters:
                self._quiet_waiters.remove(waiter)

    def _set_quiet(self) -> None:
        """No connection is in its closing period any more: every ``wait_quiet`` returns."""
        self._quiet.set()
        waiters, self._quiet_waiters = self._quiet_waiters, []
        for waiter in waiters:
            _wake(waiter, True)


def _wake(waiter: asyncio.Future[bool], quiet: bool) -> None:
    """Settle a ``wait_quiet``: ``quiet`` is what it returns."""
    if not waiter.done():
        waiter.set_result(quiet)
