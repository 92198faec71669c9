"""The endpoint's own QUIC header parser (RFC 9000 §17, RFC 8999) on hand-built bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywebtransport._io.packets import (
    SUPPORTED_VERSIONS,
    PacketHeader,
    PacketType,
    encode_version_negotiation,
    parse_header,
)
from tests.unit.io.quic_bytes import (
    UNKNOWN_VERSION,
    V1,
    V2,
    long_packet,
    parse_version_negotiation,
    short_packet,
    unknown_version_packet,
    varint,
)

DCID = bytes(range(1, 9))
SCID = bytes(range(0x21, 0x2D))  # 12 bytes: lengths differ on purpose


def parse(data: bytes) -> PacketHeader | None:
    return parse_header(data, short_cid_length=8)


@pytest.mark.parametrize("version", [V1, V2])
@pytest.mark.parametrize(("kind", "expected"), [
    ("initial", PacketType.INITIAL), ("0-rtt", PacketType.ZERO_RTT),
    ("handshake", PacketType.HANDSHAKE), ("retry", PacketType.RETRY),
])
def test_long_header_type_version_and_cids_per_version(version: int, kind: str, expected: PacketType) -> None:
    header = parse(long_packet(kind, dcid=DCID, scid=SCID, version=version, token=b"tok"))
    assert header == PacketHeader(expected, version, DCID, SCID)


def test_initial_with_a_token_and_empty_cids_parses() -> None:
    header = parse(long_packet("initial", dcid=b"", scid=b"", token=b"t" * 70))  # token length is a 2-byte varint
    assert header == PacketHeader(PacketType.INITIAL, V1, b"", b"")


def test_short_header_takes_the_configured_cid_length() -> None:
    data = short_packet(DCID + b"\xff\xff")
    assert parse_header(data, short_cid_length=8) == PacketHeader(PacketType.ONE_RTT, None, DCID, b"")
    assert parse_header(data, short_cid_length=10) == PacketHeader(PacketType.ONE_RTT, None, DCID + b"\xff\xff", b"")


def test_unknown_version_keeps_the_invariant_fields_even_with_long_cids() -> None:
    long_dcid = bytes(range(40))  # RFC 8999 §5.1 allows up to 255 bytes for other versions
    header = parse(unknown_version_packet(dcid=long_dcid, scid=SCID))
    assert header == PacketHeader(PacketType.UNKNOWN, UNKNOWN_VERSION, long_dcid, SCID)


def test_version_negotiation_packet_is_recognised() -> None:
    data = encode_version_negotiation(destination_cid=SCID, source_cid=DCID)
    assert parse(data) == PacketHeader(PacketType.VERSION_NEGOTIATION, 0, SCID, DCID)


def test_encoded_version_negotiation_lists_the_supported_versions() -> None:
    dcid, scid, versions = parse_version_negotiation(encode_version_negotiation(destination_cid=SCID, source_cid=DCID))
    assert (dcid, scid) == (SCID, DCID)
    assert versions == list(SUPPORTED_VERSIONS) == [V1, V2]


@pytest.mark.parametrize(("name", "data"), [
    ("empty", b""),
    ("short header without fixed bit", bytes((0x03,)) + DCID),
    ("short header shorter than its cid", bytes((0x43,)) + DCID[:7]),
    ("long header cut in the version", bytes((0xC0, 0, 0, 0))),
    ("long header cut before the dcid length", struct.pack("!BI", 0xC0, V1)),
    ("dcid longer than the datagram", struct.pack("!BIB", 0xC0, V1, 8) + DCID[:5]),
    ("scid length missing", struct.pack("!BIB", 0xC0, V1, 8) + DCID),
    ("v1 dcid longer than 20 bytes", struct.pack("!BIB", 0xC0, V1, 21) + bytes(21) + b"\x00" + bytes(1200)),
    ("v1 scid longer than 20 bytes", struct.pack("!BIB", 0xC0, V1, 8) + DCID + b"\x15" + bytes(1200)),
    ("v1 long header without fixed bit", bytes((0x80,)) + long_packet("initial", dcid=DCID, scid=SCID)[1:]),
    ("initial token cut", long_packet("initial", dcid=DCID, scid=SCID)[:7 + 8 + 12]),
    ("initial token longer than the datagram",
     struct.pack("!BI", 0xC0, V1) + b"\x08" + DCID + b"\x00" + varint(5000) + bytes(1200)),
    ("initial length longer than the datagram", long_packet("initial", dcid=DCID, scid=SCID)[:1199]),
    ("handshake length field missing", long_packet("handshake", dcid=DCID, scid=SCID)[:1 + 4 + 9 + 13]),
])
def test_truncated_or_malformed_input_gives_none(name: str, data: bytes) -> None:
    assert parse(data) is None, name


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80), st.integers(min_value=0, max_value=20))
def test_arbitrary_bytes_never_raise(data: bytes, cid_length: int) -> None:
    header = parse_header(data, short_cid_length=cid_length)
    assert header is None or isinstance(header, PacketHeader)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=20), st.binary(min_size=0, max_size=20), st.binary(max_size=100),
       st.sampled_from(["initial", "0-rtt", "handshake"]), st.sampled_from([V1, V2]), st.data())
def test_every_prefix_of_a_valid_packet_parses_or_gives_none(dcid: bytes, scid: bytes, token: bytes, kind: str,
                                                             version: int, data: st.DataObject) -> None:
    packet = long_packet(kind, dcid=dcid, scid=scid, version=version, token=token, size=1200)
    cut = data.draw(st.integers(min_value=0, max_value=len(packet)))
    header = parse(packet[:cut])
    if cut == len(packet):
        assert header is not None and header.destination_cid == dcid and header.source_cid == scid
    else:
        assert header is None  # the Length field covers the whole packet, so any cut shows
