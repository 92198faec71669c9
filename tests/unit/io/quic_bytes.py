"""Hand-built QUIC packet bytes (RFC 9000 §17) for the endpoint tests; no QUIC library used."""

from __future__ import annotations

import struct

V1 = 0x00000001
V2 = 0x6B3343CF
#: A reserved "greasing" version (RFC 9000 §15): no endpoint supports it.
UNKNOWN_VERSION = 0x1A2A3A4A

# Two-bit long packet types (RFC 9000 §17.2, RFC 9369 §3.2).
LONG_TYPE_BITS = {
    V1: {"initial": 0, "0-rtt": 1, "handshake": 2, "retry": 3},
    V2: {"initial": 1, "0-rtt": 2, "handshake": 3, "retry": 0},
}


def varint(value: int) -> bytes:
    """Encode a QUIC variable-length integer in its shortest form (RFC 9000 §16)."""
    if value < 1 << 6:
        return bytes((value,))
    if value < 1 << 14:
        return struct.pack("!H", value | 0x4000)
    if value < 1 << 30:
        return struct.pack("!I", value | 0x80000000)
    return struct.pack("!Q", value | 0xC000000000000000)


def long_packet(kind: str, *, dcid: bytes, scid: bytes, version: int = V1, size: int = 1200,
                token: bytes = b"") -> bytes:
    """A long-header packet of ``kind`` padded to ``size`` bytes, its Length field consistent."""
    first = 0xC0 | (LONG_TYPE_BITS[version][kind] << 4) | 0x03  # 4-byte packet number
    head = struct.pack("!BI", first, version) + bytes((len(dcid),)) + dcid + bytes((len(scid),)) + scid
    if kind == "retry":
        return head + token + bytes(16)  # Retry Token, Retry Integrity Tag
    if kind == "initial":
        head += varint(len(token)) + token
    rest = size - len(head) - 2  # Length below is a two-byte varint
    assert 0 <= rest < 1 << 14, "size too small for this header"
    return head + struct.pack("!H", 0x4000 | rest) + bytes(rest)


def unknown_version_packet(*, dcid: bytes, scid: bytes, size: int = 1200) -> bytes:
    """A long header of an unknown version: only the RFC 8999 invariants, then padding."""
    head = struct.pack("!BI", 0xC0, UNKNOWN_VERSION) + bytes((len(dcid),)) + dcid + bytes((len(scid),)) + scid
    return head + bytes(size - len(head))


def short_packet(dcid: bytes, size: int = 60) -> bytes:
    """A 1-RTT (short header) packet to ``dcid`` (RFC 9000 §17.3)."""
    return bytes((0x40 | 0x03,)) + dcid + bytes(size - 1 - len(dcid))


def parse_version_negotiation(data: bytes) -> tuple[bytes, bytes, list[int]]:
    """(destination cid, source cid, versions) of a Version Negotiation packet (§17.2.1)."""
    assert data[0] & 0x80, "not a long header"
    assert struct.unpack_from("!I", data, 1)[0] == 0, "version is not 0"
    pos = 5
    dcid = data[pos + 1:pos + 1 + data[pos]]
    pos += 1 + data[pos]
    scid = data[pos + 1:pos + 1 + data[pos]]
    pos += 1 + data[pos]
    assert (len(data) - pos) % 4 == 0, "supported versions are not whole 32-bit words"
    versions = [struct.unpack_from("!I", data, i)[0] for i in range(pos, len(data), 4)]
    return dcid, scid, versions
