"""Events the sans-I/O engine hands to the layer above, named for what happened."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pywebtransport.types import CloseCause

if TYPE_CHECKING:
    from pywebtransport._protocol.settings import Dialect

__all__ = [
    "ConnectionIdIssued",
    "ConnectionIdRetired",
    "ConnectionTerminated",
    "CreditKind",
    "DatagramReceived",
    "EngineEvent",
    "GoawayReceived",
    "H3Ready",
    "ProtocolViolation",
    "SessionBlocked",
    "SessionClosed",
    "SessionCreditUpdated",
    "SessionDraining",
    "SessionEstablished",
    "SessionRejected",
    "SessionRequested",
    "StreamCreditAvailable",
    "StreamDataReceived",
    "StreamOpened",
    "StreamReset",
    "StreamStopSending",
    "StreamWritable",
]


class CreditKind(str, enum.Enum):
    """Which session limit a credit event is about (draft-15 §5.6 capsules)."""

    DATA = "data"  # WT_MAX_DATA / WT_DATA_BLOCKED
    STREAMS_BIDI = "streams_bidi"  # WT_MAX_STREAMS / WT_STREAMS_BLOCKED, bidirectional
    STREAMS_UNI = "streams_uni"  # WT_MAX_STREAMS / WT_STREAMS_BLOCKED, unidirectional


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """Base class of every engine event."""


@dataclass(frozen=True, slots=True)
class H3Ready(EngineEvent):
    """The peer's SETTINGS arrived; ``dialect`` names the WebTransport draft it speaks."""

    settings: dict[int, int]
    dialect: Dialect | None  # None: the peer announced no WebTransport


@dataclass(frozen=True, slots=True)
class ConnectionIdIssued(EngineEvent):
    """QUIC issued a new local connection id: packets carrying it belong to this connection."""

    connection_id: bytes


@dataclass(frozen=True, slots=True)
class ConnectionIdRetired(EngineEvent):
    """A local connection id is no longer in use."""

    connection_id: bytes


@dataclass(frozen=True, slots=True)
class ConnectionTerminated(EngineEvent):
    """The QUIC connection is gone (closed by either side or timed out). ``application``: the
    code is an HTTP/3 one (else a QUIC transport code, a TLS alert among them)."""

    error_code: int
    reason: str
    by_peer: bool
    application: bool = False


@dataclass(frozen=True, slots=True)
class ProtocolViolation(EngineEvent):
    """The peer broke the protocol and the connection is being closed with ``error_code``, an
    :class:`~pywebtransport.constants.H3ErrorCode` or ``WTErrorCode`` member (its name via
    :func:`~pywebtransport.constants.describe_code`)."""

    error_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class GoawayReceived(EngineEvent):
    """The peer will accept no request/session above ``last_id`` (RFC 9114 §5.2)."""

    last_id: int


@dataclass(frozen=True, slots=True)
class SessionRequested(EngineEvent):
    """Server side: a client asked for a session; accept or reject it."""

    session_id: int
    path: str
    authority: str
    origin: str | None
    protocol: str
    headers: dict[str, str]
    #: The client's WT-Available-Protocols offer, in its order (draft-15 §3.3).
    available_protocols: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionEstablished(EngineEvent):
    """The session is usable (2xx answered or received); ``protocol`` is the negotiated
    subprotocol (WT-Protocol, draft-15 §3.3), None when none was chosen."""

    session_id: int
    headers: dict[str, str]
    protocol: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRejected(EngineEvent):
    """Client side: the server answered the CONNECT with ``status_code`` (or never could)."""

    session_id: int
    status_code: int
    headers: dict[str, str]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SessionDraining(EngineEvent):
    """The peer sent WT_DRAIN_SESSION: wind down, no new work."""

    session_id: int


@dataclass(frozen=True, slots=True)
class SessionClosed(EngineEvent):
    """The session ended; ``error_code``/``reason`` come from WT_CLOSE_SESSION (0/"" if none).
    With ``cause`` SESSION_ERROR, ``error_code`` is the HTTP/3 code the CONNECT stream was
    reset with (e.g. WT_FLOW_CONTROL_ERROR), not an application code."""

    session_id: int
    error_code: int
    reason: str
    by_peer: bool
    cause: CloseCause = CloseCause.PEER_CLOSE


@dataclass(frozen=True, slots=True)
class SessionCreditUpdated(EngineEvent):
    """The peer raised a session limit (WT_MAX_DATA / WT_MAX_STREAMS, draft-15 §5.6)."""

    session_id: int
    kind: CreditKind
    limit: int


@dataclass(frozen=True, slots=True)
class SessionBlocked(EngineEvent):
    """The peer reported it is blocked by one of our limits (a *_BLOCKED capsule)."""

    session_id: int
    kind: CreditKind
    limit: int


@dataclass(frozen=True, slots=True)
class StreamOpened(EngineEvent):
    """The peer opened a stream in a session."""

    session_id: int
    stream_id: int
    is_unidirectional: bool


@dataclass(frozen=True, slots=True)
class StreamDataReceived(EngineEvent):
    """Payload arrived on a session stream; ``end_stream`` marks the peer's FIN."""

    session_id: int
    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(frozen=True, slots=True)
class StreamReset(EngineEvent):
    """The peer reset its sending side. ``error_code`` is the application code when the
    HTTP/3 code is in the WebTransport range (draft-15 §4.4), None when it carries no
    application code; ``http_error_code`` is always the raw code."""

    session_id: int
    stream_id: int
    error_code: int | None
    http_error_code: int


@dataclass(frozen=True, slots=True)
class StreamStopSending(EngineEvent):
    """The peer asked us to stop sending; codes as in :class:`StreamReset`."""

    session_id: int
    stream_id: int
    error_code: int | None
    http_error_code: int


@dataclass(frozen=True, slots=True)
class DatagramReceived(EngineEvent):
    """An HTTP datagram for a session."""

    session_id: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class StreamWritable(EngineEvent):
    """A stream watched with ``watch_writable`` has at most its low-water mark of bytes
    unacknowledged (or can no longer be written): its writer may go on. Emitted once."""

    session_id: int
    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamCreditAvailable(EngineEvent):
    """A session watched with ``watch_stream_credit`` may open one more stream of this kind
    (both QUIC MAX_STREAMS and session credit allow it), or it closed. Emitted once."""

    session_id: int
    is_unidirectional: bool
