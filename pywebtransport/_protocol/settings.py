"""HTTP/3 SETTINGS for WebTransport in every dialect peers speak (PROTOCOL.md table)."""

from __future__ import annotations

from dataclasses import dataclass

from pywebtransport import constants as c

__all__ = ["DIALECT_DRAFT02", "DIALECT_DRAFT07", "DIALECT_DRAFT13", "DIALECT_DRAFT15", "PeerSettings",
           "build_local_settings"]

DIALECT_DRAFT02 = "draft-02"
DIALECT_DRAFT07 = "draft-07"
DIALECT_DRAFT13 = "draft-13"
DIALECT_DRAFT15 = "draft-15"


def build_local_settings(*, is_client: bool, max_sessions: int, initial_max_data: int,
                         initial_max_streams_bidi: int, initial_max_streams_uni: int) -> dict[int, int]:
    """Our SETTINGS: every dialect at once, so that one endpoint serves every peer.

    Chromium requires 0x2b603742 and an H3_DATAGRAM setting; draft-15 stacks look for
    WT_ENABLED and the WT_INITIAL_* limits. QPACK's dynamic table is off (capacity 0), so
    no header block can ever block on the encoder stream.
    """
    settings: dict[int, int] = {
        c.SETTINGS_QPACK_MAX_TABLE_CAPACITY: 0,
        c.SETTINGS_QPACK_BLOCKED_STREAMS: 0,
        c.SETTINGS_H3_DATAGRAM: 1,
        c.SETTINGS_H3_DATAGRAM_DRAFT04: 1,
        c.SETTINGS_ENABLE_WEBTRANSPORT: 1,
        c.SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT07: max_sessions,
        c.SETTINGS_WT_MAX_SESSIONS: max_sessions,
        c.SETTINGS_WT_ENABLED: 1,
        c.SETTINGS_WT_INITIAL_MAX_DATA: initial_max_data,
        c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: initial_max_streams_uni,
        c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: initial_max_streams_bidi,
    }
    if not is_client:
        # RFC 9220 §3: only the server advertises extended CONNECT; never send 0.
        settings[c.SETTINGS_ENABLE_CONNECT_PROTOCOL] = 1
    return settings


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """What the peer's SETTINGS say about WebTransport."""

    raw: dict[int, int]

    @property
    def dialect(self) -> str:
        """The newest WebTransport dialect the peer announced ("none" if it announced none)."""
        raw = self.raw
        if raw.get(c.SETTINGS_WT_ENABLED, 0) or c.SETTINGS_WT_INITIAL_MAX_DATA in raw:
            return DIALECT_DRAFT15
        if raw.get(c.SETTINGS_WT_MAX_SESSIONS, 0):
            return DIALECT_DRAFT13
        if raw.get(c.SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 0):
            return DIALECT_DRAFT07
        if raw.get(c.SETTINGS_ENABLE_WEBTRANSPORT, 0):
            return DIALECT_DRAFT02
        return "none"

    @property
    def supports_webtransport(self) -> bool:
        return self.dialect != "none"

    @property
    def supports_datagrams(self) -> bool:
        return bool(self.raw.get(c.SETTINGS_H3_DATAGRAM, 0) or self.raw.get(c.SETTINGS_H3_DATAGRAM_DRAFT04, 0))

    @property
    def supports_extended_connect(self) -> bool:
        return self.raw.get(c.SETTINGS_ENABLE_CONNECT_PROTOCOL, 0) == 1

    @property
    def flow_control(self) -> bool:
        """Session flow control applies only to peers speaking the draft-15 dialect."""
        return self.dialect == DIALECT_DRAFT15

    @property
    def initial_max_data(self) -> int:
        return self.raw.get(c.SETTINGS_WT_INITIAL_MAX_DATA, 0)

    @property
    def initial_max_streams_bidi(self) -> int:
        return self.raw.get(c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI, 0)

    @property
    def initial_max_streams_uni(self) -> int:
        return self.raw.get(c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI, 0)
