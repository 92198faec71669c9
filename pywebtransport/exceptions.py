"""One exception hierarchy under :class:`WebTransportError`.

Errors that correspond to a code on the wire carry it as ``error_code``: an HTTP/3 code
(``H3_*``, :class:`~pywebtransport.constants.H3ErrorCode`), a WebTransport code (``WT_*``,
:class:`~pywebtransport.constants.WTErrorCode`), or a peer's application error code.
Protocol errors name their code in ``str()`` (:func:`~pywebtransport.constants.describe_code`).
"""

from __future__ import annotations

import builtins
import errno
from typing import TYPE_CHECKING, ClassVar

from pywebtransport import constants as c

if TYPE_CHECKING:
    from pywebtransport.types import CloseCause

__all__ = [
    "BufferReadError",
    "CapsuleError",
    "CertificateError",
    "ClientError",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "DatagramError",
    "DatagramTooLargeError",
    "FlowControlError",
    "FrameError",
    "HandshakeError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "ServerError",
    "SessionClosedError",
    "SessionError",
    "SessionRejectedError",
    "SettingsError",
    "StreamClosedError",
    "StreamError",
    "StreamResetError",
    "StreamStopSendingError",
    "TimeoutError",
    "WebTransportError",
    "WireError",
]


class WebTransportError(Exception):
    """Base of every error this library raises on purpose."""

    default_code: int | None = None
    #: Whether ``error_code`` is an HTTP/3-space code (H3_*, WT_*), which ``str()`` names
    #: ("... [H3_FRAME_ERROR (0x106)]"); other codes (a peer's application code, a QUIC
    #: transport code) are shown as numbers, since a name could be wrong for them.
    _http3_code: ClassVar[bool] = False

    def __init__(self, message: str = "", *, error_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = self.default_code if error_code is None else error_code

    def __str__(self) -> str:
        if self.error_code is None:
            return self.message
        if self._http3_code:
            return f"{self.message} [{c.describe_code(self.error_code)}]"
        return f"{self.message} (error code {self.error_code:#x})"


class ConfigurationError(WebTransportError, ValueError):
    """A configuration value is invalid; the message names the field and the value."""


class CertificateError(WebTransportError):
    """A certificate or key could not be created, loaded or verified."""


class ProtocolError(WebTransportError):
    """The protocol was broken; ``error_code`` is the code to close or reset with.

    Raised as :class:`RemoteProtocolError` when the peer broke it and as
    :class:`LocalProtocolError` when this side asked for something the protocol forbids
    (h11's split): only the first closes a connection or session blaming the peer.
    """

    default_code: int | None = c.H3_GENERAL_PROTOCOL_ERROR
    _http3_code = True


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol (a frame, capsule, setting or stream it must not send)."""


class LocalProtocolError(ProtocolError):
    """This side asked the engine for something the protocol forbids now (no credit, wrong
    state, wrong role); nothing was sent and the connection is unaffected."""


class WireError(ProtocolError):
    """Malformed bytes in the wire format."""

    default_code = c.H3_FRAME_ERROR


class BufferReadError(WireError):
    """Input ended before a complete value could be read."""


class FrameError(WireError):
    """A malformed, oversized or misplaced HTTP/3 frame."""


class SettingsError(FrameError):
    """A malformed SETTINGS payload, e.g. a duplicate setting identifier."""

    default_code = c.H3_SETTINGS_ERROR


class CapsuleError(WireError):
    """A malformed or oversized capsule on a CONNECT stream."""

    default_code = c.H3_MESSAGE_ERROR


class DatagramError(WireError):
    """A malformed HTTP datagram (RFC 9297 §5: H3_DATAGRAM_ERROR)."""

    default_code = c.H3_DATAGRAM_ERROR


class FlowControlError(RemoteProtocolError):
    """The peer sent beyond the credit it was granted (WT_FLOW_CONTROL_ERROR)."""

    default_code = c.WT_FLOW_CONTROL_ERROR


class DatagramTooLargeError(WebTransportError, ValueError):
    """A datagram does not fit what the peer and the path accept; nothing was sent."""

    def __init__(self, message: str = "", *, size: int = 0, limit: int = 0) -> None:
        super().__init__(message or f"datagram of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class ConnectionError(WebTransportError):
    """A QUIC/HTTP3 connection failed or is unusable."""


class HandshakeError(ConnectionError):
    """The QUIC/TLS or HTTP/3 handshake failed. ``tls_alert`` is the TLS alert the peer
    closed the connection with (its CONNECTION_CLOSE carried CRYPTO_ERROR 0x100 + alert, RFC
    9001 §4.8), None otherwise: an HTTP/3 code in that same range is no TLS alert."""

    def __init__(self, message: str = "", *, error_code: int | None = None, tls_alert: int | None = None) -> None:
        super().__init__(message, error_code=error_code)
        self.tls_alert = tls_alert


class ConnectionRefusedError(HandshakeError, builtins.ConnectionRefusedError):
    """Nothing answers at the server's address: the host reported the UDP port unreachable
    (ICMP), so the connect fails at once; also a :class:`builtins.ConnectionRefusedError`."""

    def __init__(self, message: str = "connection refused", *, error_code: int | None = None) -> None:
        super().__init__(message, error_code=error_code)
        self.errno = errno.ECONNREFUSED  # as the OSError a refused socket call raises


class ConnectionClosedError(ConnectionError):
    """The connection is closed; ``error_code`` and ``reason`` say why when known."""

    def __init__(self, message: str = "connection closed", *, error_code: int | None = None,
                 reason: str = "") -> None:
        super().__init__(message, error_code=error_code)
        self.reason = reason


class SessionError(WebTransportError):
    """A WebTransport session could not be used."""


class SessionRejectedError(SessionError):
    """The server answered the CONNECT request with a non-2xx status."""

    def __init__(self, message: str = "", *, status_code: int = 0) -> None:
        super().__init__(message or f"session rejected with status {status_code}")
        self.status_code = status_code


class StreamError(WebTransportError):
    """A stream operation failed."""


class StreamClosedError(StreamError):
    """The stream (or the relevant side of it) is already closed."""


class SessionClosedError(SessionError, StreamClosedError):
    """The session is closed; ``error_code`` and ``reason`` are the close capsule's and
    ``cause`` says why it ended (a :class:`~pywebtransport.types.CloseCause`). It is also a
    StreamClosedError, so code that catches closed streams catches a closed session too."""

    def __init__(self, message: str = "session closed", *, error_code: int | None = None,
                 reason: str = "", cause: CloseCause | None = None) -> None:
        super().__init__(message, error_code=error_code)
        self.reason = reason
        self.cause = cause


class StreamResetError(StreamError):
    """The peer reset the stream; ``error_code`` is its application error code."""


class StreamStopSendingError(StreamError):
    """The peer asked us to stop sending (STOP_SENDING) with ``error_code``."""


class TimeoutError(WebTransportError, builtins.TimeoutError):
    """An operation did not finish in time; also a :class:`builtins.TimeoutError`."""


class ClientError(WebTransportError):
    """A client-side failure (bad URL, connect failure)."""


class ServerError(WebTransportError):
    """A server-side failure (bind failure, bad handler)."""
