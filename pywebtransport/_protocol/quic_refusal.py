"""CONNECTION_REFUSED at once: the server's answer to an Initial it declines (RFC 9000 §10.2.3).

Built with aioquic's packet builder whichever backend serves the other connections; the
endpoint sends it for a server that is full, closing or over its handshake cap.
"""

from __future__ import annotations

import os

from aioquic.quic.packet import QuicFrameType

__all__ = ["build_connection_refused"]


def build_connection_refused(*, version: int, client_dcid: bytes, client_scid: bytes,
                             reason: str = "server busy") -> bytes | None:
    """A server Initial carrying CONNECTION_CLOSE(CONNECTION_REFUSED) for a client Initial
    the server will not serve (RFC 9000 §10.2.3, §20.1), so the client learns at once
    instead of waiting out its timeout. None for a version aioquic cannot build. The packet
    is the same whichever backend serves the other connections."""
    from aioquic.quic.crypto import CryptoPair
    from aioquic.quic.packet import QuicErrorCode, QuicPacketType, QuicProtocolVersion
    from aioquic.quic.packet_builder import QuicPacketBuilder

    if version not in (QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2):
        return None
    try:
        crypto = CryptoPair()
        # Initial keys come from the client's first destination connection id (RFC 9001 §5.2).
        crypto.setup_initial(cid=client_dcid, is_client=False, version=version)
        builder = QuicPacketBuilder(host_cid=os.urandom(8), peer_cid=client_scid, version=version, is_client=False,
                                    max_datagram_size=1200)
        builder.start_packet(QuicPacketType.INITIAL, crypto)
        phrase = reason.encode("utf-8")[:64]
        buf = builder.start_frame(QuicFrameType.TRANSPORT_CLOSE, capacity=1 + 3 * 8 + len(phrase))
        buf.push_uint_var(QuicErrorCode.CONNECTION_REFUSED)
        buf.push_uint_var(0)  # frame type: none in particular
        buf.push_uint_var(len(phrase))
        buf.push_bytes(phrase)
        datagrams, _ = builder.flush()
    except Exception:  # an unsupported version or a malformed id: drop silently instead
        return None
    return datagrams[0] if datagrams else None
