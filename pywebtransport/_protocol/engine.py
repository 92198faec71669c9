"""The sans-I/O HTTP/3 + WebTransport engine over one QUIC connection: its public face.

Bytes and time go in (``receive_datagram``, ``handle_timer``), events come out
(``next_event``), and packets are collected with ``datagrams_to_send``. The application's
calls that record a time (opening, accepting, rejecting and closing sessions, ``close``)
take it as ``now``. The engine never awaits, never reads a clock and never touches a
socket, so a whole conversation can be played in memory between two engines.

The engine is split along its seams: HTTP/3 control and QPACK (``h3.py``), request and
CONNECT streams (``requests.py``), stream and datagram routing (``routing.py``), one
``Session`` per session (``session.py``) with its flow control (``flow_control.py``), and
the stream table (``streams.py``). The calls the application makes live in
``session_api.py`` (sessions) and ``stream_api.py`` (streams and datagrams), read-only
views in ``queries.py``, writability and credit watches in ``watches.py``, QUIC event
dispatch and the connection's end in ``dispatch.py``, and the slowloris deadlines in
``deadlines.py``; ``core.py`` holds the state they share. This module holds the
bytes/time/events surface and puts the parts together.
"""

from __future__ import annotations

from pywebtransport import constants as c
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.core import EngineConfig
from pywebtransport._protocol.deadlines import Deadlines
from pywebtransport._protocol.dispatch import QuicDispatch
from pywebtransport._protocol.queries import EngineQueries
from pywebtransport._protocol.requests import RequestStreams
from pywebtransport._protocol.routing import StreamRouting
from pywebtransport._protocol.session_api import SessionApi
from pywebtransport._protocol.stream_api import StreamApi
from pywebtransport._protocol.watches import WritabilityWatches

__all__ = ["EngineConfig", "WebTransportEngine"]


class WebTransportEngine(SessionApi, StreamApi, Deadlines, QuicDispatch, WritabilityWatches, EngineQueries,
                         RequestStreams, StreamRouting):
    """HTTP/3 + WebTransport for one QUIC connection, client or server role.

    ``WebTransportEngine(quic, *, config=None, budgets=None)``: ``budgets`` are the server's
    shared send/receive budgets (``SharedBudgets``; None: bounded by ``config`` alone).
    """

    def connect(self, addr: tuple[str, int], now: float) -> None:
        """Client: start the QUIC handshake towards ``addr``."""
        self._now = now
        self.quic.connect(addr, now=now)
        self._pump()

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        """Feed one UDP datagram from the network."""
        self._now = now
        self.quic.receive_datagram(data, addr, now=now)
        self._pump()

    def handle_timer(self, now: float) -> None:
        """Call when ``get_timer()``'s deadline has passed."""
        self._now = now
        quic_timer = self.quic.get_timer()
        if quic_timer is not None and quic_timer <= now:
            self.quic.handle_timer(now=now)
        self._check_deadlines()
        self._pump()

    def get_timer(self) -> float | None:
        """The next moment ``handle_timer`` must run: QUIC's timer or one of our deadlines."""
        quic_timer, deadline = self.quic.get_timer(), self._next_deadline()
        if quic_timer is None or (deadline is not None and deadline < quic_timer):
            return deadline
        return quic_timer

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        """UDP datagrams to put on the wire now.

        Also where send buffers are measured again (acknowledgements arrived, data left),
        once per transmit pass rather than per packet: a writer waiting for connection room
        is then announced (StreamWritable), and the watch's ``wakeup`` is called, since the
        caller collects no events after this call.
        """
        self._now = now
        out = self.quic.datagrams_to_send(now=now)
        self._streams.sweep()  # aioquic discards finished streams while building packets
        self._refresh_send_buffers()
        return out

    def close(self, error_code: int = c.H3_NO_ERROR, reason: str = "", *, now: float | None = None) -> None:
        """Close the whole connection (every session ends); ``now`` is the current time, the
        ``closed_at`` of the sessions it ends (None: the engine's time)."""
        self._advance_clock(now)
        super().close(error_code, reason)

    def next_event(self) -> ev.EngineEvent | None:
        """The next event, or None when there is none."""
        return self._events.popleft() if self._events else None
