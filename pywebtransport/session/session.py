"""WebTransportSession: one WebTransport session over a shared QUIC connection."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from pywebtransport._protocol import events as ev
from pywebtransport._protocol.snapshot import SessionSnapshot
from pywebtransport._waiters import Waiters
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.datagram import WebTransportDatagramTransport
from pywebtransport.events import EventEmitter, EventType
from pywebtransport.exceptions import (
    FlowControlError,
    LocalProtocolError,
    SessionClosedError,
    SessionError,
    SessionRejectedError,
    StreamClosedError,
    TimeoutError,
)
from pywebtransport.session.stats import SessionDiagnostics, SessionStatistics, SessionStats
from pywebtransport.stream import StreamType, WebTransportReceiveStream, WebTransportSendStream, WebTransportStream
from pywebtransport.types import CloseCause, Headers, SessionId, SessionState, StreamId

if TYPE_CHECKING:
    from cryptography import x509

    from pywebtransport.connection import WebTransportConnection
    from pywebtransport.messaging import Serializer, StructuredDatagramTransport, StructuredStream
    from pywebtransport.protocol import WebTransportProtocolHandler

__all__ = ["WebTransportSession"]

logger = logging.getLogger(__name__)
#: Session lifecycle (requested, accepted, rejected, closed) at INFO.
lifecycle_logger = logging.getLogger("pywebtransport.session")

_T = TypeVar("_T")

_CLEAN_CAUSES = frozenset({CloseCause.PEER_CLOSE, CloseCause.LOCAL_CLOSE})

#: The TLS exporter label of every WebTransport session export (draft-15 §4.8).
_WT_EXPORTER_LABEL = b"EXPORTER-WebTransport"


def session_closed_error(message: str, *, error_code: int | None, reason: str,
                         cause: CloseCause | None) -> SessionClosedError:
    """A SessionClosedError carrying the session's close code, reason and ``cause``."""
    return SessionClosedError(message, error_code=error_code, reason=reason, cause=cause)


class WebTransportSession:
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

    def __init__(self, *, connection: WebTransportConnection, session_id: SessionId, path: str,
                 headers: Headers, control_stream_id: StreamId | None) -> None:
        self._connection_ref: weakref.ref[WebTransportConnection] = weakref.ref(connection)
        self._engine: WebTransportProtocolHandler = connection.protocol_handler
        self._config = connection.config
        self._is_client = isinstance(connection.config, ClientConfig)
        self._loop = asyncio.get_running_loop()
        self._session_id = session_id
        self._selected_protocol: str | None = None
        self._path = path
        self._headers = dict(headers)
        self._control_stream_id = session_id if control_stream_id is None else control_stream_id
        self._events = EventEmitter()
        self._streams: dict[StreamId, StreamType] = {}
        # Streams the peer opened, not yet accepted, per kind, with their arrival number so
        # that incoming_streams() yields them in order.
        self._incoming: dict[bool, deque[tuple[int, StreamType]]] = {False: deque(), True: deque()}
        self._arrivals = 0
        self._incoming_waiters = Waiters()
        self._ready_event = asyncio.Event()
        self._closed_event = asyncio.Event()
        self._credit_waiters: dict[bool, list[asyncio.Future[None]]] = {False: [], True: []}
        self._datagrams: WebTransportDatagramTransport | None = None
        self._error: BaseException | None = None
        # Set once, when the session's end was handled: the last snapshot and close info.
        self._final: SessionSnapshot | None = None
        self._close_info: tuple[int, str, CloseCause] | None = None
        self._response_headers: Headers = {}
        self._stream_errors = 0
        self._protocol_errors = 0
        self._wall_anchor = time.time() - time.monotonic()  # engine clock -> wall clock, for display
        self._stats = SessionStats(session_id=session_id, created_at=time.time())
        self._health_task: asyncio.Task[None] | None = None
        self._wake_connection = _connection_waker(self._loop, self._connection_ref)

    # ------------------------------------------------------------------ properties

    @property
    def connection(self) -> WebTransportConnection | None:
        """The parent connection (weakly referenced: None once it is gone)."""
        return self._connection_ref()

    @property
    def config(self) -> ClientConfig | ServerConfig:
        """The configuration of the connection this session runs on."""
        return self._config

    @property
    def events(self) -> EventEmitter:
        return self._events

    @property
    def headers(self) -> Headers:
        """A copy of the headers of the CONNECT request that opened the session."""
        return dict(self._headers)

    @property
    def response_headers(self) -> Headers:
        return dict(self._response_headers)

    @property
    def protocol(self) -> str | None:
        """The negotiated subprotocol (WT-Protocol, draft-15 §3.3); None when none was chosen."""
        snapshot = self._snapshot()
        return snapshot.protocol if snapshot is not None else None

    @property
    def selected_protocol(self) -> str | None:
        """Server: the subprotocol chosen with select_protocol() before acceptance (None: none)."""
        return self._selected_protocol

    def select_protocol(self, protocol: str) -> None:
        """Server, before acceptance (in a decider or middleware): answer ``protocol``, one of
        ``available_protocols``, as the session's subprotocol (WT-Protocol, draft-15 §3.3)."""
        if self.state is not SessionState.CONNECTING:
            raise SessionError(f"session {self._session_id} is {self.state.value}: a subprotocol is chosen "
                               "before the session is accepted")
        if protocol not in self.available_protocols:
            raise ValueError(f"subprotocol {protocol!r} was not offered (offered: {list(self.available_protocols)})")
        self._selected_protocol = protocol

    @property
    def available_protocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered (WT-Available-Protocols), in its order."""
        snapshot = self._snapshot()
        return snapshot.available_protocols if snapshot is not None else ()

    @property
    def path(self) -> str:
        return self._path

    @property
    def session_id(self) -> SessionId:
        return self._session_id

    @property
    def state(self) -> SessionState:
        """The engine's state of the session: it changes the moment the engine processed a
        close, before any event about it is delivered."""
        if self._final is not None:
            return self._final.state
        # The engine forgot a closed session; it knew it when this object was made.
        return self._engine.session_state(self._session_id) or SessionState.CLOSED

    @property
    def is_ready(self) -> bool:
        return self.state in (SessionState.CONNECTED, SessionState.DRAINING)

    @property
    def is_closed(self) -> bool:
        return self.state is SessionState.CLOSED

    @property
    def close_code(self) -> int | None:
        info = self._closing_info()
        return info[0] if info is not None else None

    @property
    def close_reason(self) -> str | None:
        info = self._closing_info()
        return info[1] if info is not None else None

    @property
    def close_cause(self) -> CloseCause | None:
        """Why the session ended (None while it is open); set before SESSION_CLOSED is emitted."""
        info = self._closing_info()
        return info[2] if info is not None else None

    @property
    def protocol_handler(self) -> WebTransportProtocolHandler | None:
        """The sans-I/O engine under this session (None once the connection is gone)."""
        connection = self.connection
        return connection.protocol_handler if connection is not None else None

    @property
    def datagrams(self) -> WebTransportDatagramTransport:
        """The session's datagram transport, created on first use (awaitable too)."""
        if self._datagrams is None:
            self._datagrams = WebTransportDatagramTransport(self)
        return self._datagrams

    # ------------------------------------------------------------------ lifecycle

    async def initialize(self) -> None:
        """Prepare asyncio resources. Sessions are initialized when made; kept for the older
        API, it is idempotent."""
        self._loop = asyncio.get_running_loop()

    async def ready(self, *, timeout: float = 30.0) -> None:
        """Wait until the session is established (returns at once if it ever was).

        SessionRejectedError if the server refused it, SessionClosedError if it closed
        first, TimeoutError after ``timeout`` seconds. On a server, a session that was not
        accepted yet (middleware runs before acceptance) raises SessionError at once: await
        ``ready()`` in the handler instead.
        """
        if (not self._is_client and not self._ready_event.is_set()
                and self.state is SessionState.CONNECTING):
            raise SessionError(f"session {self._session_id} is not accepted yet: middleware and request "
                               "deciders run before the server accepts a session, so ready() would wait "
                               "forever there; await session.ready() in the session handler instead")
        if not self._ready_event.is_set():
            waiters = [asyncio.ensure_future(self._ready_event.wait()),
                       asyncio.ensure_future(self._closed_event.wait())]
            try:
                done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if not done:
                raise TimeoutError(f"session {self._session_id} not ready within {timeout}s")
        # Established once is ready, as browsers resolve ``ready`` even when ``closed`` follows.
        if not self._ready_event.is_set():
            if self._error is not None:
                raise self._error
            raise self._closed_error_or_generic(f"session {self._session_id} closed before it was ready")

    async def wait_closed(self) -> None:
        """Wait until the session is closed."""
        await self._closed_event.wait()

    async def close(self, *, error_code: int = 0, reason: str | None = None, close_connection: bool = False,
                    **kwargs: Any) -> None:
        """Close the session with WT_CLOSE_SESSION (code and reason), optionally the connection.

        Streams the application finished (``write_all(..., end_stream=True)``, ``await
        stream.close()``) are delivered first: the close waits, at most ``config.close_timeout``
        seconds (the linger), until their data and FIN are acknowledged, and only then sends
        WT_CLOSE_SESSION. Streams still open at that point are reset, as draft-15 §6 requires of
        every stream of a closed session. So: finish the streams whose data matters, then close.
        With ``close_connection=True`` the connection is closed once the close capsule was
        acknowledged (bounded by the same timeout), so the peer sees the code and reason.
        ``code=`` is a deprecated alias of ``error_code``.
        """
        if "code" in kwargs:
            warnings.warn("close(code=...) is deprecated; use close(error_code=...)", DeprecationWarning,
                          stacklevel=2)
            error_code = kwargs.pop("code")
        if kwargs:
            raise TypeError(f"close() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        connection = self.connection
        linger = self._config.close_timeout
        if not self.is_closed and connection is not None and not connection.is_closed:
            engine = self._engine
            if self.is_ready:
                finished = engine.finished_unacknowledged_streams(self._session_id)
                if finished and not await connection.wait_acknowledged(finished, timeout=linger):
                    logger.info("session %d: %d finished stream(s) not acknowledged within %.1fs; resetting",
                                self._session_id, len(finished), linger)
            if not self.is_closed and not connection.is_closed:
                engine.close_session(self._session_id, error_code, reason or "")
                connection.process_engine_events()
        if not self._closed_event.is_set():  # the connection was already gone
            self.handle_event(ev.SessionClosed(self._session_id, error_code, reason or "", False,
                                               CloseCause.LOCAL_CLOSE))
        if close_connection and connection is not None:
            if not connection.is_closed:
                await connection.wait_close_confirmed([self._session_id], timeout=linger)
            await connection.close()

    async def drain(self) -> None:
        """Ask the peer to wind the session down (WT_DRAIN_SESSION)."""
        connection = self._require_connection()
        self._engine.drain_session(self._session_id)
        connection.process_engine_events()

    async def __aenter__(self) -> WebTransportSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ streams

    async def create_bidirectional_stream(self, *, timeout: float | None = None) -> WebTransportStream:
        """Open a bidirectional stream, waiting for stream credit up to ``timeout`` seconds
        (None: the configured ``stream_creation_timeout``); TimeoutError on expiry."""
        stream = await self._create_stream(is_unidirectional=False, timeout=timeout)
        assert isinstance(stream, WebTransportStream)
        return stream

    async def create_unidirectional_stream(self, *, timeout: float | None = None) -> WebTransportSendStream:
        """Open a send-only stream; waits for credit like create_bidirectional_stream."""
        stream = await self._create_stream(is_unidirectional=True, timeout=timeout)
        assert isinstance(stream, WebTransportSendStream)
        return stream

    async def _create_stream(self, *, is_unidirectional: bool, timeout: float | None) -> StreamType:
        if timeout is None:
            timeout = self._config.stream_creation_timeout
        deadline = self._loop.time() + timeout
        while True:
            connection = self._require_open()
            engine = self._engine
            if engine.can_open_stream(self._session_id, is_unidirectional):
                try:
                    stream_id = engine.open_stream(self._session_id, is_unidirectional=is_unidirectional)
                except (LocalProtocolError, FlowControlError):  # lost a race for the credit: wait like everyone else
                    stream_id = None
                connection.process_engine_events()
                if stream_id is not None:
                    stream: StreamType
                    if is_unidirectional:
                        stream = WebTransportSendStream(session=self, stream_id=stream_id)
                    else:
                        stream = WebTransportStream(session=self, stream_id=stream_id)
                    self._register_stream(stream)
                    return stream
            # The engine announces the credit (and tells the peer WT_STREAMS_BLOCKED).
            waiter = self._loop.create_future()
            self._credit_waiters[is_unidirectional].append(waiter)
            try:
                engine.watch_stream_credit(self._session_id, is_unidirectional)
                connection.process_engine_events()
                await asyncio.wait_for(waiter, max(0.0, deadline - self._loop.time()))
            except asyncio.TimeoutError:
                kind = "unidirectional" if is_unidirectional else "bidirectional"
                raise TimeoutError(f"session {self._session_id}: no {kind} stream credit within {timeout}s") from None
            finally:
                if waiter in self._credit_waiters[is_unidirectional]:
                    self._credit_waiters[is_unidirectional].remove(waiter)

    def _register_stream(self, stream: StreamType) -> None:
        self._streams[stream.stream_id] = stream
        self._events.emit_nowait(EventType.STREAM_OPENED, {"stream": stream, "stream_id": stream.stream_id})

    async def incoming_streams(self) -> AsyncGenerator[StreamType, None]:
        """Streams the peer opens, as they arrive, until the session closes (see the class
        docstring for how iteration ends)."""
        while True:
            bidi, uni = self._incoming[False], self._incoming[True]
            if bidi or uni:
                if not uni or (bidi and bidi[0][0] < uni[0][0]):
                    yield bidi.popleft()[1]
                else:
                    yield uni.popleft()[1]
                continue
            if await self._wait_incoming():
                return

    async def incoming_bidirectional_streams(self) -> AsyncIterator[WebTransportStream]:
        """Bidirectional streams the peer opens, as they arrive, until the session closes."""
        queue = self._incoming[False]
        while True:
            if queue:
                stream = queue.popleft()[1]
                assert isinstance(stream, WebTransportStream)
                yield stream
                continue
            if await self._wait_incoming():
                return

    async def incoming_unidirectional_streams(self) -> AsyncIterator[WebTransportReceiveStream]:
        """Unidirectional (receive-only) streams the peer opens, until the session closes."""
        queue = self._incoming[True]
        while True:
            if queue:
                stream = queue.popleft()[1]
                assert isinstance(stream, WebTransportReceiveStream)
                yield stream
                continue
            if await self._wait_incoming():
                return

    async def _wait_incoming(self) -> bool:
        """Wait for an incoming stream; True when iteration ends quietly (clean close)."""
        if self.is_closed:
            if self.ended_cleanly():
                return True
            raise self._closed_error_or_generic(f"session {self._session_id} closed")
        await self._incoming_waiters.wait()
        return False

    async def accept_stream(self, *, timeout: float | None = None) -> StreamType:
        """The next stream the peer opens; TimeoutError after ``timeout`` seconds."""
        return await self._accept(self.incoming_streams(), timeout)

    async def accept_bidirectional_stream(self, *, timeout: float | None = None) -> WebTransportStream:
        """The next bidirectional stream the peer opens; TimeoutError after ``timeout`` seconds."""
        return await self._accept(self.incoming_bidirectional_streams(), timeout)

    async def accept_unidirectional_stream(self, *, timeout: float | None = None) -> WebTransportReceiveStream:
        """The next unidirectional stream the peer opens; TimeoutError after ``timeout`` seconds."""
        return await self._accept(self.incoming_unidirectional_streams(), timeout)

    async def _accept(self, iterator: AsyncIterator[_T], timeout: float | None) -> _T:
        try:
            return await asyncio.wait_for(iterator.__anext__(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no incoming stream within {timeout}s") from None
        except StopAsyncIteration:
            raise self._closed_error_or_generic("the session closed while waiting for a stream") from None
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    # ------------------------------------------------------------------ datagrams & credit

    async def send_datagram(self, *, data: bytes | bytearray | memoryview | str) -> None:
        """Send one unreliable datagram (DatagramTooLargeError if it cannot fit)."""
        await self.datagrams.send(data)

    async def grant_data_credit(self, *, max_data: int) -> None:
        """Raise the session's WT_MAX_DATA for the peer (only ever grows)."""
        connection = self._require_open()
        self._engine.grant_data_credit(self._session_id, max_data)
        connection.process_engine_events()

    async def grant_streams_credit(self, *, max_streams: int, is_unidirectional: bool) -> None:
        """Raise the session's WT_MAX_STREAMS of one kind for the peer (only ever grows)."""
        connection = self._require_open()
        self._engine.grant_streams_credit(self._session_id, max_streams, is_unidirectional)
        connection.process_engine_events()

    # ------------------------------------------------------------------ diagnostics

    def _snapshot(self) -> SessionSnapshot | None:
        """The engine's view of the session now, or the last one once the session ended."""
        if self._final is not None:
            return self._final
        return self._engine.session_snapshot(self._session_id)

    def _wall(self, monotonic: float | None) -> float | None:
        """An engine (monotonic) time as a wall-clock timestamp, for display only."""
        return None if monotonic is None else self._wall_anchor + monotonic

    async def diagnostics(self) -> SessionDiagnostics:
        """A snapshot of the session's protocol state from the engine."""
        snapshot = self._snapshot()
        limits = self._limits()
        pending_bidi = list(self._credit_waiters[False])
        pending_uni = list(self._credit_waiters[True])
        info = self._closing_info()
        created = self._wall(snapshot.created_at) if snapshot is not None else None
        return SessionDiagnostics(
            session_id=self._session_id,
            control_stream_id=self._control_stream_id,
            state=self.state,
            path=self._path,
            headers=self.headers,
            created_at=created if created is not None else self._wall_anchor,
            local_max_data=limits["local_max_data"],
            local_data_sent=snapshot.data_sent if snapshot else 0,
            peer_max_data=limits["peer_max_data"],
            peer_data_sent=snapshot.data_received if snapshot else 0,
            local_max_streams_bidi=limits["local_max_streams_bidi"],
            local_streams_bidi_opened=snapshot.local_streams_bidi_opened if snapshot else 0,
            peer_max_streams_bidi=limits["peer_max_streams_bidi"],
            peer_streams_bidi_opened=snapshot.peer_streams_bidi_opened if snapshot else 0,
            local_max_streams_uni=limits["local_max_streams_uni"],
            local_streams_uni_opened=snapshot.local_streams_uni_opened if snapshot else 0,
            peer_max_streams_uni=limits["peer_max_streams_uni"],
            peer_streams_uni_opened=snapshot.peer_streams_uni_opened if snapshot else 0,
            pending_bidi_stream_futures=pending_bidi,
            pending_uni_stream_futures=pending_uni,
            datagrams_sent=snapshot.datagrams_sent if snapshot else 0,
            datagram_bytes_sent=snapshot.datagram_bytes_sent if snapshot else 0,
            datagrams_received=snapshot.datagrams_received if snapshot else 0,
            datagram_bytes_received=snapshot.datagram_bytes_received if snapshot else 0,
            close_code=info[0] if info else None,
            close_reason=info[1] if info else None,
            closed_at=self._wall(snapshot.closed_at) if snapshot else None,
            ready_at=self._wall(snapshot.ready_at) if snapshot else None,
        )

    def _limits(self) -> dict[str, int]:
        """The session's flow-control limits, from the snapshot (0 without flow control)."""
        snapshot = self._snapshot()
        names = ("local_max_data", "peer_max_data", "local_max_streams_bidi", "peer_max_streams_bidi",
                 "local_max_streams_uni", "peer_max_streams_uni", "local_data_received")
        if snapshot is None:
            return dict.fromkeys(names, 0)
        return {name: int(getattr(snapshot, name)) for name in names}

    @property
    def stats(self) -> SessionStats:
        """Statistics from the engine's snapshot (timestamps are wall-clock, for display).

        The same object is returned every time and refreshed from the engine on each access
        and when the session closes, so a reference kept across the close sees it.
        """
        stats = self._stats
        snapshot = self._snapshot()
        stats.stream_errors = self._stream_errors
        stats.protocol_errors = self._protocol_errors
        if snapshot is None:
            return stats
        bidi = snapshot.local_streams_bidi_opened + snapshot.peer_streams_bidi_opened
        uni = snapshot.local_streams_uni_opened + snapshot.peer_streams_uni_opened
        created_at = self._wall(snapshot.created_at)
        stats.created_at = created_at if created_at is not None else stats.created_at
        stats.ready_at = self._wall(snapshot.ready_at)
        stats.closed_at = self._wall(snapshot.closed_at)
        stats.monotonic_ready_at = snapshot.ready_at
        stats.monotonic_closed_at = snapshot.closed_at
        stats.streams_created = bidi + uni
        stats.streams_closed = max(0, bidi + uni - snapshot.open_streams)
        stats.bidirectional_streams = bidi
        stats.unidirectional_streams = uni
        stats.datagrams_sent = snapshot.datagrams_sent
        stats.datagrams_received = snapshot.datagrams_received
        return stats

    def get_statistics(self) -> SessionStatistics:
        """Transport and payload statistics of the session now (RTT, congestion window, bytes
        and datagrams); RTT and congestion fields read 0 once the connection is gone."""
        snapshot = self._snapshot()
        connection = self._connection_ref()
        rtt = connection.transport_rtt() if connection is not None else None
        return SessionStatistics(
            session_id=self._session_id,
            backend=connection.quic_backend if connection is not None else "",
            smoothed_rtt=rtt.smoothed if rtt else 0.0,
            min_rtt=rtt.minimum if rtt else 0.0,
            latest_rtt=rtt.latest if rtt else 0.0,
            congestion_window=rtt.congestion_window if rtt else 0,
            bytes_in_flight=rtt.bytes_in_flight if rtt else 0,
            stream_bytes_sent=snapshot.data_sent if snapshot else 0,
            stream_bytes_received=snapshot.data_received if snapshot else 0,
            datagrams_sent=snapshot.datagrams_sent if snapshot else 0,
            datagrams_received=snapshot.datagrams_received if snapshot else 0,
            datagrams_dropped=snapshot.datagrams_dropped if snapshot else 0,
            datagrams_receive_dropped=self._datagrams.receive_dropped if self._datagrams is not None else 0,
            datagram_bytes_sent=snapshot.datagram_bytes_sent if snapshot else 0,
            datagram_bytes_received=snapshot.datagram_bytes_received if snapshot else 0,
        )

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's TLS leaf certificate: the server's on a client; on a server the client's
        (mTLS, verified against ``ServerConfig.ca_certs``), None when the client sent none."""
        connection = self._connection_ref()
        return connection.peer_certificate if connection is not None else None

    def export_keying_material(self, label: bytes | str, context: bytes = b"", length: int = 32) -> bytes:
        """Keying material bound to this session (draft-15 §4.8): the connection's TLS exporter
        (RFC 8446 §7.5) with the label "EXPORTER-WebTransport" and a context made of the
        session ID, ``label`` (1-255 bytes; str is UTF-8) and ``context`` (0-255 bytes). Both
        ends of the session get the same ``length`` bytes; other sessions, labels or contexts
        get unrelated ones. ValueError for bad sizes, SessionClosedError once closed."""
        app_label = label.encode("utf-8") if isinstance(label, str) else bytes(label)
        app_context = bytes(context)
        if not 1 <= len(app_label) <= 255:
            raise ValueError(f"the exporter label must be 1-255 bytes, got {len(app_label)}")
        if len(app_context) > 255:
            raise ValueError(f"the exporter context must be at most 255 bytes, got {len(app_context)}")
        if not isinstance(length, int) or isinstance(length, bool) or not 0 <= length <= 255 * 32:
            raise ValueError(f"length must be an int in [0, 8160], got {length!r}")
        if self.state is SessionState.CLOSED:
            raise self._closed_error_or_generic(f"session {self._session_id} is closed")
        connection = self._require_connection()
        # WebTransport Exporter Context: Session ID (64), label length (8), label,
        # context length (8), context.
        exporter_context = (self._session_id.to_bytes(8, "big") + bytes([len(app_label)]) + app_label
                            + bytes([len(app_context)]) + app_context)
        return connection.export_keying_material(_WT_EXPORTER_LABEL, exporter_context, length)

    async def get_session_stats(self) -> dict[str, Any]:
        """Current statistics as a dict (SessionStats fields plus live counters)."""
        data = self.stats.to_dict()
        data["state"] = self.state.value
        data["path"] = self._path
        data["close_cause"] = self.close_cause.value if self.close_cause is not None else None
        if self._datagrams is not None:
            data["datagram"] = self._datagrams.get_stats()
        return data

    async def get_summary(self) -> dict[str, Any]:
        """A compact description for monitoring."""
        stats = self.stats
        return {
            "session_id": self._session_id,
            "state": self.state.value,
            "path": self._path,
            "uptime": stats.uptime,
            "active_streams": stats.active_streams,
            "streams_created": stats.streams_created,
            "datagrams_sent": stats.datagrams_sent,
            "datagrams_received": stats.datagrams_received,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "close_cause": self.close_cause.value if self.close_cause is not None else None,
        }

    async def debug_state(self) -> dict[str, Any]:
        """Everything useful for debugging, as plain data."""
        connection = self.connection
        diagnostics = await self.diagnostics()
        return {
            "session": await self.get_summary(),
            "stats": self.stats.to_dict(),
            "diagnostics": _asdict(diagnostics),
            "streams": [{"stream_id": s.stream_id, "state": s.state.value, "direction": s.direction.value,
                         "bytes_sent": s.bytes_sent, "bytes_received": s.bytes_received}
                        for s in self._streams.values()],
            "incoming_queue": len(self._incoming[False]) + len(self._incoming[True]),
            "connection": connection.diagnostics() if connection is not None else None,
        }

    async def diagnose_issues(self) -> list[str]:
        """Checks that point at trouble, as human-readable strings (empty when healthy)."""
        issues: list[str] = []
        connection = self.connection
        if (connection is None or connection.is_closed) and not self.is_closed:
            issues.append("the connection is closed but the session is not")
        stats = self.stats
        if stats.streams_created >= 10 and stats.stream_errors / stats.streams_created > 0.1:
            issues.append(f"high stream error rate: {stats.stream_errors}/{stats.streams_created} streams failed")
        if any(self._credit_waiters.values()):
            issues.append("stream creation is waiting for stream credit from the peer")
        snapshot = self._snapshot()
        if snapshot is not None and not self.is_closed and snapshot.flow_control:
            limits = self._limits()
            if snapshot.send_data_available == 0 and snapshot.blocked_bytes:
                issues.append("sending is stalled: the peer's WT_MAX_DATA is used up")
            if limits["local_max_data"] and limits["local_data_received"] >= limits["local_max_data"]:
                issues.append("the peer is stalled by our WT_MAX_DATA: data is not being read")
        if self._datagrams is not None and self._datagrams.receive_dropped:
            issues.append(f"{self._datagrams.receive_dropped} incoming datagrams were dropped (buffer full)")
        # Durations on the monotonic clock (the engine's), never on the wall clock.
        if (snapshot is not None and snapshot.state is SessionState.CONNECTING
                and time.monotonic() - snapshot.created_at > self._config.connect_timeout):
            issues.append("the session has been connecting for longer than connect_timeout")
        return issues

    async def monitor_health(self, *, check_interval: float = 60.0) -> None:
        """Check the session every ``check_interval`` seconds until it closes; closes the
        session if its connection died under it, and logs any issue found."""
        if check_interval <= 0:
            raise ValueError(f"check_interval must be > 0, got {check_interval}")
        while not self.is_closed:
            try:
                await asyncio.wait_for(asyncio.shield(self._closed_event.wait()), check_interval)
                return
            except asyncio.TimeoutError:
                pass
            issues = await self.diagnose_issues()
            for issue in issues:
                logger.warning("session %d: %s", self._session_id, issue)
            connection = self.connection
            if (connection is None or connection.is_closed) and not self._closed_event.is_set():
                self.handle_event(ev.SessionClosed(self._session_id, 0, "connection lost", True,
                                                   CloseCause.CONNECTION_CLOSED))

    # ------------------------------------------------------------------ structured messaging

    async def create_structured_stream(self, *, serializer: Serializer, registry: dict[int, type[Any]],
                                       timeout: float | None = None) -> StructuredStream:
        """A bidirectional stream carrying typed objects (length-prefixed, type-tagged)."""
        from pywebtransport.messaging import StructuredStream

        stream = await self.create_bidirectional_stream(timeout=timeout)
        return StructuredStream(stream=stream, serializer=serializer, registry=registry)

    async def create_structured_datagram_transport(self, *, serializer: Serializer,
                                                   registry: dict[int, type[Any]]) -> StructuredDatagramTransport:
        """Typed objects over this session's datagrams."""
        from pywebtransport.messaging import StructuredDatagramTransport

        return StructuredDatagramTransport(transport=self.datagrams, serializer=serializer, registry=registry)

    # ------------------------------------------------------------------ close info

    def _closing_info(self) -> tuple[int, str, CloseCause] | None:
        if self._close_info is not None:
            return self._close_info
        snapshot = self._snapshot()
        if snapshot is None or snapshot.state is not SessionState.CLOSED:
            return None
        return (snapshot.close_code or 0, snapshot.close_reason or "",
                snapshot.close_cause or CloseCause.CONNECTION_CLOSED)

    def closed_error(self, message: str) -> SessionClosedError | None:
        """Internal (SessionPort): the error naming this session's close; None while open."""
        info = self._closing_info()
        if info is None:
            return None
        code, reason, cause = info
        detail = f" (code {code}, {cause.value}{': ' + reason if reason else ''})"
        return session_closed_error(message + detail, error_code=code, reason=reason, cause=cause)

    def _closed_error_or_generic(self, message: str) -> SessionClosedError:
        return self.closed_error(message) or session_closed_error(message, error_code=None, reason="", cause=None)

    def ended_cleanly(self) -> bool:
        """Internal (SessionPort): closed with code 0 by either side, so iterators end quietly."""
        info = self._closing_info()
        return info is not None and info[0] == 0 and info[2] in _CLEAN_CAUSES

    # ------------------------------------------------------------------ the port streams use

    def _require_connection(self) -> WebTransportConnection:
        connection = self.connection
        if connection is None or connection.is_closed:
            raise self._closed_error_or_generic(f"session {self._session_id}: the connection is closed")
        return connection

    def _require_open(self) -> WebTransportConnection:
        state = self.state
        if state is SessionState.CONNECTING:
            raise SessionError(f"session {self._session_id} is not ready yet; await session.ready()")
        if state is SessionState.CLOSED:
            raise self._closed_error_or_generic(f"session {self._session_id} is closed")
        return self._require_connection()

    def _flush(self) -> None:
        connection = self._connection_ref()
        if connection is not None:
            connection.process_engine_events()

    def stream_send(self, stream_id: StreamId, data: bytes, end_stream: bool) -> None:
        """Internal (SessionPort): queue bytes on a stream; the engine refuses a closed session."""
        try:
            self._engine.send_stream_data(stream_id, data, end_stream)
        except (StreamClosedError, SessionError) as exc:
            closed = self.closed_error(f"stream {stream_id}: the session is closed")
            if closed is not None:
                raise closed from exc
            if isinstance(exc, StreamClosedError):
                raise
            raise StreamClosedError(str(exc)) from exc
        self._flush()

    def stream_consume(self, stream_id: StreamId, amount: int) -> None:
        """Internal (SessionPort): the application read ``amount`` bytes; return the credit."""
        connection = self._connection_ref()
        if connection is not None and not connection.is_closed:
            self._engine.consume_stream_data(stream_id, amount)
            connection.schedule_flush()

    def stream_reset(self, stream_id: StreamId, error_code: int) -> None:
        """Internal (SessionPort): RESET_STREAM."""
        connection = self._connection_ref()
        if connection is not None and not connection.is_closed:
            self._engine.reset_stream(stream_id, error_code)
            connection.process_engine_events()

    def stream_stop(self, stream_id: StreamId, error_code: int) -> None:
        """Internal (SessionPort): STOP_SENDING."""
        connection = self._connection_ref()
        if connection is not None and not connection.is_closed:
            self._engine.stop_stream(stream_id, error_code)
            connection.process_engine_events()

    def stream_buffered(self, stream_id: StreamId) -> int:
        """Internal (SessionPort): bytes written on the stream and not yet acknowledged."""
        connection = self._connection_ref()
        if connection is None or connection.is_closed:
            return 0
        return self._engine.stream_send_buffered(stream_id)

    def stream_watch_writable(self, stream_id: StreamId, low_water: int) -> bool:
        """Internal (SessionPort): have the engine announce StreamWritable for this stream
        (also when another connection of the server frees shared send budget: the engine
        then calls the wake-up, which delivers its events on the next loop turn). False when
        the connection is closed and nothing will be announced."""
        connection = self._connection_ref()
        if connection is None or connection.is_closed:
            return False
        self._engine.watch_writable(stream_id, low_water, wakeup=self._wake_connection)
        connection.process_engine_events()
        return True

    def send_room(self) -> int:
        """Internal (SessionPort): bytes writers may still queue on this connection."""
        connection = self._connection_ref()
        if connection is None or connection.is_closed:
            return 0
        return self._engine.send_buffer_room()

    def stream_finished(self, stream_id: StreamId) -> None:
        """Internal (SessionPort): both directions of the stream are done."""
        if self._streams.pop(stream_id, None) is not None:
            self._events.emit_nowait(EventType.STREAM_CLOSED, {"stream_id": stream_id})

    def datagram_send(self, payload: bytes) -> bool:
        """Internal (SessionPort): send one datagram; False when it was dropped locally."""
        # No snapshot on this hot path: the engine refuses a session that is not open.
        try:
            sent = self._engine.send_datagram(self._session_id, payload)
        except SessionError:
            self._require_open()  # raises the error that names why
            raise
        self._flush()
        return sent

    def datagram_max_size(self) -> int:
        """Internal (SessionPort): the largest datagram payload that fits now."""
        self._require_open()
        return self._engine.max_datagram_size(self._session_id)

    def datagram_counters(self) -> dict[str, int]:
        """Internal (SessionPort): the engine's datagram counters of this session."""
        snapshot = self._snapshot()
        if snapshot is None:
            return {}
        return {"datagrams_sent": snapshot.datagrams_sent, "datagram_bytes_sent": snapshot.datagram_bytes_sent,
                "datagrams_received": snapshot.datagrams_received,
                "datagram_bytes_received": snapshot.datagram_bytes_received,
                "datagrams_dropped": snapshot.datagrams_dropped}

    # ------------------------------------------------------------------ events from the connection

    def handle_event(self, event: ev.EngineEvent) -> None:
        """Internal: an engine event about this session, delivered by its connection.

        The one entry going up (as aioquic's ``quic_event_received``); stream and datagram
        events are routed on to the stream or the datagram transport they concern.
        """
        if isinstance(event, (ev.StreamDataReceived, ev.StreamStopSending, ev.StreamWritable)):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.handle_event(event)
            elif isinstance(event, ev.StreamDataReceived) and event.data:
                self.stream_consume(event.stream_id, len(event.data))  # nobody will read it
        elif isinstance(event, ev.DatagramReceived):
            self.datagrams.handle_event(event)
            if self._events.listener_count(EventType.DATAGRAM_RECEIVED):
                self._events.emit_nowait(EventType.DATAGRAM_RECEIVED, {"data": event.data})
        elif isinstance(event, ev.StreamOpened):
            self._on_stream_opened(event.stream_id, event.is_unidirectional)
        elif isinstance(event, ev.StreamReset):
            stream = self._streams.get(event.stream_id)
            if isinstance(stream, (WebTransportStream, WebTransportReceiveStream)):
                self._stream_errors += 1
                stream.handle_event(event)
        elif isinstance(event, ev.StreamCreditAvailable):
            for waiter in self._credit_waiters[event.is_unidirectional]:
                if not waiter.done():
                    waiter.set_result(None)
        elif isinstance(event, ev.SessionCreditUpdated):
            name = {ev.CreditKind.DATA: EventType.SESSION_MAX_DATA_UPDATED,
                    ev.CreditKind.STREAMS_BIDI: EventType.SESSION_MAX_STREAMS_BIDI_UPDATED,
                    ev.CreditKind.STREAMS_UNI: EventType.SESSION_MAX_STREAMS_UNI_UPDATED}[ev.CreditKind(event.kind)]
            self._events.emit_nowait(name, {"limit": event.limit})
        elif isinstance(event, ev.SessionBlocked):
            name = (EventType.SESSION_DATA_BLOCKED if event.kind == ev.CreditKind.DATA
                    else EventType.SESSION_STREAMS_BLOCKED)
            self._events.emit_nowait(name, {"kind": ev.CreditKind(event.kind).value, "limit": event.limit})
        elif isinstance(event, ev.SessionEstablished):
            self._on_established(event.headers)
        elif isinstance(event, ev.SessionDraining):
            self._events.emit_nowait(EventType.SESSION_DRAINING, {"session_id": self._session_id})
        elif isinstance(event, ev.SessionRejected):
            self._on_rejected(event.status_code, event.reason)
        elif isinstance(event, ev.SessionClosed):
            self._on_closed(event)
        elif isinstance(event, ev.ProtocolViolation):
            self._protocol_errors += 1

    def log_requested(self) -> None:
        """Internal: log at INFO that the session was requested (by the client or of the server)."""
        lifecycle_logger.info("session %d requested: path=%s", self._session_id, self._path)

    def _on_established(self, response_headers: Headers) -> None:
        self._response_headers = dict(response_headers)
        self._ready_event.set()
        lifecycle_logger.info("session %d accepted: path=%s", self._session_id, self._path)
        self._events.emit_nowait(EventType.SESSION_READY, {"session_id": self._session_id})

    def _on_rejected(self, status_code: int, reason: str) -> None:
        message = f"session rejected with status {status_code}" if status_code else f"session failed: {reason}"
        self._error = SessionRejectedError(message, status_code=status_code)
        lifecycle_logger.info("session %d rejected: path=%s status=%d %s", self._session_id, self._path,
                              status_code, reason)
        self._on_closed(ev.SessionClosed(self._session_id, 0, reason or message, True, CloseCause.REJECTED))

    def _on_closed(self, event: ev.SessionClosed) -> None:
        if self._closed_event.is_set():
            return
        snapshot = self._engine.session_snapshot(self._session_id)
        if snapshot is not None and snapshot.state is SessionState.CLOSED:
            info = (snapshot.close_code or 0, snapshot.close_reason or "",
                    snapshot.close_cause or event.cause)
            if isinstance(event.cause, CloseCause) and event.cause is CloseCause.REJECTED:
                info = (info[0], info[1], CloseCause.REJECTED)
        else:
            info = (event.error_code, event.reason, event.cause)
            if snapshot is not None:  # the engine never saw this end (its connection is gone)
                snapshot = replace(snapshot, state=SessionState.CLOSED, close_code=info[0],
                                   close_reason=info[1], close_cause=info[2],
                                   closed_at=snapshot.closed_at or time.monotonic())
        self._close_info = info
        self._final = snapshot
        _ = self.stats  # refresh the kept SessionStats with the final counters
        code, reason, cause = info
        for stream in list(self._streams.values()):
            stream.handle_event(event)
        for waiters in self._credit_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._incoming_waiters.wake()
        if self._datagrams is not None:
            self._datagrams.handle_event(event)
        self._closed_event.set()
        duration = 0.0
        if snapshot is not None and snapshot.ready_at is not None and snapshot.closed_at is not None:
            duration = snapshot.closed_at - snapshot.ready_at
        if cause is not CloseCause.REJECTED:
            lifecycle_logger.info(
                "session %d closed: path=%s code=%d reason=%r cause=%s by_peer=%s duration=%.3fs "
                "bytes_sent=%d bytes_received=%d", self._session_id, self._path, code, reason, cause.value,
                event.by_peer, duration, snapshot.data_sent if snapshot else 0,
                snapshot.data_received if snapshot else 0)
        self._events.emit_nowait(EventType.SESSION_CLOSED, {"session_id": self._session_id, "error_code": code,
                                                            "reason": reason, "by_peer": event.by_peer,
                                                            "cause": cause})

    def _on_stream_opened(self, stream_id: StreamId, is_unidirectional: bool) -> None:
        stream: StreamType
        if is_unidirectional:
            stream = WebTransportReceiveStream(session=self, stream_id=stream_id)
        else:
            stream = WebTransportStream(session=self, stream_id=stream_id)
        waiting = len(self._incoming[False]) + len(self._incoming[True])
        if waiting >= self._config.max_incoming_streams_queue:
            logger.warning("session %d: incoming stream queue full; refusing stream %d", self._session_id, stream_id)
            self._stream_errors += 1
            if not is_unidirectional:
                self._engine.reset_stream(stream_id, 0)
            self._engine.stop_stream(stream_id, 0)
            return
        self._register_stream(stream)
        self._arrivals += 1
        self._incoming[is_unidirectional].append((self._arrivals, stream))
        self._incoming_waiters.wake()

    def __repr__(self) -> str:
        return f"<WebTransportSession id={self._session_id} path={self._path!r} state={self.state.value}>"


def _connection_waker(loop: asyncio.AbstractEventLoop,
                      connection_ref: weakref.ref[WebTransportConnection]) -> Callable[[], None]:
    """A wake-up for the engine (see ``watch_writable``): called from inside another
    connection's engine, it delivers this connection's events on the next loop turn. It holds
    neither the session nor the connection, so the engine keeping it keeps nothing alive."""

    def wake() -> None:
        connection = connection_ref()
        if connection is not None and not connection.is_closed:
            loop.call_soon(connection.process_engine_events)

    return wake


def _asdict(diagnostics: SessionDiagnostics) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SessionDiagnostics.__slots__:
        value = getattr(diagnostics, name)
        out[name] = value.value if isinstance(value, SessionState) else value
    out["pending_bidi_stream_futures"] = len(diagnostics.pending_bidi_stream_futures)
    out["pending_uni_stream_futures"] = len(diagnostics.pending_uni_stream_futures)
    return out
