"""The QUIC shim: every aioquic internal it reads exists, and its refusal packet is one a
real aioquic client understands."""

from __future__ import annotations

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet import QuicErrorCode

from pywebtransport._protocol.quic import (
    BackpressuredQuicConnection,
    build_connection_refused,
    congestion_control_algorithms,
    missing_attributes,
)


def test_every_aioquic_internal_the_shim_reads_exists() -> None:
    connection = BackpressuredQuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"]))
    connection.connect(("127.0.0.1", 4433), now=0.0)
    assert missing_attributes(connection) == []
    assert "reno" in congestion_control_algorithms()
    assert connection.rtt().congestion_window > 0
    assert connection.host_connection_ids() and connection.peer_certificate is None


def test_refusal_closes_an_aioquic_client_with_connection_refused() -> None:
    client = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"]))
    client.connect(("127.0.0.1", 4433), now=0.0)
    initial, addr = client.datagrams_to_send(now=0.0)[0]
    dcid_len = initial[5]
    dcid = initial[6:6 + dcid_len]
    scid = initial[7 + dcid_len:7 + dcid_len + initial[6 + dcid_len]]
    reply = build_connection_refused(version=1, client_dcid=dcid, client_scid=scid)
    assert reply is not None and len(reply) < len(initial)  # no amplification
    client.receive_datagram(reply, addr, now=0.01)
    assert client._state is QuicConnectionState.DRAINING  # noqa: SLF001 - aioquic has no public state
    client.handle_timer(client.get_timer() or 1.0)
    terminated = [e for e in iter(client.next_event, None) if isinstance(e, ConnectionTerminated)]
    assert terminated and terminated[0].error_code == QuicErrorCode.CONNECTION_REFUSED


def test_refusal_for_a_version_aioquic_cannot_build_is_none() -> None:
    assert build_connection_refused(version=0x1A2A3A4A, client_dcid=b"\x01" * 8, client_scid=b"\x02" * 4) is None


def test_refusal_closes_a_qh3_client_with_connection_refused() -> None:
    from pywebtransport._protocol.quic import ConnectionTerminated as NeutralTerminated
    from pywebtransport._protocol.quic import create_quic_connection

    client = create_quic_connection("qh3", is_client=True, verify_peer=False, server_name="localhost")
    client.connect(("127.0.0.1", 4433), now=0.0)
    initial, addr = client.datagrams_to_send(now=0.0)[0]
    dcid_len = initial[5]
    dcid = initial[6:6 + dcid_len]
    scid = initial[7 + dcid_len:7 + dcid_len + initial[6 + dcid_len]]
    reply = build_connection_refused(version=1, client_dcid=dcid, client_scid=scid)
    assert reply is not None
    client.receive_datagram(reply, addr, now=0.01)
    client.handle_timer(client.get_timer() or 1.0)
    terminated = [e for e in iter(client.next_event, None) if isinstance(e, NeutralTerminated)]
    assert terminated and terminated[0].error_code == QuicErrorCode.CONNECTION_REFUSED
    assert not terminated[0].idle_timeout
