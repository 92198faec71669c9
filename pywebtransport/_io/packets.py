"""The few QUIC header fields the endpoint routes by, parsed without aioquic (RFC 9000 §17).

Only the version-independent invariants (RFC 8999 §5) are trusted for unknown versions; for
QUIC v1 and v2 the long header is checked as far as the Length field so that a truncated
Initial is not mistaken for a real one. Parsing never raises: bad input gives ``None``.
"""

from __future__ import annotations

import enum
import os
import struct
from dataclasses import dataclass

from pywebtransport._wire import buffer

__all__ = [
    "QUIC_VERSION_1",
    "QUIC_VERSION_2",
    "SUPPORTED_VERSIONS",
    "PacketHeader",
    "PacketType",
    "encode_version_negotiation",
    "parse_header",
]

QUIC_VERSION_1 = 0x00000001
QUIC_VERSION_2 = 0x6B3343CF  # RFC 9369 §3.1
SUPPORTED_VERSIONS = (QUIC_VERSION_1, QUIC_VERSION_2)
_VERSION_NEGOTIATION = 0x00000000

_LONG_HEADER = 0x80
_FIXED_BIT = 0x40
#: RFC 9000 §17.2: v1 and v2 connection ids are at most 20 bytes; other versions may use more.
_MAX_CID_LENGTH = 20


class PacketType(enum.Enum):
    """The packet types the endpoint tells apart (RFC 9000 §17.2, §17.3)."""

    INITIAL = "initial"
    ZERO_RTT = "0-rtt"
    HANDSHAKE = "handshake"
    RETRY = "retry"
    VERSION_NEGOTIATION = "version negotiation"
    ONE_RTT = "1-rtt"
    #: A long header of a version this endpoint does not speak: only the invariants are known.
    UNKNOWN = "unknown"


#: The type of nearly every packet, as a module global: ``PacketType.ONE_RTT`` costs about
#: 100 ns a read on Python 3.10 and 3.11 (``EnumType.__getattr__``), per datagram here.
_ONE_RTT = PacketType.ONE_RTT

# The two-bit long packet type differs between versions (RFC 9000 §17.2, RFC 9369 §3.2).
_LONG_TYPES = {
    QUIC_VERSION_1: (PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE, PacketType.RETRY),
    QUIC_VERSION_2: (PacketType.RETRY, PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE),
}


@dataclass(frozen=True, slots=True)
class PacketHeader:
    """Routing fields of the first packet in a datagram; ``version`` is None for a short header."""

    packet_type: PacketType
    version: int | None
    destination_cid: bytes
    source_cid: bytes


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """A QUIC varint at ``pos`` (RFC 9000 §16) as (value, next), or None when the data ends
    first: routing must never raise on garbage."""
    try:
        return buffer.decode_varint(data, pos)
    except buffer.BufferReadError:
        return None


def parse_header(data: bytes, *, short_cid_length: int) -> PacketHeader | None:
    """Parse the header of the first QUIC packet in ``data``; None when it is not QUIC.

    ``short_cid_length`` is the length of the connection ids this endpoint issues: a short
    header does not carry its destination connection id's length (RFC 9000 §17.3).
    """
    if not data:
        return None
    first = data[0]
    if not first & _LONG_HEADER:
        if not first & _FIXED_BIT or len(data) < 1 + short_cid_length:
            return None
        return PacketHeader(_ONE_RTT, None, bytes(data[1:1 + short_cid_length]), b"")

    # Long header invariants (RFC 8999 §5.1): version, then two length-prefixed CIDs.
    if len(data) < 6:
        return None
    (version,) = struct.unpack_from("!I", data, 1)
    known = version in _LONG_TYPES
    pos = 5
    cids: list[bytes] = []
    for _ in range(2):
        if pos >= len(data):
            return None
        length = data[pos]
        if known and length > _MAX_CID_LENGTH:
            return None
        pos += 1
        if pos + length > len(data):
            return None
        cids.append(bytes(data[pos:pos + length]))
        pos += length
    dcid, scid = cids

    if version == _VERSION_NEGOTIATION:
        return PacketHeader(PacketType.VERSION_NEGOTIATION, version, dcid, scid)
    if not known:
        return PacketHeader(PacketType.UNKNOWN, version, dcid, scid)
    if not first & _FIXED_BIT:
        return None
    packet_type = _LONG_TYPES[version][(first & 0x30) >> 4]
    if packet_type is PacketType.RETRY:
        return PacketHeader(packet_type, version, dcid, scid)
    if packet_type is PacketType.INITIAL:
        token = _varint(data, pos)
        if token is None or token[1] + token[0] > len(data):
            return None
        pos = token[1] + token[0]
    length_field = _varint(data, pos)
    if length_field is None or length_field[1] + length_field[0] > len(data):
        return None  # the packet claims more bytes than the datagram holds
    return PacketHeader(packet_type, version, dcid, scid)


def encode_version_negotiation(*, destination_cid: bytes, source_cid: bytes,
                               versions: tuple[int, ...] = SUPPORTED_VERSIONS) -> bytes:
    """Build a Version Negotiation packet (RFC 9000 §17.2.1).

    The CIDs are given from the sender's side: ``destination_cid`` is the client's source
    CID, ``source_cid`` echoes the client's destination CID.
    """
    unused = os.urandom(1)[0] & 0x7F  # the low seven bits are unused and SHOULD be random
    return b"".join((
        struct.pack("!BIB", _LONG_HEADER | unused, _VERSION_NEGOTIATION, len(destination_cid)),
        destination_cid,
        bytes((len(source_cid),)),
        source_cid,
        *(struct.pack("!I", v) for v in versions),
    ))
