"""What leaves the UDP endpoint: one transmit pass per loop wake-up for every connection that
has something to send, the socket writes of each mode, and the QUIC timers re-armed after
each transmit.
"""

from __future__ import annotations

import logging
import time

from pywebtransport._io.closing import ClosingConnection
from pywebtransport._io.drivers import ConnectionDriver
from pywebtransport._io.endpoint_core import EndpointCore
from pywebtransport.types import Address

__all__ = ["EndpointTransmit"]

#: The endpoint's logger (docs/debugging.md names it): every part of the class logs to it.
logger = logging.getLogger("pywebtransport._io.endpoint")


class EndpointTransmit(EndpointCore):
    """Transmit passes, socket writes and timers (a part of UdpEndpoint)."""

    # -- transmit
    def schedule_flush(self, connection: ConnectionDriver) -> None:
        """Mark a connection as having something to send; flush once this wake-up ends."""
        self._dirty.add(connection)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def schedule_flush_after_receive(self, connection: ConnectionDriver) -> None:
        """A datagram reached ``connection``: flush once the tasks it woke have had their turn.

        What a datagram makes QUIC send at once (an ACK that is due, data the congestion
        window now lets out) cannot wait long, but the application's answer usually comes
        one task step later, and two when a new stream passes through an accepting task
        first (``async for stream in session.incoming_streams()`` handing it to a task of
        its own). Flushing before that answer exists is a pass that builds nothing (about
        30 us on qh3) and a loop iteration. So a connection only received for waits one
        more turn, unless something was written to it meanwhile; never more than one.
        """
        self._received.add(connection)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        dirty, self._dirty = self._dirty, set()
        if self._received:
            received, self._received = self._received, set()
            if self._waited:
                dirty |= self._waited  # waited one turn already: now
            self._waited = received - dirty
            if self._waited:
                self._flush_handle = self._loop.call_soon(self._flush)
        elif self._waited:
            dirty |= self._waited
            self._waited = set()
        if not dirty:
            return
        self.flushes += 1
        outgoing: list[tuple[bytes, Address]] = []
        for connection in dirty:
            self._collect(connection, outgoing)
        self._send_now(outgoing)

    def flush_everything(self) -> None:
        """Transmit every connection with anything pending now (the endpoint is closing)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._dirty |= self._received | self._waited
        self._received, self._waited = set(), set()
        self._flush()

    def transmit(self, connection: ConnectionDriver) -> None:
        """Send what one connection has to send right now (and re-arm its timer)."""
        self._unschedule(connection)
        outgoing: list[tuple[bytes, Address]] = []
        self._collect(connection, outgoing)
        self._send_now(outgoing)

    def transmit_if_pending(self, connection: ConnectionDriver) -> None:
        """``transmit`` if a pass is due for ``connection`` (it was written to or received for
        since its last one); otherwise everything it was given has been through a pass already."""
        if connection in self._dirty or connection in self._received or connection in self._waited:
            self.transmit(connection)

    def _unschedule(self, connection: ConnectionDriver) -> None:
        """Take ``connection`` out of every pass still to come (a queued one then skips it)."""
        self._dirty.discard(connection)
        self._received.discard(connection)
        self._waited.discard(connection)

    def _collect(self, connection: ConnectionDriver, outgoing: list[tuple[bytes, Address]]) -> None:
        try:
            outgoing.extend(connection.datagrams_to_send(time.monotonic()))
        except Exception:
            logger.exception("connection failed while building packets")
        self._arm_timer(connection)

    def _send_now(self, outgoing: list[tuple[bytes, Address]]) -> None:
        if not outgoing:
            return
        if self._batch is not None:
            sent = self._batch.send(outgoing)
            self.datagrams_out += sent
            self.send_dropped += len(outgoing) - sent  # a full buffer: lost packets QUIC recovers
            return
        for data, addr in outgoing:
            self._send(data, addr)

    def _send(self, data: bytes, addr: Address) -> None:
        if self._sock is not None:
            try:
                if self._peer is not None:
                    self._sock.send(data)  # connected: some systems refuse sendto with an address
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                self.send_dropped += 1  # the kernel buffer is full: a lost packet QUIC recovers
                return
            except OSError as exc:  # a refusal reported by an earlier ICMP, or a bad address
                self._socket_error(exc)
                return
            self.datagrams_out += 1
        elif self._transport is not None and not self._transport.is_closing():
            # A connected transport takes no address (asyncio refuses any but its peer's).
            self._transport.sendto(data, None if self._peer is not None else addr)
            self.datagrams_out += 1

    def _arm_timer(self, connection: ConnectionDriver) -> None:
        """Make sure the loop wakes ``connection`` no later than its QUIC timer.

        A deadline that moved later keeps the wake-up already armed: QUIC pushes its loss and
        idle timers back on nearly every packet, and cancelling and re-arming a loop timer each
        time costs a handle and two heap operations (cancelled handles also stay in the loop's
        heap until it sweeps them). The early wake-up re-arms for the current deadline instead.
        """
        deadline = connection.get_timer()
        entry = self._timers.get(connection)
        if entry is not None:
            if deadline is not None and entry[0] <= deadline:
                return
            entry[1].cancel()
            del self._timers[connection]
        if deadline is None:
            return
        delay = max(0.0, deadline - time.monotonic())
        handle = self._loop.call_later(delay, self._on_timer, connection, deadline)
        self._timers[connection] = (deadline, handle)

    def _on_timer(self, connection: ConnectionDriver, armed: float) -> None:
        self._timers.pop(connection, None)
        deadline = connection.get_timer()
        if deadline is not None and deadline > armed:  # pushed back since armed: not due yet
            self._arm_timer(connection)
            return
        if isinstance(connection, ClosingConnection):
            self._expire(connection)
            return
        try:
            connection.handle_timer(time.monotonic())
        except Exception:
            logger.exception("connection failed in its timer")
        self.schedule_flush(connection)
