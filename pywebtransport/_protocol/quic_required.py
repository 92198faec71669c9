"""The private names of aioquic and qh3 this package reads, and the check that they exist.

Both libraries keep the same private state under the same names; ``quic_family``, ``quic``
and ``quic_qlog`` read it for both backends. ``FAMILY_REQUIRED_ATTRIBUTES`` lists those names
once; each backend's ``REQUIRED_ATTRIBUTES`` adds its own, and its ``missing_attributes()``
checks them on a real connection with ``missing_from``, so that a library release that drops
one fails a test naming it instead of failing in the field.
"""

from __future__ import annotations

__all__ = ["FAMILY_REQUIRED_ATTRIBUTES", "missing_from"]

#: Private names both libraries keep alike and ``quic_family``, ``quic`` and ``quic_qlog`` read,
#: as (owner, attribute): the first part of each backend's ``REQUIRED_ATTRIBUTES``.
FAMILY_REQUIRED_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("QuicConnection", "_events"),
    ("QuicConnection", "_network_paths"),
    ("QuicConnection", "_spaces"),
    ("QuicPacketSpace", "ack_at"),
    ("QuicPacketSpace", "largest_received_time"),
    ("QuicPacketRecovery", "bytes_in_flight"),
    ("QuicStreamReceiver", "_final_size"),
    ("QuicConnection", "_crypto_buffers"),
    ("QuicConnection", "_QuicConnection__frame_handlers"),
    ("QuicConnection", "_streams"),
    ("QuicConnection", "_local_next_stream_id_bidi"),
    ("QuicConnection", "_local_next_stream_id_uni"),
    ("QuicConnection", "_remote_max_streams_bidi"),
    ("QuicConnection", "_remote_max_streams_uni"),
    ("QuicConnection", "_remote_max_datagram_frame_size"),
    ("QuicConnection", "_remote_max_idle_timeout"),
    ("QuicConnection", "_max_datagram_size"),
    ("QuicConnection", "_datagrams_pending"),
    ("QuicConnection", "_write_datagram_frame"),
    ("QuicConnection", "_quic_logger"),
    ("QuicFileLogger", "_traces"),
    ("QuicConnection", "_host_cids"),
    ("QuicConnection", "_local_max_data"),
    ("QuicConnection", "_local_max_streams_bidi"),
    ("QuicConnection", "_local_max_streams_uni"),
    ("QuicConnection", "_loss"),
    ("QuicConnection", "_configuration"),
    ("QuicPacketRecovery", "_rtt_smoothed"),
    ("QuicPacketRecovery", "_rtt_min"),
    ("QuicPacketRecovery", "_rtt_latest"),
    ("QuicConnection", "_update_traffic_key"),
    ("QuicConnection", "_is_client"),  # which direction's 1-RTT secret is the server's
    ("QuicConnection", "_handshake_complete"),
    ("tls.Context", "key_schedule"),
    ("tls.Context", "_peer_certificate_chain"),
    ("QuicConnection", "_state"),
    ("QuicConnection", "_close_event"),
    ("QuicConnection", "_close_pending"),
    ("QuicConnection", "_close_at"),
)


def missing_from(required: tuple[tuple[str, str], ...], owners: dict[str, object]) -> list[str]:
    """The ``owner.attribute`` entries of ``required`` that ``owners`` (an object per owner
    name) lack; ``a|b`` is satisfied by either name (a library release renamed it)."""
    return [f"{owner}.{name}" for owner, name in required
            if owners[owner] is None or not any(hasattr(owners[owner], one) for one in name.split("|"))]
