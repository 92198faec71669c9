"""HTTP/3 SETTINGS for WebTransport in every dialect peers speak, and what a peer's mean."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pywebtransport import constants as c
from pywebtransport.exceptions import RemoteProtocolError

__all__ = ["DIALECT_DRAFT02", "DIALECT_DRAFT07", "DIALECT_DRAFT13", "DIALECT_DRAFT15", "UNKNOWN_SETTINGS_KEPT",
           "Dialect", "PeerSettings", "build_local_settings", "flow_control_enabled", "wants_flow_control"]


class Dialect(str, enum.Enum):
    """The WebTransport draft a peer's SETTINGS announce (the newest one wins)."""

    DRAFT02 = "draft-02"  # SETTINGS_ENABLE_WEBTRANSPORT: Chromium and Firefox today
    DRAFT07 = "draft-07"  # SETTINGS_WEBTRANSPORT_MAX_SESSIONS (drafts 07-12)
    DRAFT13 = "draft-13"  # SETTINGS_WT_MAX_SESSIONS (drafts 13-14)
    DRAFT15 = "draft-15"  # SETTINGS_WT_ENABLED (draft-15 §3.1)

    def __str__(self) -> str:
        return self.value


DIALECT_DRAFT02 = Dialect.DRAFT02
DIALECT_DRAFT07 = Dialect.DRAFT07
DIALECT_DRAFT13 = Dialect.DRAFT13
DIALECT_DRAFT15 = Dialect.DRAFT15

_BOOLEAN_SETTINGS = (c.SETTINGS_H3_DATAGRAM, c.SETTINGS_H3_DATAGRAM_DRAFT04, c.SETTINGS_ENABLE_CONNECT_PROTOCOL,
                     c.SETTINGS_ENABLE_WEBTRANSPORT)
#: The identifiers whose meaning we know; a peer's others are ignored (RFC 9114 §7.2.4.1).
_KNOWN_SETTINGS = frozenset(int(member) for member in c.SettingsId)
#: Of a peer's unknown settings, this many are kept (for diagnostics) and the rest dropped:
#: a SETTINGS frame of 200,000 GREASE identifiers had pinned 17 MB per connection.
UNKNOWN_SETTINGS_KEPT = 16
_FLOW_CONTROL_SETTINGS = (c.SETTINGS_WT_INITIAL_MAX_DATA, c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI,
                          c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI)


def build_local_settings(*, is_client: bool, max_sessions: int, initial_max_data: int,
                         initial_max_streams_bidi: int, initial_max_streams_uni: int,
                         max_field_section_size: int) -> dict[int, int]:
    """Our SETTINGS: every dialect at once, so that one endpoint serves every peer.

    Chromium requires 0x2b603742 and an H3_DATAGRAM setting; draft-15 stacks look for
    WT_ENABLED and the WT_INITIAL_* limits. QPACK's dynamic table is off (capacity 0), so
    no header block can ever block on the encoder stream. SETTINGS_MAX_FIELD_SECTION_SIZE
    tells the peer what a header section may decode to (RFC 9114 §4.2.2).
    """
    opted_in = bool(initial_max_data or initial_max_streams_bidi or initial_max_streams_uni)
    settings: dict[int, int] = {
        c.SETTINGS_QPACK_MAX_TABLE_CAPACITY: 0,
        c.SETTINGS_QPACK_BLOCKED_STREAMS: 0,
        c.SETTINGS_MAX_FIELD_SECTION_SIZE: max_field_section_size,
        c.SETTINGS_H3_DATAGRAM: 1,
        c.SETTINGS_H3_DATAGRAM_DRAFT04: 1,
        c.SETTINGS_ENABLE_WEBTRANSPORT: 1,
        c.SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT07: max_sessions,
        # Draft-13 §5.1 ties session flow control to this value: above 1 on both ends turns it
        # on, with the WT_INITIAL_* limits below. Limits all 0 opt out (draft-15 §5.1); towards a
        # draft-13 peer that is saying 1, or its streams would wait on zero credit for good.
        c.SETTINGS_WT_MAX_SESSIONS: max_sessions if opted_in else 1,
        c.SETTINGS_WT_ENABLED: 1,
        c.SETTINGS_WT_INITIAL_MAX_DATA: initial_max_data,
        c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: initial_max_streams_uni,
        c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: initial_max_streams_bidi,
    }
    if not is_client:
        # RFC 9220 §3: only the server advertises extended CONNECT; never send 0.
        settings[c.SETTINGS_ENABLE_CONNECT_PROTOCOL] = 1
    return settings


def wants_flow_control(settings: dict[int, int], dialect: Dialect | None = None) -> bool:
    """Whether ``settings`` opt into session flow control in ``dialect`` (None: draft-15's rule).

    Draft-15 §5.1: any WT_INITIAL_* limit other than 0. Draft-13 §5.1: SETTINGS_WT_MAX_SESSIONS
    above 1 (a draft-13 endpoint allowing one session per connection has no flow control).
    """
    if dialect is Dialect.DRAFT13:
        return settings.get(c.SETTINGS_WT_MAX_SESSIONS, 0) > 1
    return any(settings.get(key, 0) for key in _FLOW_CONTROL_SETTINGS)


def flow_control_enabled(local: dict[int, int], peer: PeerSettings) -> bool:
    """Whether session flow control is on for this connection: only when both endpoints opted
    in, by the rule of the dialect the peer speaks (draft-15 §5.1, draft-13 §5.1); never with
    draft-02 or draft-07 peers, whose drafts have none."""
    dialect = peer.dialect
    if dialect not in (Dialect.DRAFT13, Dialect.DRAFT15):
        return False
    return wants_flow_control(local, dialect) and wants_flow_control(peer.raw, dialect)


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """What the peer's SETTINGS say about WebTransport."""

    raw: dict[int, int]

    @classmethod
    def parse(cls, settings: dict[int, int]) -> PeerSettings:
        """Check the values whose range the RFCs fix; RemoteProtocolError(H3_SETTINGS_ERROR).
        Keeps every known setting and the first ``UNKNOWN_SETTINGS_KEPT`` unknown ones."""
        for key in _BOOLEAN_SETTINGS:
            if settings.get(key, 0) > 1:  # RFC 9297 §2.1.1, RFC 9220 §3, draft-02 §3.1
                raise RemoteProtocolError(f"setting {c.describe_code(key, c.SettingsId)} has invalid value "
                                          f"{settings[key]} (0 or 1 allowed)",
                                          error_code=c.H3_SETTINGS_ERROR)
        if settings.get(c.SETTINGS_WT_ENABLED, 0) > 1:  # draft-15 §3.1: a boolean in this draft
            raise RemoteProtocolError(f"SETTINGS_WT_ENABLED has invalid value {settings[c.SETTINGS_WT_ENABLED]}",
                                      error_code=c.H3_SETTINGS_ERROR)
        known = _KNOWN_SETTINGS
        kept: dict[int, int] = {}
        unknown = 0
        for identifier, value in settings.items():
            if identifier in known:
                kept[identifier] = value
            elif unknown < UNKNOWN_SETTINGS_KEPT:
                kept[identifier] = value
                unknown += 1
        return cls(kept)

    @property
    def dialect(self) -> Dialect | None:
        """The newest WebTransport dialect the peer announced (None if it announced none)."""
        raw = self.raw
        if raw.get(c.SETTINGS_WT_ENABLED, 0):
            return Dialect.DRAFT15
        if raw.get(c.SETTINGS_WT_MAX_SESSIONS, 0):
            return Dialect.DRAFT13
        if raw.get(c.SETTINGS_WEBTRANSPORT_MAX_SESSIONS_DRAFT07, 0):
            return Dialect.DRAFT07
        if raw.get(c.SETTINGS_ENABLE_WEBTRANSPORT, 0):
            return Dialect.DRAFT02
        return None

    @property
    def supports_webtransport(self) -> bool:
        return self.dialect is not None

    @property
    def supports_datagrams(self) -> bool:
        """RFC 9297 §2.1.1 (or the draft-04 codepoint older peers use)."""
        return bool(self.raw.get(c.SETTINGS_H3_DATAGRAM, 0) or self.raw.get(c.SETTINGS_H3_DATAGRAM_DRAFT04, 0))

    @property
    def supports_extended_connect(self) -> bool:
        return self.raw.get(c.SETTINGS_ENABLE_CONNECT_PROTOCOL, 0) == 1

    @property
    def upgrade_token(self) -> str:
        """The ``:protocol`` a client sends this peer: draft-15 §3.2 defines webtransport-h3."""
        return "webtransport-h3" if self.dialect is Dialect.DRAFT15 else "webtransport"

    def limits_sessions(self, local: dict[int, int]) -> bool:
        """Whether one session per connection is all there may be: a draft-13/15 peer with
        flow control not enabled between it and ``local`` (our SETTINGS), §5.1 of both."""
        return self.dialect in (Dialect.DRAFT13, Dialect.DRAFT15) and not flow_control_enabled(local, self)

    @property
    def max_field_section_size(self) -> int | None:
        """The peer's SETTINGS_MAX_FIELD_SECTION_SIZE (None: unlimited, RFC 9114 §7.2.4.1)."""
        return self.raw.get(c.SETTINGS_MAX_FIELD_SECTION_SIZE)

    @property
    def initial_max_data(self) -> int:
        return self.raw.get(c.SETTINGS_WT_INITIAL_MAX_DATA, 0)

    @property
    def initial_max_streams_bidi(self) -> int:
        return self.raw.get(c.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI, 0)

    @property
    def initial_max_streams_uni(self) -> int:
        return self.raw.get(c.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI, 0)
