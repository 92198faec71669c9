"""WebTransportSession: one WebTransport session over a shared QUIC connection."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
import weakref
from collections import deque
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from pywebtransport._waiters import Waiters
from pywebtransport.datagram import WebTransportDatagramTransport
from pywebtransport.events import EventEmitter, EventType
from pywebtransport.exceptions import (
    FlowControlError,
    SessionClosedError,
    SessionError,
    SessionRejectedError,
    StreamClosedError,
    TimeoutError,
)
from pywebtransport.session.stats import SessionDiagnostics, SessionStats
from pywebtransport.stream import StreamType, WebTransportReceiveStream, WebTransportSendStream, WebTransportStream
from pywebtransport.types import Headers, SessionId, SessionState, StreamId

if TYPE_CHECKING:
    from pywebtransport.connection import WebTransportConnection
    from pywebtransport.messaging import Serializer, StructuredDatagramTransport, StructuredStream
    from pywebtransport.protocol import WebTransportProtocolHandler

__all__ = ["WebTransportSession"]

logger = logging.getLogger(__name__)


class WebTransportSession:
    """A WebTransport session: streams and datagrams multiplexed over one QUIC connection.

    Sessions are made by a connection (``WebTransportClient.connect`` or a server handler),
    not by hand. Use as ``async with session:`` to close it on exit.
    """

    def __init__(self, *, connection: WebTransportConnection, session_id: SessionId, path: str,
                 headers: Headers, control_stream_id: StreamId | None) -> None:
        self._connection_ref: weakref.ref[WebTransportConnection] = weakref.ref(connection)
        self._config = connection.config
        self._loop = asyncio.get_running_loop()
        self._session_id = session_id
        self._path = path
        self._headers = dict(headers)
        self._control_stream_id = session_id if control_stream_id is None else control_stream_id
        self._state = SessionState.CONNECTING
        self._events = EventEmitter()
        self._streams: dict[StreamId, StreamType] = {}
        self._incoming: deque[StreamType] = deque()
        self._incoming_waiters = Waiters()
        self._ready_event = asyncio.Event()
        self._closed_event = asyncio.Event()
        self._credit_waiters: dict[bool, list[asyncio.Future[None]]] = {False: [], True: []}
        self._drain_watch: set[WebTransportStream | WebTransportSendStream] = set()
        self._datagrams: WebTransportDatagramTransport | None = None
        self._error: BaseException | None = None
        self._close_code: int | None = None
        self._close_reason: str | None = None
        self._response_headers: Headers = {}
        self._stats = SessionStats(session_id=session_id, created_at=time.time())
        self._health_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def connection(self) -> WebTransportConnection | None:
        """The parent connection (weakly referenced: None once it is gone)."""
        return self._connection_ref()

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
    def path(self) -> str:
        return self._path

    @property
    def session_id(self) -> SessionId:
        return self._session_id

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def is_ready(self) -> bool:
        return self._state in (SessionState.CONNECTED, SessionState.DRAINING)

    @property
    def is_closed(self) -> bool:
        return self._state is SessionState.CLOSED

    @property
    def close_code(self) -> int | None:
        return self._close_code

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

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
        first, TimeoutError after ``timeout`` seconds.
        """
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
            raise SessionClosedError(f"session {self._session_id} closed before it was ready",
                                     error_code=self._close_code, reason=self._close_reason or "")

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
            engine = connection.protocol_handler
            if self.is_ready:
                finished = engine.finished_unacknowledged_streams(self._session_id)
                if finished and not await connection.wait_acknowledged(finished, timeout=linger):
                    logger.info("session %d: %d finished stream(s) not acknowledged within %.1fs; resetting",
                                self._session_id, len(finished), linger)
            if not self.is_closed and not connection.is_closed:
                engine.close_session(self._session_id, error_code, reason or "")
                connection._after_engine_call()
        if not self.is_closed:  # the connection was already gone
            self._on_closed(error_code, reason or "", by_peer=False)
        if close_connection and connection is not None:
            if not connection.is_closed:
                await connection.wait_acknowledged([self._session_id], timeout=linger)
            await connection.close()

    async def drain(self) -> None:
        """Ask the peer to wind the session down (WT_DRAIN_SESSION)."""
        connection = self._require_connection()
        connection.protocol_handler.drain_session(self._session_id)
        connection._after_engine_call()

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
            engine = connection.protocol_handler
            if engine.can_open_stream(self._session_id, is_unidirectional):
                stream_id = engine.open_stream(self._session_id, is_unidirectional=is_unidirectional)
                connection._after_engine_call()
                stream: StreamType
                if is_unidirectional:
                    stream = WebTransportSendStream(session=self, stream_id=stream_id)
                else:
                    stream = WebTransportStream(session=self, stream_id=stream_id)
                self._register_stream(stream, is_unidirectional)
                return stream
            session_record = engine.session(self._session_id)
            if session_record is not None and session_record.flow_control:
                try:  # tells the peer we are blocked (WT_STREAMS_BLOCKED)
                    engine.open_stream(self._session_id, is_unidirectional=is_unidirectional)
                except FlowControlError:
                    connection._after_engine_call()
            waiter = self._loop.create_future()
            self._credit_waiters[is_unidirectional].append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - self._loop.time()))
            except asyncio.TimeoutError:
                kind = "unidirectional" if is_unidirectional else "bidirectional"
                raise TimeoutError(f"session {self._session_id}: no {kind} stream credit within {timeout}s") from None
            finally:
                if waiter in self._credit_waiters[is_unidirectional]:
                    self._credit_waiters[is_unidirectional].remove(waiter)

    def _register_stream(self, stream: StreamType, is_unidirectional: bool) -> None:
        self._streams[stream.stream_id] = stream
        self._stats.streams_created += 1
        if is_unidirectional:
            self._stats.unidirectional_streams += 1
        else:
            self._stats.bidirectional_streams += 1
        self._events.emit_nowait(EventType.STREAM_OPENED, {"stream": stream, "stream_id": stream.stream_id})

    async def incoming_streams(self) -> AsyncGenerator[StreamType, None]:
        """Streams the peer opens, as they arrive, until the session closes."""
        while True:
            if self._incoming:
                yield self._incoming.popleft()
                continue
            if self.is_closed:
                return
            await self._incoming_waiters.wait()

    async def accept_stream(self, *, timeout: float | None = None) -> StreamType:
        """The next stream the peer opens; TimeoutError after ``timeout`` seconds."""
        iterator = self.incoming_streams()
        try:
            return await asyncio.wait_for(iterator.__anext__(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no incoming stream within {timeout}s") from None
        except StopAsyncIteration:
            raise SessionClosedError("the session closed while waiting for a stream",
                                     error_code=self._close_code, reason=self._close_reason or "") from None
        finally:
            await iterator.aclose()

    # ------------------------------------------------------------------ datagrams & credit

    async def send_datagram(self, *, data: bytes | bytearray | memoryview | str) -> None:
        """Send one unreliable datagram (DatagramTooLargeError if it cannot fit)."""
        await self.datagrams.send(data)

    async def grant_data_credit(self, *, max_data: int) -> None:
        """Raise the session's WT_MAX_DATA for the peer (only ever grows)."""
        connection = self._require_open()
        connection.protocol_handler.grant_data_credit(self._session_id, max_data)
        connection._after_engine_call()

    async def grant_streams_credit(self, *, max_streams: int, is_unidirectional: bool) -> None:
        """Raise the session's WT_MAX_STREAMS of one kind for the peer (only ever grows)."""
        connection = self._require_open()
        connection.protocol_handler.grant_streams_credit(self._session_id, max_streams, is_unidirectional)
        connection._after_engine_call()

    # ------------------------------------------------------------------ diagnostics

    async def diagnostics(self) -> SessionDiagnostics:
        """A snapshot of the session's protocol state from the engine."""
        connection = self.connection
        record = connection.protocol_handler.session(self._session_id) if connection is not None else None
        pending_bidi = list(self._credit_waiters[False])
        pending_uni = list(self._credit_waiters[True])
        if record is None:
            return SessionDiagnostics(
                session_id=self._session_id, control_stream_id=self._control_stream_id, state=self._state,
                path=self._path, headers=self.headers, created_at=self._stats.created_at,
                local_max_data=0, local_data_sent=0, peer_max_data=0, peer_data_sent=0,
                local_max_streams_bidi=0, local_streams_bidi_opened=0, peer_max_streams_bidi=0,
                peer_streams_bidi_opened=0, local_max_streams_uni=0, local_streams_uni_opened=0,
                peer_max_streams_uni=0, peer_streams_uni_opened=0,
                pending_bidi_stream_futures=pending_bidi, pending_uni_stream_futures=pending_uni,
                close_code=self._close_code, close_reason=self._close_reason,
                closed_at=self._stats.closed_at, ready_at=self._stats.ready_at)
        return SessionDiagnostics(
            session_id=self._session_id,
            control_stream_id=self._control_stream_id,
            state=self._state,
            path=self._path,
            headers=self.headers,
            created_at=self._stats.created_at,
            local_max_data=record.recv_data.limit,
            local_data_sent=record.data_sent,
            peer_max_data=record.send_data.limit,
            peer_data_sent=record.data_received,
            local_max_streams_bidi=record.recv_streams_bidi.limit,
            local_streams_bidi_opened=record.local_streams_bidi_opened,
            peer_max_streams_bidi=record.send_streams_bidi.limit,
            peer_streams_bidi_opened=record.peer_streams_bidi_opened,
            local_max_streams_uni=record.recv_streams_uni.limit,
            local_streams_uni_opened=record.local_streams_uni_opened,
            peer_max_streams_uni=record.send_streams_uni.limit,
            peer_streams_uni_opened=record.peer_streams_uni_opened,
            pending_bidi_stream_futures=pending_bidi,
            pending_uni_stream_futures=pending_uni,
            datagrams_sent=record.datagrams_sent,
            datagram_bytes_sent=record.datagram_bytes_sent,
            datagrams_received=record.datagrams_received,
            datagram_bytes_received=record.datagram_bytes_received,
            close_code=self._close_code,
            close_reason=self._close_reason,
            closed_at=self._stats.closed_at,
            ready_at=self._stats.ready_at,
        )

    @property
    def stats(self) -> SessionStats:
        return self._stats

    async def get_session_stats(self) -> dict[str, Any]:
        """Current statistics as a dict (SessionStats fields plus live counters)."""
        data = self._stats.to_dict()
        data["state"] = self._state.value
        data["path"] = self._path
        if self._datagrams is not None:
            data["datagram"] = self._datagrams.get_stats()
        return data

    async def get_summary(self) -> dict[str, Any]:
        """A compact description for monitoring."""
        return {
            "session_id": self._session_id,
            "state": self._state.value,
            "path": self._path,
            "uptime": self._stats.uptime,
            "active_streams": self._stats.active_streams,
            "streams_created": self._stats.streams_created,
            "datagrams_sent": self._stats.datagrams_sent,
            "datagrams_received": self._stats.datagrams_received,
            "close_code": self._close_code,
            "close_reason": self._close_reason,
        }

    async def debug_state(self) -> dict[str, Any]:
        """Everything useful for debugging, as plain data."""
        connection = self.connection
        diagnostics = await self.diagnostics()
        return {
            "session": await self.get_summary(),
            "stats": self._stats.to_dict(),
            "diagnostics": _asdict(diagnostics),
            "streams": [{"stream_id": s.stream_id, "state": s.state.value, "direction": s.direction.value,
                         "bytes_sent": s.bytes_sent, "bytes_received": s.bytes_received}
                        for s in self._streams.values()],
            "incoming_queue": len(self._incoming),
            "connection": connection.diagnostics() if connection is not None else None,
        }

    async def diagnose_issues(self) -> list[str]:
        """Checks that point at trouble, as human-readable strings (empty when healthy)."""
        issues: list[str] = []
        connection = self.connection
        if (connection is None or connection.is_closed) and not self.is_closed:
            issues.append("the connection is closed but the session is not")
        stats = self._stats
        if stats.streams_created >= 10 and stats.stream_errors / stats.streams_created > 0.1:
            issues.append(f"high stream error rate: {stats.stream_errors}/{stats.streams_created} streams failed")
        if any(self._credit_waiters.values()):
            issues.append("stream creation is waiting for stream credit from the peer")
        if connection is not None and not self.is_closed:
            record = connection.protocol_handler.session(self._session_id)
            if record is not None and record.flow_control:
                if record.send_data.available == 0 and record.blocked_streams:
                    issues.append("sending is stalled: the peer's WT_MAX_DATA is used up")
                if record.recv_data.limit and record.recv_data.received >= record.recv_data.limit:
                    issues.append("the peer is stalled by our WT_MAX_DATA: data is not being read")
        if self._datagrams is not None and self._datagrams.receive_dropped:
            issues.append(f"{self._datagrams.receive_dropped} incoming datagrams were dropped (buffer full)")
        if self._state is SessionState.CONNECTING and time.time() - stats.created_at > self._config.connect_timeout:
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
            if connection is None or connection.is_closed:
                self._on_closed(0, "connection lost", by_peer=False)

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

    # ------------------------------------------------------------------ used by streams

    def _require_connection(self) -> WebTransportConnection:
        connection = self.connection
        if connection is None or connection.is_closed:
            raise SessionClosedError(f"session {self._session_id}: the connection is closed",
                                     error_code=self._close_code, reason=self._close_reason or "")
        return connection

    def _require_open(self) -> WebTransportConnection:
        if self._state is SessionState.CONNECTING:
            raise SessionError(f"session {self._session_id} is not ready yet; await session.ready()")
        if not self.is_ready:
            raise SessionClosedError(f"session {self._session_id} is closed", error_code=self._close_code,
                                     reason=self._close_reason or "")
        return self._require_connection()

    def _consume(self, stream_id: StreamId, amount: int) -> None:
        connection = self.connection
        if connection is not None and not connection.is_closed:
            connection.protocol_handler.consume_stream_data(stream_id, amount)
            connection._schedule_flush()

    def _send(self, stream_id: StreamId, data: bytes, end_stream: bool) -> None:
        connection = self._require_open()
        try:
            connection.protocol_handler.send_stream_data(stream_id, data, end_stream)
        except SessionError as exc:
            raise StreamClosedError(str(exc)) from exc
        connection._after_engine_call()

    def _send_buffered(self, stream_id: StreamId) -> int:
        connection = self.connection
        if connection is None or connection.is_closed:
            return 0
        return connection.protocol_handler.stream_send_buffered(stream_id)

    def _reset_stream(self, stream_id: StreamId, error_code: int) -> None:
        connection = self.connection
        if connection is not None and not connection.is_closed:
            connection.protocol_handler.reset_stream(stream_id, error_code)
            connection._after_engine_call()

    def _stop_stream(self, stream_id: StreamId, error_code: int) -> None:
        connection = self.connection
        if connection is not None and not connection.is_closed:
            connection.protocol_handler.stop_stream(stream_id, error_code)
            connection._after_engine_call()

    def _watch_drain(self, stream: WebTransportStream | WebTransportSendStream) -> None:
        self._drain_watch.add(stream)

    def _on_stream_closed(self, stream: StreamType) -> None:
        if self._streams.pop(stream.stream_id, None) is not None:
            self._stats.streams_closed += 1
            self._events.emit_nowait(EventType.STREAM_CLOSED, {"stream_id": stream.stream_id})

    def _max_datagram_size(self) -> int:
        connection = self._require_open()
        return connection.protocol_handler.max_datagram_size(self._session_id)

    def _send_datagram(self, payload: bytes) -> bool:
        connection = self._require_open()
        sent = connection.protocol_handler.send_datagram(self._session_id, payload)
        connection._after_engine_call()
        if sent:
            self._stats.datagrams_sent += 1
        return sent

    # ------------------------------------------------------------------ fed by the connection

    def _on_established(self, response_headers: Headers) -> None:
        self._response_headers = dict(response_headers)
        self._state = SessionState.CONNECTED
        self._stats.ready_at = time.time()
        self._ready_event.set()
        self._events.emit_nowait(EventType.SESSION_READY, {"session_id": self._session_id})

    def _on_rejected(self, status_code: int, reason: str) -> None:
        message = f"session rejected with status {status_code}" if status_code else f"session failed: {reason}"
        self._error = SessionRejectedError(message, status_code=status_code)
        self._on_closed(0, reason or message, by_peer=True)

    def _on_draining(self) -> None:
        if self._state is SessionState.CONNECTED:
            self._state = SessionState.DRAINING
            self._events.emit_nowait(EventType.SESSION_DRAINING, {"session_id": self._session_id})

    def _on_closed(self, error_code: int, reason: str, *, by_peer: bool) -> None:
        if self._state is SessionState.CLOSED:
            return
        self._state = SessionState.CLOSED
        self._close_code = error_code
        self._close_reason = reason
        self._stats.closed_at = time.time()
        for stream in list(self._streams.values()):
            stream._on_session_closed()
        for waiters in self._credit_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._incoming_waiters.wake()
        if self._datagrams is not None:
            self._datagrams._on_session_closed()
        self._closed_event.set()
        self._events.emit_nowait(EventType.SESSION_CLOSED, {"session_id": self._session_id, "error_code": error_code,
                                                            "reason": reason, "by_peer": by_peer})

    def _on_stream_opened(self, stream_id: StreamId, is_unidirectional: bool) -> StreamType | None:
        stream: StreamType
        if is_unidirectional:
            stream = WebTransportReceiveStream(session=self, stream_id=stream_id)
        else:
            stream = WebTransportStream(session=self, stream_id=stream_id)
        if len(self._incoming) >= self._config.max_incoming_streams_queue:
            logger.warning("session %d: incoming stream queue full; refusing stream %d", self._session_id, stream_id)
            self._stats.stream_errors += 1
            connection = self.connection
            if connection is not None:
                if not is_unidirectional:
                    connection.protocol_handler.reset_stream(stream_id, 0)
                connection.protocol_handler.stop_stream(stream_id, 0)
            return None
        self._register_stream(stream, is_unidirectional)
        self._incoming.append(stream)
        self._incoming_waiters.wake()
        return stream

    def _on_stream_data(self, stream_id: StreamId, data: bytes, end_stream: bool) -> None:
        stream = self._streams.get(stream_id)
        if isinstance(stream, (WebTransportStream, WebTransportReceiveStream)):
            stream._on_data(data, end_stream)
        elif data:
            self._consume(stream_id, len(data))  # nobody will read it: give the credit back

    def _on_stream_reset(self, stream_id: StreamId, error_code: int) -> None:
        stream = self._streams.get(stream_id)
        if isinstance(stream, (WebTransportStream, WebTransportReceiveStream)):
            self._stats.stream_errors += 1
            stream._on_reset(error_code)

    def _on_stop_sending(self, stream_id: StreamId, error_code: int) -> None:
        stream = self._streams.get(stream_id)
        if isinstance(stream, (WebTransportStream, WebTransportSendStream)):
            stream._on_stop_sending(error_code)

    def _on_datagram(self, payload: bytes) -> None:
        self._stats.datagrams_received += 1
        self.datagrams._on_datagram(payload)
        if self._events.listener_count(EventType.DATAGRAM_RECEIVED):
            self._events.emit_nowait(EventType.DATAGRAM_RECEIVED, {"data": payload})

    def _on_protocol_error(self) -> None:
        self._stats.protocol_errors += 1

    def _wake_blocked(self) -> None:
        """Something changed (acks, credit): let blocked writers and stream openers retry."""
        for waiters in self._credit_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        if self._drain_watch:
            watch, self._drain_watch = self._drain_watch, set()
            for stream in watch:
                stream._wake_drain()

    def __repr__(self) -> str:
        return f"<WebTransportSession id={self._session_id} path={self._path!r} state={self._state.value}>"


def _asdict(diagnostics: SessionDiagnostics) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SessionDiagnostics.__slots__:
        value = getattr(diagnostics, name)
        out[name] = value.value if isinstance(value, SessionState) else value
    out["pending_bidi_stream_futures"] = len(diagnostics.pending_bidi_stream_futures)
    out["pending_uni_stream_futures"] = len(diagnostics.pending_uni_stream_futures)
    return out
