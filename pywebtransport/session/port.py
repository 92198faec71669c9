"""What a stream or a datagram transport may ask of its session (internal, not exported).

Streams and the datagram transport never touch the session's or the connection's
internals: they call this small port going down, and receive engine events through their
own ``handle_event`` going up, as aioquic's protocol objects receive ``quic_event_received``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pywebtransport.config import ClientConfig, ServerConfig
    from pywebtransport.events import EventEmitter, EventType
    from pywebtransport.exceptions import SessionClosedError
    from pywebtransport.types import SessionId, StreamId

__all__ = ["SessionPort"]


class SessionPort(Protocol):
    """The operations a session offers to its own streams and datagram transport."""

    @property
    def session_id(self) -> SessionId: ...

    @property
    def config(self) -> ClientConfig | ServerConfig: ...

    @property
    def events(self) -> EventEmitter: ...

    def has_listeners(self, event_type: EventType) -> bool:
        """Whether a handler listens for ``event_type`` on the session (makes no emitter)."""
        ...

    @property
    def is_closed(self) -> bool: ...

    def closed_error(self, message: str) -> SessionClosedError | None:
        """The error naming the session's close (code, reason, cause); None while it is open."""
        ...

    def ended_cleanly(self) -> bool:
        """Whether the session is closed with code 0 by either side (iteration ends quietly)."""
        ...

    def stream_send(self, stream_id: StreamId, data: bytes, end_stream: bool) -> None: ...

    def stream_consume(self, stream_id: StreamId, amount: int) -> None: ...

    def stream_reset(self, stream_id: StreamId, error_code: int) -> None: ...

    def stream_stop(self, stream_id: StreamId, error_code: int) -> None: ...

    def stream_buffered(self, stream_id: StreamId) -> int: ...

    def stream_watch_writable(self, stream_id: StreamId, low_water: int) -> bool:
        """Have a StreamWritable announced once the stream is at most ``low_water`` bytes
        behind and the connection has send room (``send_room() > 0``); False when nothing
        will be announced because the connection is closed."""
        ...

    def send_room(self) -> int:
        """Bytes writers may still queue on the connection (its send buffer bound and the
        server's send budget); 0 means wait for StreamWritable."""
        ...

    def stream_finished(self, stream_id: StreamId) -> None: ...

    def stream_failed(self, stream_id: StreamId) -> None:
        """The peer's reset cut the stream's reading short (counted in ``stats.stream_errors``)."""
        ...

    def datagram_send(self, payload: bytes) -> bool: ...

    def datagram_max_size(self) -> int: ...

    def datagram_counters(self) -> dict[str, int]:
        """The engine's datagram counters of the session (the one place they are kept)."""
        ...
