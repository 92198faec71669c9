"""Type aliases and state enums shared by every layer."""

from __future__ import annotations

from enum import Enum
from typing import TypeAlias

__all__ = [
    "Address",
    "CloseCause",
    "ConnectionId",
    "ConnectionState",
    "Data",
    "Headers",
    "SessionId",
    "SessionState",
    "StreamDirection",
    "StreamId",
    "StreamState",
]

#: A WebTransport session id: the QUIC stream id of the session's CONNECT stream.
SessionId: TypeAlias = int
#: A QUIC stream id.
StreamId: TypeAlias = int
#: A connection id as this library names connections (stable, printable).
ConnectionId: TypeAlias = str
#: HTTP header fields, lower-case names, pseudo-headers included where relevant.
Headers: TypeAlias = dict[str, str]
#: Payload accepted by send/write calls; ``str`` is encoded as UTF-8.
Data: TypeAlias = bytes | bytearray | memoryview | str
#: A UDP address as asyncio gives it.
Address: TypeAlias = tuple[str, int]


class SessionState(str, Enum):
    """Life cycle of a session: CONNECTING -> CONNECTED -> DRAINING -> CLOSED."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DRAINING = "draining"
    CLOSING = "closing"
    CLOSED = "closed"


class ConnectionState(str, Enum):
    """Life cycle of a QUIC/HTTP3 connection."""

    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


class StreamDirection(str, Enum):
    """Which ways a stream carries data, from the local endpoint's point of view."""

    BIDIRECTIONAL = "bidirectional"
    SEND_ONLY = "send_only"
    RECEIVE_ONLY = "receive_only"


class StreamState(str, Enum):
    """State of a WebTransport stream (RFC 9000 §3 folded to what users need)."""

    OPEN = "open"
    HALF_CLOSED_LOCAL = "half_closed_local"  # we sent FIN; peer may still send
    HALF_CLOSED_REMOTE = "half_closed_remote"  # peer sent FIN; we may still send
    RESET_SENT = "reset_sent"
    RESET_RECEIVED = "reset_received"
    CLOSED = "closed"


class CloseCause(str, Enum):
    """Why a session ended, as a session's close info and events report it."""

    LOCAL_CLOSE = "local-close"  # this side called close()
    PEER_CLOSE = "peer-close"  # the peer sent WT_CLOSE_SESSION or ended the CONNECT stream (FIN)
    #: The peer reset the CONNECT stream (or stopped it with a code other than
    #: WT_SESSION_GONE): an abrupt end, which draft-15 §6 does not equate with a clean close.
    PEER_RESET = "peer-reset"
    REJECTED = "rejected"  # the CONNECT request was refused (either side)
    SESSION_ERROR = "session-error"  # a protocol or flow-control error ended this session only
    CONNECTION_CLOSED = "connection-closed"  # this side closed the QUIC connection
    PEER_CONNECTION_CLOSE = "peer-connection-close"  # the peer sent CONNECTION_CLOSE
    IDLE_TIMEOUT = "idle-timeout"  # nothing arrived within the negotiated idle timeout
    CONNECTION_ERROR = "connection-error"  # a protocol error closed the whole connection
