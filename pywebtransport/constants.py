"""Protocol constants under the names the specifications use, and library defaults.

Sources: RFC 9000 (QUIC varints), RFC 9114 (HTTP/3), RFC 9204 (QPACK), RFC 9220
(extended CONNECT), RFC 9297 (HTTP datagrams and capsules), draft-ietf-webtrans-http3
(WebTransport over HTTP/3; browsers speak the draft-02 wire format). Drafts are cited by
number and section: "draft-15 §5.6.2".

Each registry this library speaks is an :class:`~enum.IntEnum` (:class:`StreamType`,
:class:`FrameType`, :class:`SettingsId`, :class:`H3ErrorCode`, :class:`CapsuleType`,
:class:`WTErrorCode`) whose members compare, hash and encode as the wire integers; the
module-level names (``FRAME_DATA``, ``H3_FRAME_ERROR``, ...) are those members.
:func:`describe_code` names a code for messages and logs.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "ALPN_H3",
    "CAPSULE_DATAGRAM",
    "CLOSE_REASON_MAX_BYTES",
    "DEFAULT_BUFFERED_STREAMS",
    "DEFAULT_DATAGRAM_QUEUE_BYTES",
    "DEFAULT_DATAGRAM_QUEUE_SIZE",
    "DEFAULT_MAX_CAPSULE_SIZE",
    "DEFAULT_MAX_DATAGRAM_FRAME_SIZE",
    "DEFAULT_MAX_FIELD_SECTION_SIZE",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEADER_BLOCK_SIZE",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_SESSION_MAX_DATA",
    "DEFAULT_SESSION_MAX_STREAMS_BIDI",
    "DEFAULT_SESSION_MAX_STREAMS_UNI",
    "FRAME_CANCEL_PUSH",
    "FRAME_DATA",
    "FRAME_GOAWAY",
    "FRAME_HEADERS",
    "FRAME_MAX_PUSH_ID",
    "FRAME_PUSH_PROMISE",
    "FRAME_SETTINGS",
    "FRAME_WEBTRANSPORT_STREAM",
    "H3_CLOSED_CRITICAL_STREAM",
    "H3_CONNECT_ERROR",
    "H3_DATAGRAM_ERROR",
    "H3_EXCESSIVE_LOAD",
    "H3_FRAME_ERROR",
    "H3_FRAME_UNEXPECTED",
    "H3_GENERAL_PROTOCOL_ERROR",
    "H3_HTTP2_ONLY_FRAMES",
    "H3_ID_ERROR",
    "H3_INTERNAL_ERROR",
    "H3_MESSAGE_ERROR",
    "H3_MISSING_SETTINGS",
    "H3_NO_ERROR",
    "H3_REQUEST_CANCELLED",
    "H3_REQUEST_INCOMPLETE",
    "H3_REQUEST_REJECTED",
    "H3_SETTINGS_ERROR",
    "H3_STREAM_CREATION_ERROR",
    "H3_VERSION_FALLBACK",
    "QPACK_DECODER_STREAM_ERROR",
    "QPACK_DECOMPRESSION_FAILED",
    "QPACK_ENCODER_STREAM_ERROR",
    "SETTINGS_ENABLE_CONNECT_PROTOCOL",
    "SETTINGS_ENABLE_WEBTRANSPORT",
    "SETTINGS_H3_DATAGRAM",
    "SETTINGS_H3_DATAGRAM_DRAFT04",
    "SETTINGS_MAX_FIELD_SECTION_SIZE",
    "SETTINGS_QPACK_BLOCKED_STREAMS",
    "SETTINGS_QPACK_MAX_TABLE_CAPACITY",
    "SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT07",
    "SETTINGS_WT_ENABLED",
    "SETTINGS_WT_INITIAL_MAX_DATA",
    "SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI",
    "SETTINGS_WT_INITIAL_MAX_STREAMS_UNI",
    "SETTINGS_WT_MAX_SESSIONS",
    "STREAM_TYPE_CONTROL",
    "STREAM_TYPE_PUSH",
    "STREAM_TYPE_QPACK_DECODER",
    "STREAM_TYPE_QPACK_ENCODER",
    "STREAM_TYPE_WEBTRANSPORT",
    "VARINT_MAX",
    "WT_ALPN_ERROR",
    "WT_APP_ERROR_FIRST",
    "WT_APP_ERROR_LAST",
    "WT_BUFFERED_STREAM_REJECTED",
    "WT_CAPSULE_CLOSE_SESSION",
    "WT_CAPSULE_DATA_BLOCKED",
    "WT_CAPSULE_DRAIN_SESSION",
    "WT_CAPSULE_MAX_DATA",
    "WT_CAPSULE_MAX_STREAMS_BIDI",
    "WT_CAPSULE_MAX_STREAMS_UNI",
    "WT_CAPSULE_MAX_STREAM_DATA",
    "WT_CAPSULE_STREAMS_BLOCKED_BIDI",
    "WT_CAPSULE_STREAMS_BLOCKED_UNI",
    "WT_CAPSULE_STREAM_DATA_BLOCKED",
    "WT_FLOW_CONTROL_ERROR",
    "WT_REQUIREMENTS_NOT_MET",
    "WT_SESSION_GONE",
    "CapsuleType",
    "FrameType",
    "H3ErrorCode",
    "SettingsId",
    "StreamType",
    "WTErrorCode",
    "describe_code",
]

ALPN_H3: Final = "h3"

#: Largest value a QUIC variable-length integer can carry (RFC 9000 §16).
VARINT_MAX: Final = (1 << 62) - 1


class _CodePoint(enum.IntEnum):
    """A registered wire integer: ``str()`` and ``format()`` give the number on every
    Python (as IntEnum does from 3.11 on), so swapping an int for a member changes no text."""

    def __str__(self) -> str:
        return int.__repr__(self)

    def __format__(self, format_spec: str) -> str:
        return int.__format__(self, format_spec)


class StreamType(_CodePoint):
    """Unidirectional stream types: the first varint of the stream (RFC 9114 §6.2,
    RFC 9204 §4.2, WebTransport draft-02 §4.1 / draft-15 §4.2)."""

    CONTROL = 0x00  #: RFC 9114 §6.2.1
    PUSH = 0x01  #: RFC 9114 §6.2.2
    QPACK_ENCODER = 0x02  #: RFC 9204 §4.2
    QPACK_DECODER = 0x03  #: RFC 9204 §4.2
    WEBTRANSPORT = 0x54  #: draft-02 §4.1, draft-13 §4.1, draft-15 §4.2 (registered in draft-15 §9.4)


class FrameType(_CodePoint):
    """HTTP/3 frame types (RFC 9114 §7.2), and the signal value that opens a WebTransport
    bidirectional stream (draft-15 §4.3). The HTTP/2-only types are in
    :data:`H3_HTTP2_ONLY_FRAMES`: reserved, not frame types (RFC 9114 §7.2.8)."""

    DATA = 0x00  #: RFC 9114 §7.2.1
    HEADERS = 0x01  #: RFC 9114 §7.2.2
    CANCEL_PUSH = 0x03  #: RFC 9114 §7.2.3
    SETTINGS = 0x04  #: RFC 9114 §7.2.4
    PUSH_PROMISE = 0x05  #: RFC 9114 §7.2.5
    GOAWAY = 0x07  #: RFC 9114 §7.2.6
    MAX_PUSH_ID = 0x0D  #: RFC 9114 §7.2.7
    #: draft-15 §4.3 (registered in §9.3); draft-02 §4.2 calls it WEBTRANSPORT_STREAM.
    WT_STREAM = 0x41


class SettingsId(_CodePoint):
    """HTTP/3 SETTINGS identifiers (RFC 9114 §7.2.4.1, RFC 9204 §5, RFC 9220 §3,
    RFC 9297 §2.1.1), and the WebTransport ones of every dialect we speak: draft-02 §3.1,
    drafts 07-12, draft-13 §3.1, draft-15 §3.1 and §5.5 (each dialect is recognised by
    its own identifier, draft-15 §7.1)."""

    QPACK_MAX_TABLE_CAPACITY = 0x01  #: RFC 9204 §5
    MAX_FIELD_SECTION_SIZE = 0x06  #: RFC 9114 §7.2.4.1
    QPACK_BLOCKED_STREAMS = 0x07  #: RFC 9204 §5
    ENABLE_CONNECT_PROTOCOL = 0x08  #: RFC 9220 §3
    H3_DATAGRAM = 0x33  #: RFC 9297 §2.1.1
    #: draft-ietf-masque-h3-datagram-04 and later drafts, before RFC 9297 (browsers send it).
    H3_DATAGRAM_DRAFT04 = 0xFFD277
    ENABLE_WEBTRANSPORT = 0x2B603742  #: draft-02 §3.1 (registered in §8.2): what browsers check
    #: drafts 07-12 (SETTINGS_WEBTRANSPORT_MAX_SESSIONS); those texts are not in specs/.
    WEBTRANSPORT_MAX_SESSIONS_DRAFT07 = 0xC671706A
    WT_MAX_SESSIONS = 0x14E9CD29  #: draft-13 §3.1 and §5.2 (registered in §9.2); drafts 13-14
    WT_ENABLED = 0x2C7CF000  #: draft-15 §3.1 (registered in §9.2)
    WT_INITIAL_MAX_DATA = 0x2B61  #: draft-15 §5.5.3 (draft-13 §5.5)
    WT_INITIAL_MAX_STREAMS_UNI = 0x2B64  #: draft-15 §5.5.1 (draft-13 §5.5)
    WT_INITIAL_MAX_STREAMS_BIDI = 0x2B65  #: draft-15 §5.5.2 (draft-13 §5.5)


class H3ErrorCode(_CodePoint):
    """HTTP/3 error codes: RFC 9114 §8.1, QPACK's (RFC 9204 §6) and H3_DATAGRAM_ERROR
    (RFC 9297 §5.2). Member names are the registered names."""

    H3_NO_ERROR = 0x100  #: RFC 9114 §8.1
    H3_GENERAL_PROTOCOL_ERROR = 0x101  #: RFC 9114 §8.1
    H3_INTERNAL_ERROR = 0x102  #: RFC 9114 §8.1
    H3_STREAM_CREATION_ERROR = 0x103  #: RFC 9114 §8.1
    H3_CLOSED_CRITICAL_STREAM = 0x104  #: RFC 9114 §8.1
    H3_FRAME_UNEXPECTED = 0x105  #: RFC 9114 §8.1
    H3_FRAME_ERROR = 0x106  #: RFC 9114 §8.1
    H3_EXCESSIVE_LOAD = 0x107  #: RFC 9114 §8.1
    H3_ID_ERROR = 0x108  #: RFC 9114 §8.1
    H3_SETTINGS_ERROR = 0x109  #: RFC 9114 §8.1
    H3_MISSING_SETTINGS = 0x10A  #: RFC 9114 §8.1
    H3_REQUEST_REJECTED = 0x10B  #: RFC 9114 §8.1
    H3_REQUEST_CANCELLED = 0x10C  #: RFC 9114 §8.1
    H3_REQUEST_INCOMPLETE = 0x10D  #: RFC 9114 §8.1
    H3_MESSAGE_ERROR = 0x10E  #: RFC 9114 §8.1
    H3_CONNECT_ERROR = 0x10F  #: RFC 9114 §8.1
    H3_VERSION_FALLBACK = 0x110  #: RFC 9114 §8.1
    QPACK_DECOMPRESSION_FAILED = 0x200  #: RFC 9204 §6
    QPACK_ENCODER_STREAM_ERROR = 0x201  #: RFC 9204 §6
    QPACK_DECODER_STREAM_ERROR = 0x202  #: RFC 9204 §6
    H3_DATAGRAM_ERROR = 0x33  #: RFC 9297 §5.2 (used in §2.1 and §3.3; draft-15 §5.6.2)


class CapsuleType(_CodePoint):
    """Capsule types on a session's CONNECT stream: RFC 9297 §3.5 and WebTransport's
    (draft-15 §4.7, §5.6 and §6; registered in draft-15 §9.6)."""

    DATAGRAM = 0x00  #: RFC 9297 §3.5
    #: draft-15 §6 (draft-02 §5 calls it CLOSE_WEBTRANSPORT_SESSION).
    WT_CLOSE_SESSION = 0x2843
    WT_DRAIN_SESSION = 0x78AE  #: draft-15 §4.7 (draft-13 §4.6)
    WT_MAX_DATA = 0x190B4D3D  #: draft-15 §5.6.4
    #: WebTransport over HTTP/2's; prohibited over HTTP/3, a session error (draft-15 §5.4).
    WT_MAX_STREAM_DATA = 0x190B4D3E
    WT_MAX_STREAMS_BIDI = 0x190B4D3F  #: draft-15 §5.6.2
    WT_MAX_STREAMS_UNI = 0x190B4D40  #: draft-15 §5.6.2
    WT_DATA_BLOCKED = 0x190B4D41  #: draft-15 §5.6.5
    #: WebTransport over HTTP/2's; prohibited over HTTP/3, a session error (draft-15 §5.4).
    WT_STREAM_DATA_BLOCKED = 0x190B4D42
    WT_STREAMS_BLOCKED_BIDI = 0x190B4D43  #: draft-15 §5.6.3
    WT_STREAMS_BLOCKED_UNI = 0x190B4D44  #: draft-15 §5.6.3


class WTErrorCode(_CodePoint):
    """WebTransport's HTTP/3 error codes (registered in draft-15 §9.5; draft-13 §9.5 has
    the first two). Application codes are not members: they map into
    [:data:`WT_APP_ERROR_FIRST`, :data:`WT_APP_ERROR_LAST`] (draft-15 §4.4)."""

    #: draft-15 §4.6 (draft-02 §8.5 names it H3_WEBTRANSPORT_BUFFERED_STREAM_REJECTED).
    WT_BUFFERED_STREAM_REJECTED = 0x3994BD84
    WT_SESSION_GONE = 0x170D7B68  #: draft-15 §6
    WT_FLOW_CONTROL_ERROR = 0x045D4487  #: draft-15 §5.3, §5.4 and §5.6
    WT_ALPN_ERROR = 0x0817B3DD  #: draft-15 §3.3
    WT_REQUIREMENTS_NOT_MET = 0x212C0D48  #: draft-15 §3.1


# Module-level names: each is the enum member, so code comparing with ints keeps working.
STREAM_TYPE_CONTROL: Final = StreamType.CONTROL
STREAM_TYPE_PUSH: Final = StreamType.PUSH
STREAM_TYPE_QPACK_ENCODER: Final = StreamType.QPACK_ENCODER
STREAM_TYPE_QPACK_DECODER: Final = StreamType.QPACK_DECODER
STREAM_TYPE_WEBTRANSPORT: Final = StreamType.WEBTRANSPORT

FRAME_DATA: Final = FrameType.DATA
FRAME_HEADERS: Final = FrameType.HEADERS
FRAME_CANCEL_PUSH: Final = FrameType.CANCEL_PUSH
FRAME_SETTINGS: Final = FrameType.SETTINGS
FRAME_PUSH_PROMISE: Final = FrameType.PUSH_PROMISE
FRAME_GOAWAY: Final = FrameType.GOAWAY
FRAME_MAX_PUSH_ID: Final = FrameType.MAX_PUSH_ID
FRAME_WEBTRANSPORT_STREAM: Final = FrameType.WT_STREAM
#: Frame types reserved by HTTP/2 whose receipt is a connection error (RFC 9114 §7.2.8).
H3_HTTP2_ONLY_FRAMES: Final = frozenset({0x02, 0x06, 0x08, 0x09})

SETTINGS_QPACK_MAX_TABLE_CAPACITY: Final = SettingsId.QPACK_MAX_TABLE_CAPACITY
SETTINGS_MAX_FIELD_SECTION_SIZE: Final = SettingsId.MAX_FIELD_SECTION_SIZE
SETTINGS_QPACK_BLOCKED_STREAMS: Final = SettingsId.QPACK_BLOCKED_STREAMS
SETTINGS_ENABLE_CONNECT_PROTOCOL: Final = SettingsId.ENABLE_CONNECT_PROTOCOL
SETTINGS_H3_DATAGRAM: Final = SettingsId.H3_DATAGRAM
SETTINGS_H3_DATAGRAM_DRAFT04: Final = SettingsId.H3_DATAGRAM_DRAFT04
SETTINGS_ENABLE_WEBTRANSPORT: Final = SettingsId.ENABLE_WEBTRANSPORT
SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT07: Final = SettingsId.WEBTRANSPORT_MAX_SESSIONS_DRAFT07
SETTINGS_WT_MAX_SESSIONS: Final = SettingsId.WT_MAX_SESSIONS
SETTINGS_WT_ENABLED: Final = SettingsId.WT_ENABLED
SETTINGS_WT_INITIAL_MAX_DATA: Final = SettingsId.WT_INITIAL_MAX_DATA
SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: Final = SettingsId.WT_INITIAL_MAX_STREAMS_UNI
SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: Final = SettingsId.WT_INITIAL_MAX_STREAMS_BIDI

H3_NO_ERROR: Final = H3ErrorCode.H3_NO_ERROR
H3_GENERAL_PROTOCOL_ERROR: Final = H3ErrorCode.H3_GENERAL_PROTOCOL_ERROR
H3_INTERNAL_ERROR: Final = H3ErrorCode.H3_INTERNAL_ERROR
H3_STREAM_CREATION_ERROR: Final = H3ErrorCode.H3_STREAM_CREATION_ERROR
H3_CLOSED_CRITICAL_STREAM: Final = H3ErrorCode.H3_CLOSED_CRITICAL_STREAM
H3_FRAME_UNEXPECTED: Final = H3ErrorCode.H3_FRAME_UNEXPECTED
H3_FRAME_ERROR: Final = H3ErrorCode.H3_FRAME_ERROR
H3_EXCESSIVE_LOAD: Final = H3ErrorCode.H3_EXCESSIVE_LOAD
H3_ID_ERROR: Final = H3ErrorCode.H3_ID_ERROR
H3_SETTINGS_ERROR: Final = H3ErrorCode.H3_SETTINGS_ERROR
H3_MISSING_SETTINGS: Final = H3ErrorCode.H3_MISSING_SETTINGS
H3_REQUEST_REJECTED: Final = H3ErrorCode.H3_REQUEST_REJECTED
H3_REQUEST_CANCELLED: Final = H3ErrorCode.H3_REQUEST_CANCELLED
H3_REQUEST_INCOMPLETE: Final = H3ErrorCode.H3_REQUEST_INCOMPLETE
H3_MESSAGE_ERROR: Final = H3ErrorCode.H3_MESSAGE_ERROR
H3_CONNECT_ERROR: Final = H3ErrorCode.H3_CONNECT_ERROR
H3_VERSION_FALLBACK: Final = H3ErrorCode.H3_VERSION_FALLBACK
QPACK_DECOMPRESSION_FAILED: Final = H3ErrorCode.QPACK_DECOMPRESSION_FAILED
QPACK_ENCODER_STREAM_ERROR: Final = H3ErrorCode.QPACK_ENCODER_STREAM_ERROR
QPACK_DECODER_STREAM_ERROR: Final = H3ErrorCode.QPACK_DECODER_STREAM_ERROR
H3_DATAGRAM_ERROR: Final = H3ErrorCode.H3_DATAGRAM_ERROR

CAPSULE_DATAGRAM: Final = CapsuleType.DATAGRAM
WT_CAPSULE_CLOSE_SESSION: Final = CapsuleType.WT_CLOSE_SESSION
WT_CAPSULE_DRAIN_SESSION: Final = CapsuleType.WT_DRAIN_SESSION
WT_CAPSULE_MAX_DATA: Final = CapsuleType.WT_MAX_DATA
WT_CAPSULE_MAX_STREAMS_BIDI: Final = CapsuleType.WT_MAX_STREAMS_BIDI
WT_CAPSULE_MAX_STREAMS_UNI: Final = CapsuleType.WT_MAX_STREAMS_UNI
WT_CAPSULE_DATA_BLOCKED: Final = CapsuleType.WT_DATA_BLOCKED
WT_CAPSULE_STREAMS_BLOCKED_BIDI: Final = CapsuleType.WT_STREAMS_BLOCKED_BIDI
WT_CAPSULE_STREAMS_BLOCKED_UNI: Final = CapsuleType.WT_STREAMS_BLOCKED_UNI
WT_CAPSULE_MAX_STREAM_DATA: Final = CapsuleType.WT_MAX_STREAM_DATA
WT_CAPSULE_STREAM_DATA_BLOCKED: Final = CapsuleType.WT_STREAM_DATA_BLOCKED

#: Largest WT_CLOSE_SESSION reason, in UTF-8 bytes (draft-15 §6, draft-02 §5).
CLOSE_REASON_MAX_BYTES: Final = 1024

WT_BUFFERED_STREAM_REJECTED: Final = WTErrorCode.WT_BUFFERED_STREAM_REJECTED
WT_SESSION_GONE: Final = WTErrorCode.WT_SESSION_GONE
WT_FLOW_CONTROL_ERROR: Final = WTErrorCode.WT_FLOW_CONTROL_ERROR
WT_ALPN_ERROR: Final = WTErrorCode.WT_ALPN_ERROR
WT_REQUIREMENTS_NOT_MET: Final = WTErrorCode.WT_REQUIREMENTS_NOT_MET

#: Application error codes map into [WT_APP_ERROR_FIRST, WT_APP_ERROR_LAST] (draft-15 §4.4;
#: draft-02 §4.3 used only the first 256 of them, up to 0x52e4a40fa9e2).
WT_APP_ERROR_FIRST: Final = 0x52E4A40FA8DB
WT_APP_ERROR_LAST: Final = 0x52E5AC983162

#: Every HTTP/3-space error code with a registered name, by value (for describe_code).
_ERROR_CODES: Final[dict[int, H3ErrorCode | WTErrorCode]] = {
    int(member): member for member in (*H3ErrorCode, *WTErrorCode)}


def describe_code(code: int, kind: type[enum.IntEnum] | None = None) -> str:
    """``code`` for a message or a log: ``"H3_FRAME_ERROR (0x106)"``.

    Without ``kind``, ``code`` is an error code of the HTTP/3 space (what CONNECTION_CLOSE
    of the application, RESET_STREAM and STOP_SENDING carry): an :class:`H3ErrorCode` or
    :class:`WTErrorCode` by its name, a WebTransport application code as
    ``"application error 7 (0x52e4a40fa8e2)"`` (draft-15 §4.4), anything else in hex.
    With ``kind`` (e.g. :class:`FrameType`), a member of that enum by its name, anything
    else in hex. Not for the application codes of WT_CLOSE_SESSION, which are not
    HTTP/3 codes (0x100 there is not H3_NO_ERROR).
    """
    if kind is None:
        member: enum.IntEnum | None = _ERROR_CODES.get(code)
        if member is None and WT_APP_ERROR_FIRST <= code <= WT_APP_ERROR_LAST:
            # Imported here: _wire imports this module at its own import time.
            from pywebtransport._wire.error_codes import http_code_to_app

            app = http_code_to_app(code)
            if app is not None:
                return f"application error {app} ({code:#x})"
    else:
        try:
            member = kind(code)
        except ValueError:
            member = None
    return f"{member.name} ({code:#x})" if member is not None else f"{code:#x}"


# Library defaults (every one is overridable in config).
DEFAULT_MAX_FRAME_SIZE: Final = 1 << 20  # largest non-DATA frame buffered
DEFAULT_MAX_HEADER_BLOCK_SIZE: Final = 64 * 1024
#: Decoded header section limit we advertise (RFC 9114 §4.2.2: names + values + 32 per field).
DEFAULT_MAX_FIELD_SECTION_SIZE: Final = 64 * 1024
DEFAULT_MAX_CAPSULE_SIZE: Final = 64 * 1024
DEFAULT_MAX_DATAGRAM_FRAME_SIZE: Final = 65536
DEFAULT_MAX_SESSIONS: Final = 100
DEFAULT_BUFFERED_STREAMS: Final = 24  # what browsers buffer for early streams
DEFAULT_DATAGRAM_QUEUE_SIZE: Final = 1024
DEFAULT_DATAGRAM_QUEUE_BYTES: Final = 4 * 1024 * 1024
DEFAULT_SESSION_MAX_DATA: Final = 16 * 1024 * 1024
DEFAULT_SESSION_MAX_STREAMS_BIDI: Final = 100
DEFAULT_SESSION_MAX_STREAMS_UNI: Final = 100
