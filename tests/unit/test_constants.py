"""The protocol code points: enum values against the specifications, the module-level names
that alias them, and ``describe_code`` for messages and logs.

Every row of ``SPEC_TABLE`` cites where its value is defined. WebTransport values were
read from the draft texts (draft-02, draft-13, draft-15); the others from RFC 9114 (HTTP/3),
RFC 9204 (QPACK), RFC 9220 (extended CONNECT) and RFC 9297 (HTTP datagrams).
"""

from __future__ import annotations

import enum
import json
import pickle

import pytest

from pywebtransport import constants as c
from pywebtransport.exceptions import FlowControlError, ProtocolError, RemoteProtocolError, StreamResetError

ENUMS: tuple[type[enum.IntEnum], ...] = (c.StreamType, c.FrameType, c.SettingsId, c.H3ErrorCode, c.CapsuleType,
                                         c.WTErrorCode)

# (member, wire value, module-level alias, where the value is defined)
SPEC_TABLE: list[tuple[enum.IntEnum, int, str, str]] = [
    (c.StreamType.CONTROL, 0x00, "STREAM_TYPE_CONTROL", "RFC 9114 §6.2.1"),
    (c.StreamType.PUSH, 0x01, "STREAM_TYPE_PUSH", "RFC 9114 §6.2.2"),
    (c.StreamType.QPACK_ENCODER, 0x02, "STREAM_TYPE_QPACK_ENCODER", "RFC 9204 §4.2"),
    (c.StreamType.QPACK_DECODER, 0x03, "STREAM_TYPE_QPACK_DECODER", "RFC 9204 §4.2"),
    (c.StreamType.WEBTRANSPORT, 0x54, "STREAM_TYPE_WEBTRANSPORT", "draft-02 §4.1, draft-15 §4.2 and §9.4"),
    (c.FrameType.DATA, 0x00, "FRAME_DATA", "RFC 9114 §7.2.1"),
    (c.FrameType.HEADERS, 0x01, "FRAME_HEADERS", "RFC 9114 §7.2.2"),
    (c.FrameType.CANCEL_PUSH, 0x03, "FRAME_CANCEL_PUSH", "RFC 9114 §7.2.3"),
    (c.FrameType.SETTINGS, 0x04, "FRAME_SETTINGS", "RFC 9114 §7.2.4"),
    (c.FrameType.PUSH_PROMISE, 0x05, "FRAME_PUSH_PROMISE", "RFC 9114 §7.2.5"),
    (c.FrameType.GOAWAY, 0x07, "FRAME_GOAWAY", "RFC 9114 §7.2.6"),
    (c.FrameType.MAX_PUSH_ID, 0x0D, "FRAME_MAX_PUSH_ID", "RFC 9114 §7.2.7"),
    (c.FrameType.WT_STREAM, 0x41, "FRAME_WEBTRANSPORT_STREAM", "draft-02 §4.2, draft-15 §4.3 and §9.3"),
    (c.SettingsId.QPACK_MAX_TABLE_CAPACITY, 0x01, "SETTINGS_QPACK_MAX_TABLE_CAPACITY", "RFC 9204 §5"),
    (c.SettingsId.MAX_FIELD_SECTION_SIZE, 0x06, "SETTINGS_MAX_FIELD_SECTION_SIZE", "RFC 9114 §7.2.4.1"),
    (c.SettingsId.QPACK_BLOCKED_STREAMS, 0x07, "SETTINGS_QPACK_BLOCKED_STREAMS", "RFC 9204 §5"),
    (c.SettingsId.ENABLE_CONNECT_PROTOCOL, 0x08, "SETTINGS_ENABLE_CONNECT_PROTOCOL", "RFC 9220 §3"),
    (c.SettingsId.H3_DATAGRAM, 0x33, "SETTINGS_H3_DATAGRAM", "RFC 9297 §2.1.1"),
    (c.SettingsId.H3_DATAGRAM_DRAFT04, 0xFFD277, "SETTINGS_H3_DATAGRAM_DRAFT04",
     "draft-ietf-masque-h3-datagram-04+ (what browsers send, PROTOCOL.md)"),
    (c.SettingsId.ENABLE_WEBTRANSPORT, 0x2B603742, "SETTINGS_ENABLE_WEBTRANSPORT", "draft-02 §3.1 and §8.2"),
    (c.SettingsId.WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 0xC671706A, "SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT07",
     "drafts 07-12 (PROTOCOL.md)"),
    (c.SettingsId.WT_MAX_SESSIONS, 0x14E9CD29, "SETTINGS_WT_MAX_SESSIONS", "draft-13 §3.1 and §9.2"),
    (c.SettingsId.WT_ENABLED, 0x2C7CF000, "SETTINGS_WT_ENABLED", "draft-15 §3.1 and §9.2"),
    (c.SettingsId.WT_INITIAL_MAX_DATA, 0x2B61, "SETTINGS_WT_INITIAL_MAX_DATA", "draft-15 §5.5.3 and §9.2"),
    (c.SettingsId.WT_INITIAL_MAX_STREAMS_UNI, 0x2B64, "SETTINGS_WT_INITIAL_MAX_STREAMS_UNI",
     "draft-15 §5.5.1 and §9.2"),
    (c.SettingsId.WT_INITIAL_MAX_STREAMS_BIDI, 0x2B65, "SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI",
     "draft-15 §5.5.2 and §9.2"),
    (c.H3ErrorCode.H3_NO_ERROR, 0x100, "H3_NO_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_GENERAL_PROTOCOL_ERROR, 0x101, "H3_GENERAL_PROTOCOL_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_INTERNAL_ERROR, 0x102, "H3_INTERNAL_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_STREAM_CREATION_ERROR, 0x103, "H3_STREAM_CREATION_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, 0x104, "H3_CLOSED_CRITICAL_STREAM", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_FRAME_UNEXPECTED, 0x105, "H3_FRAME_UNEXPECTED", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_FRAME_ERROR, 0x106, "H3_FRAME_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_EXCESSIVE_LOAD, 0x107, "H3_EXCESSIVE_LOAD", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_ID_ERROR, 0x108, "H3_ID_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_SETTINGS_ERROR, 0x109, "H3_SETTINGS_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_MISSING_SETTINGS, 0x10A, "H3_MISSING_SETTINGS", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_REQUEST_REJECTED, 0x10B, "H3_REQUEST_REJECTED", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_REQUEST_CANCELLED, 0x10C, "H3_REQUEST_CANCELLED", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_REQUEST_INCOMPLETE, 0x10D, "H3_REQUEST_INCOMPLETE", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_MESSAGE_ERROR, 0x10E, "H3_MESSAGE_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_CONNECT_ERROR, 0x10F, "H3_CONNECT_ERROR", "RFC 9114 §8.1"),
    (c.H3ErrorCode.H3_VERSION_FALLBACK, 0x110, "H3_VERSION_FALLBACK", "RFC 9114 §8.1"),
    (c.H3ErrorCode.QPACK_DECOMPRESSION_FAILED, 0x200, "QPACK_DECOMPRESSION_FAILED", "RFC 9204 §6"),
    (c.H3ErrorCode.QPACK_ENCODER_STREAM_ERROR, 0x201, "QPACK_ENCODER_STREAM_ERROR", "RFC 9204 §6"),
    (c.H3ErrorCode.QPACK_DECODER_STREAM_ERROR, 0x202, "QPACK_DECODER_STREAM_ERROR", "RFC 9204 §6"),
    (c.H3ErrorCode.H3_DATAGRAM_ERROR, 0x33, "H3_DATAGRAM_ERROR", "RFC 9297 §5.2"),
    (c.CapsuleType.DATAGRAM, 0x00, "CAPSULE_DATAGRAM", "RFC 9297 §3.5"),
    (c.CapsuleType.WT_CLOSE_SESSION, 0x2843, "WT_CAPSULE_CLOSE_SESSION", "draft-02 §5, draft-15 §6 and §9.6"),
    (c.CapsuleType.WT_DRAIN_SESSION, 0x78AE, "WT_CAPSULE_DRAIN_SESSION", "draft-15 §4.7 and §9.6"),
    (c.CapsuleType.WT_MAX_DATA, 0x190B4D3D, "WT_CAPSULE_MAX_DATA", "draft-15 §5.6.4"),
    (c.CapsuleType.WT_MAX_STREAM_DATA, 0x190B4D3E, "WT_CAPSULE_MAX_STREAM_DATA", "draft-15 §5.4 (prohibited)"),
    (c.CapsuleType.WT_MAX_STREAMS_BIDI, 0x190B4D3F, "WT_CAPSULE_MAX_STREAMS_BIDI", "draft-15 §5.6.2"),
    (c.CapsuleType.WT_MAX_STREAMS_UNI, 0x190B4D40, "WT_CAPSULE_MAX_STREAMS_UNI", "draft-15 §5.6.2"),
    (c.CapsuleType.WT_DATA_BLOCKED, 0x190B4D41, "WT_CAPSULE_DATA_BLOCKED", "draft-15 §5.6.5"),
    (c.CapsuleType.WT_STREAM_DATA_BLOCKED, 0x190B4D42, "WT_CAPSULE_STREAM_DATA_BLOCKED", "draft-15 §5.4 (prohibited)"),
    (c.CapsuleType.WT_STREAMS_BLOCKED_BIDI, 0x190B4D43, "WT_CAPSULE_STREAMS_BLOCKED_BIDI", "draft-15 §5.6.3"),
    (c.CapsuleType.WT_STREAMS_BLOCKED_UNI, 0x190B4D44, "WT_CAPSULE_STREAMS_BLOCKED_UNI", "draft-15 §5.6.3"),
    (c.WTErrorCode.WT_BUFFERED_STREAM_REJECTED, 0x3994BD84, "WT_BUFFERED_STREAM_REJECTED",
     "draft-02 §8.5, draft-15 §4.6 and §9.5"),
    (c.WTErrorCode.WT_SESSION_GONE, 0x170D7B68, "WT_SESSION_GONE", "draft-13 §9.5, draft-15 §6 and §9.5"),
    (c.WTErrorCode.WT_FLOW_CONTROL_ERROR, 0x045D4487, "WT_FLOW_CONTROL_ERROR", "draft-15 §5 and §9.5"),
    (c.WTErrorCode.WT_ALPN_ERROR, 0x0817B3DD, "WT_ALPN_ERROR", "draft-15 §3.3 and §9.5"),
    (c.WTErrorCode.WT_REQUIREMENTS_NOT_MET, 0x212C0D48, "WT_REQUIREMENTS_NOT_MET", "draft-15 §3.1 and §9.5"),
]


def _row_id(row: tuple[enum.IntEnum, int, str, str]) -> str:
    return f"{type(row[0]).__name__}.{row[0].name}"


@pytest.mark.parametrize("row", SPEC_TABLE, ids=_row_id)
def test_member_has_the_value_its_specification_defines(row: tuple[enum.IntEnum, int, str, str]) -> None:
    member, value, _alias, source = row
    assert member.value == value, f"{member!r} != {value:#x} ({source})"


@pytest.mark.parametrize("row", SPEC_TABLE, ids=_row_id)
def test_module_level_name_is_the_enum_member(row: tuple[enum.IntEnum, int, str, str]) -> None:
    member, value, alias, _source = row
    assert getattr(c, alias) is member
    assert alias in c.__all__


def test_the_table_covers_every_member() -> None:
    assert {member for member, *_ in SPEC_TABLE} == {member for cls in ENUMS for member in cls}


def test_enum_classes_and_describe_code_are_public() -> None:
    for name in ("StreamType", "FrameType", "SettingsId", "H3ErrorCode", "CapsuleType", "WTErrorCode",
                 "describe_code"):
        assert name in c.__all__
    assert all(hasattr(c, name) for name in c.__all__)


def test_application_error_range_matches_draft_15() -> None:
    """Draft-15 §4.4: application code 0 maps to 0x52e4a40fa8db and 0xffffffff to 0x52e5ac983162."""
    assert (c.WT_APP_ERROR_FIRST, c.WT_APP_ERROR_LAST) == (0x52E4A40FA8DB, 0x52E5AC983162)


@pytest.mark.parametrize("cls", ENUMS, ids=lambda cls: cls.__name__)
def test_enums_are_intenums_equal_to_the_wire_integers(cls: type[enum.IntEnum]) -> None:
    assert issubclass(cls, enum.IntEnum)
    for member in cls:
        wire = int(member)
        assert type(wire) is int and member == wire and wire == member
        assert hash(member) == hash(wire)
        assert {wire: "found"}[member] == "found" and {member: "found"}[wire] == "found"
        assert wire in frozenset(cls) and cls(wire) is member
        # Text is the number, as it was for the plain ints these members replace (logging's
        # "%s" included, on every Python version).
        assert (str(member), f"{member}", f"{member:#x}", "%s" % member) == (  # noqa: UP031
            str(wire), str(wire), f"{wire:#x}", str(wire))
        assert json.dumps(member) == str(wire)
        assert pickle.loads(pickle.dumps(member)) is member


@pytest.mark.parametrize("cls", ENUMS, ids=lambda cls: cls.__name__)
def test_no_two_members_of_one_enum_share_a_value(cls: type[enum.IntEnum]) -> None:
    """No aliases: no specification gives one code point two names in one registry."""
    assert len(cls.__members__) == len(list(cls))
    assert len({int(member) for member in cls}) == len(cls)


def test_http3_and_webtransport_error_codes_do_not_overlap() -> None:
    """describe_code looks both up in one table (both live in the HTTP/3 error space)."""
    assert not {int(m) for m in c.H3ErrorCode} & {int(m) for m in c.WTErrorCode}


@pytest.mark.parametrize("cls", [c.H3ErrorCode, c.WTErrorCode, c.FrameType, c.SettingsId, c.StreamType],
                         ids=lambda cls: cls.__name__)
def test_no_member_is_a_reserved_grease_code_point(cls: type[enum.IntEnum]) -> None:
    """RFC 9114 §6.2.3, §7.2.8, §7.2.4.1 and §8.1 reserve 0x1f * N + 0x21 in these registries."""
    assert not [member for member in cls if member >= 0x21 and (member - 0x21) % 0x1F == 0]


def test_no_settings_id_is_a_reserved_http2_setting() -> None:
    """RFC 9114 §7.2.4.1: 0x00 and 0x02-0x05 are HTTP/2 settings, an error in HTTP/3."""
    assert not {0x00, 0x02, 0x03, 0x04, 0x05} & {int(m) for m in c.SettingsId}


def test_http2_only_frames_are_not_frame_types() -> None:
    """RFC 9114 §7.2.8: reserved, never sent; kept as plain ints apart from FrameType."""
    assert {0x02, 0x06, 0x08, 0x09} == c.H3_HTTP2_ONLY_FRAMES
    assert not c.H3_HTTP2_ONLY_FRAMES & {int(m) for m in c.FrameType}


# ---------------------------------------------------------------- describe_code


@pytest.mark.parametrize(("code", "text"), [
    pytest.param(0x106, "H3_FRAME_ERROR (0x106)", id="h3-int"),
    pytest.param(c.H3_NO_ERROR, "H3_NO_ERROR (0x100)", id="h3-member"),
    pytest.param(0x200, "QPACK_DECOMPRESSION_FAILED (0x200)", id="qpack"),
    pytest.param(0x33, "H3_DATAGRAM_ERROR (0x33)", id="datagram"),
    pytest.param(0x170D7B68, "WT_SESSION_GONE (0x170d7b68)", id="webtransport"),
    pytest.param(c.WT_APP_ERROR_FIRST, "application error 0 (0x52e4a40fa8db)", id="application-first"),
    pytest.param(c.WT_APP_ERROR_LAST, "application error 4294967295 (0x52e5ac983162)", id="application-last"),
])
def test_describe_code_names_known_codes(code: int, text: str) -> None:
    assert c.describe_code(code) == text


@pytest.mark.parametrize(("code", "text"), [
    pytest.param(0x111, "0x111", id="after-h3-range"),
    pytest.param(0x21, "0x21", id="grease"),
    pytest.param(0, "0x0", id="zero"),
    pytest.param(c.WT_APP_ERROR_FIRST + 0x1E, "0x52e4a40fa8f9", id="grease-inside-application-range"),
    pytest.param(c.WT_APP_ERROR_LAST + 1, "0x52e5ac983163", id="after-application-range"),
    pytest.param(c.VARINT_MAX, "0x3fffffffffffffff", id="largest"),
])
def test_describe_code_gives_hex_for_unknown_codes(code: int, text: str) -> None:
    assert c.describe_code(code) == text


@pytest.mark.parametrize(("code", "kind", "text"), [
    pytest.param(0x04, c.FrameType, "SETTINGS (0x4)", id="frame"),
    pytest.param(0x41, c.FrameType, "WT_STREAM (0x41)", id="wt-stream"),
    pytest.param(0x02, c.FrameType, "0x2", id="http2-frame"),
    pytest.param(0x2C7CF000, c.SettingsId, "WT_ENABLED (0x2c7cf000)", id="setting"),
    pytest.param(0x54, c.StreamType, "WEBTRANSPORT (0x54)", id="stream-type"),
    pytest.param(0x2843, c.CapsuleType, "WT_CLOSE_SESSION (0x2843)", id="capsule"),
    pytest.param(0x29 * 3 + 0x17, c.CapsuleType, "0x92", id="grease-capsule"),
    pytest.param(0x106, c.FrameType, "0x106", id="error-code-is-not-a-frame"),
])
def test_describe_code_of_a_kind_names_only_that_kinds_members(code: int, kind: type[enum.IntEnum],
                                                                text: str) -> None:
    assert c.describe_code(code, kind) == text


def test_protocol_errors_name_their_code_and_application_codes_stay_numbers() -> None:
    assert str(RemoteProtocolError("second SETTINGS frame", error_code=c.H3_FRAME_UNEXPECTED)) == (
        "second SETTINGS frame [H3_FRAME_UNEXPECTED (0x105)]")
    assert str(FlowControlError("too much")) == "too much [WT_FLOW_CONTROL_ERROR (0x45d4487)]"
    assert str(ProtocolError("bad", error_code=0x7E)) == "bad [0x7e]"
    # A peer's application code is not an HTTP/3 code: 0x105 there must not read as a name.
    assert str(StreamResetError("reset", error_code=0x105)) == "reset (error code 0x105)"
