"""WebTransportSession: one WebTransport session over a shared QUIC connection.

The class is put together from parts, each in the module named for what it holds:

- ``core.py``: the session's state, identity, the engine's snapshot and close information;
- ``lifecycle.py``: the subprotocol choice, ``ready()``, ``drain()``, ``close()`` and every
  close path (closed locally, by the peer, rejected, connection lost);
- ``streams.py``: opening and accepting streams, ``incoming_streams()``, stream credit, and
  the stream half of the port streams call (see ``port.py``);
- ``datagrams.py``: the datagram transport and the datagram half of the port;
- ``health.py``: statistics, diagnostics and health monitoring;
- ``tls.py``: the peer certificate and the keying-material exporter.

This module holds the class itself and its one entry going up, ``handle_event``, which
routes each engine event to the part (or the stream, or the datagram transport) it concerns.
"""

from __future__ import annotations

from pywebtransport._protocol import events as ev
from pywebtransport.events import EventType
from pywebtransport.session.datagrams import SessionDatagrams
from pywebtransport.session.health import SessionHealth
from pywebtransport.session.lifecycle import SessionLifecycle
from pywebtransport.session.streams import SessionStreams
from pywebtransport.session.tls import SessionTLS
from pywebtransport.stream import WebTransportReceiveStream, WebTransportStream
from pywebtransport.types import StreamId

__all__ = ["WebTransportSession"]


class WebTransportSession(SessionLifecycle, SessionStreams, SessionDatagrams, SessionHealth, SessionTLS):
    """A WebTransport session: streams and datagrams multiplexed over one QUIC connection.

    Sessions are made by a connection (``WebTransportClient.connect`` or a server handler),
    not by hand. Use as ``async with session:`` to close it on exit.

    When the session ends, one rule holds for every iterator and read: ``async for`` over
    ``incoming_streams()`` (and the typed variants), ``session.datagrams`` and a stream's
    chunks ends quietly on a clean close (code 0, closed by either side with
    WT_CLOSE_SESSION or a FIN) and raises :class:`SessionClosedError` otherwise (a non-zero
    code, a lost or failed connection, an idle timeout). An explicit ``read()``,
    ``receive()``, ``write()`` or ``accept_*()`` after the session closed always raises
    :class:`SessionClosedError`; it carries ``error_code``, ``reason`` and ``cause`` (a
    :class:`CloseCause`), as browsers reject reads with a WebTransportError naming the close.
    """

    async def __aenter__(self) -> WebTransportSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ events from the connection

    def handle_event(self, event: ev.EngineEvent) -> None:
        """Internal: an engine event about this session, delivered by its connection.

        The one entry going up (as aioquic's ``quic_event_received``); stream and datagram
        events are routed on to the stream or the datagram transport they concern.
        """
        if isinstance(event, ev.StreamDataReceived):
            self.deliver_stream_data(event.stream_id, event.data, event.end_stream)
        elif isinstance(event, (ev.StreamStopSending, ev.StreamWritable)):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.handle_event(event)
        elif isinstance(event, ev.DatagramReceived):
            self.deliver_datagram(event.data)
        elif isinstance(event, ev.StreamOpened):
            self._on_stream_opened(event.stream_id, event.is_unidirectional)
        elif isinstance(event, ev.StreamReset):
            stream = self._streams.get(event.stream_id)
            if isinstance(stream, (WebTransportStream, WebTransportReceiveStream)):
                stream.handle_event(event)  # counted by the stream, if it cut reading short
        elif isinstance(event, ev.StreamCreditAvailable):
            self._wake_credit_waiters(event.is_unidirectional)
        elif isinstance(event, ev.SessionCreditUpdated):
            name = {ev.CreditKind.DATA: EventType.SESSION_MAX_DATA_UPDATED,
                    ev.CreditKind.STREAMS_BIDI: EventType.SESSION_MAX_STREAMS_BIDI_UPDATED,
                    ev.CreditKind.STREAMS_UNI: EventType.SESSION_MAX_STREAMS_UNI_UPDATED}[ev.CreditKind(event.kind)]
            self._emit(name, {"limit": event.limit})
        elif isinstance(event, ev.SessionBlocked):
            name = (EventType.SESSION_DATA_BLOCKED if event.kind == ev.CreditKind.DATA
                    else EventType.SESSION_STREAMS_BLOCKED)
            self._emit(name, {"kind": ev.CreditKind(event.kind).value, "limit": event.limit})
        elif isinstance(event, ev.SessionEstablished):
            self._on_established(event.headers)
        elif isinstance(event, ev.SessionDraining):
            self._emit(EventType.SESSION_DRAINING, {"session_id": self._session_id})
        elif isinstance(event, ev.SessionRejected):
            self._on_rejected(event.status_code, event.reason)
        elif isinstance(event, ev.SessionClosed):
            self._on_closed(event)
        elif isinstance(event, ev.ProtocolViolation):
            self._protocol_errors += 1

    def deliver_stream_data(self, stream_id: StreamId, data: bytes, end_stream: bool) -> None:
        """Internal: payload of one of this session's streams arrived (the connection's fast
        path for the engine's StreamDataReceived; not public API)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.deliver_data(data, end_stream)
        elif data:
            self.stream_consume(stream_id, len(data))  # nobody will read it

    def __repr__(self) -> str:
        return f"<WebTransportSession id={self._session_id} path={self._path!r} state={self.state.value}>"
