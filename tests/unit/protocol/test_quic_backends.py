"""The QUIC seam on each backend (aioquic, qh3): whole sessions, read-driven stream credit,
stream-count credit, neutral events, certificates (client ones too), lost datagrams, idle
timeouts, the TLS exporter, and what an early reset does without RESET_STREAM_AT.

qh3 is installed with the test extra; these tests run on it, they never skip it.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pywebtransport._protocol import EngineConfig, WebTransportEngine
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as seam
from pywebtransport.types import CloseCause

from .harness import AIOQUIC_DOUBLES_MAX_STREAMS, CLIENT_ADDR, PER_STREAM_MAX_STREAMS_REASON, SERVER_ADDR, Pair
from .harness import test_certificate as make_certificate

BACKENDS = seam.BACKENDS
WINDOW = 64 * 1024  # the QUIC stream receive window of the tests below

#: Session flow control far above the QUIC window, so QUIC's stream credit is what binds.
NO_SESSION_LIMIT = EngineConfig(initial_max_data=1 << 30)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def record_quic_events(engine: WebTransportEngine) -> list[Any]:
    """Record every event the engine's QUIC connection hands the engine."""
    seen: list[Any] = []
    quic = engine.quic
    next_event = quic.next_event

    def recording() -> Any:
        event = next_event()
        if event is not None:
            seen.append(event)
        return event

    quic.next_event = recording  # type: ignore[method-assign]
    return seen


def test_both_backends_are_installed_and_known() -> None:
    assert seam.available_backends() == ("aioquic", "qh3")
    assert seam.resolve_backend("qh3") == "qh3"
    with pytest.raises(ValueError, match="unknown QUIC backend"):
        seam.resolve_backend("picoquic")


def test_the_environment_variable_picks_the_default_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(seam.BACKEND_ENV, "qh3")
    assert seam.resolve_backend() == "qh3"
    assert seam.create_quic_connection(is_client=True).backend == "qh3"
    assert seam.resolve_backend("aioquic") == "aioquic"  # an explicit choice wins
    monkeypatch.delenv(seam.BACKEND_ENV)
    assert seam.create_quic_connection(is_client=True).backend == "aioquic"


def test_every_private_attribute_the_backend_reads_exists(backend: str) -> None:
    pair = Pair(backend=backend)
    pair.open_session()
    for quic in (pair.client.quic, pair.server.quic):
        assert quic.backend == backend
        assert seam.missing_attributes(quic) == []
        assert quic.rtt().smoothed > 0 and quic.rtt().congestion_window > 0
        assert quic.host_cid in quic.host_connection_ids()


def test_a_whole_session_runs_on_each_backend(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    bidi = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(bidi, b"ping", end_stream=True)
    uni = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(uni, b"one way", end_stream=True)
    assert pair.client.send_datagram(sid, b"dgram")
    pair.run()
    assert pair.stream_payload("server", bidi) == (b"ping", True)
    assert pair.stream_payload("server", uni) == (b"one way", True)
    assert [d.data for d in pair.take("server", ev.DatagramReceived)] == [b"dgram"]
    pair.server.send_stream_data(bidi, b"pong", end_stream=True)
    pair.run()
    assert pair.stream_payload("client", bidi) == (b"pong", True)
    assert pair.client.stream_send_acknowledged(bidi)
    pair.client.close_session(sid, 7, "done")
    pair.run()
    closed = pair.one("server", ev.SessionClosed)
    assert (closed.error_code, closed.reason, closed.by_peer) == (7, "done", True)
    pair.client.close()
    pair.run()
    terminated = pair.one("server", ev.ConnectionTerminated)
    assert terminated.by_peer


def _deliver_acks(pair: Pair, side: str) -> None:
    """Move ``side``'s next packets (its ACKs, once its ACK delay fired) to the other side."""
    sender, receiver = (pair.client, pair.server) if side == "client" else (pair.server, pair.client)
    to = SERVER_ADDR if side == "client" else CLIENT_ADDR
    for _ in range(100):
        packets = sender.datagrams_to_send(pair.now)
        if packets:
            for data, _ in packets:
                receiver.receive_datagram(data, to, pair.now)
            return
        timer = sender.get_timer()
        assert timer is not None, f"the {side} has nothing to send and no timer"
        pair.now = max(pair.now, timer)
        sender.handle_timer(pair.now)
    raise AssertionError(f"the {side} sent nothing")


def test_a_fin_written_after_its_data_left_is_sent_even_if_that_data_is_acked_first(backend: str) -> None:
    # The echo pattern: the data goes out, then the application finishes the stream, and
    # the peer's ACK of the data arrives before the next packet is built. The stream must
    # not count as done (and be discarded) until the FIN itself is acknowledged: qh3 1.x's
    # native sender calls itself finished as soon as the data up to the FIN offset is
    # acknowledged, and the page of a browser then waited forever for the end of the stream.
    pair = Pair(backend=backend)
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"ping", end_stream=True)
    pair.run()
    assert pair.stream_payload("server", stream_id) == (b"ping", True)
    pair.server.send_stream_data(stream_id, b"pong")
    for data, _ in pair.server.datagrams_to_send(pair.now):  # the data leaves, no FIN yet
        pair.client.receive_datagram(data, SERVER_ADDR, pair.now)
    pair.server.send_stream_data(stream_id, b"", end_stream=True)
    _deliver_acks(pair, "client")  # the data is acknowledged before the FIN is ever sent
    assert not pair.server.stream_send_acknowledged(stream_id)
    pair.run()
    assert pair.stream_payload("client", stream_id) == (b"pong", True)
    assert pair.server.stream_send_acknowledged(stream_id)


def test_a_lost_fin_is_sent_again_after_its_data_was_acknowledged(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"ping", end_stream=True)
    pair.run()
    pair.take("server")
    pair.server.send_stream_data(stream_id, b"pong")
    for data, _ in pair.server.datagrams_to_send(pair.now):
        pair.client.receive_datagram(data, SERVER_ADDR, pair.now)
    pair.server.send_stream_data(stream_id, b"", end_stream=True)
    assert pair.server.datagrams_to_send(pair.now)  # the packet with the FIN is lost
    _deliver_acks(pair, "client")  # ACK of the data only
    pair.run(horizon=5.0)  # loss recovery sends the FIN again
    assert pair.stream_payload("client", stream_id) == (b"pong", True)
    assert pair.server.stream_send_acknowledged(stream_id)


def test_only_backend_neutral_events_reach_the_engine(backend: str) -> None:
    pair = Pair(backend=backend)
    client_seen, server_seen = record_quic_events(pair.client), record_quic_events(pair.server)
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"x")
    pair.client.send_datagram(sid, b"d")
    pair.run()
    pair.server.reset_stream(stream_id, 3)
    pair.server.stop_stream(stream_id, 4)
    pair.run()
    pair.client.close()
    pair.run()
    seen = client_seen + server_seen
    kinds = {type(event) for event in seen}
    assert {seam.HandshakeCompleted, seam.StreamDataReceived, seam.DatagramFrameReceived, seam.StreamReset,
            seam.StopSendingReceived, seam.ConnectionTerminated} <= kinds
    assert all(type(event).__module__ == seam.__name__ for event in seen), kinds
    handshake = next(e for e in seen if isinstance(e, seam.HandshakeCompleted))
    assert handshake.alpn_protocol == "h3"


def _send_under_a_slow_reader(backend: str, rounds_before_reading: int) -> tuple[Pair, int, list[int], int]:
    """Client writes 512 KiB to a server that reads only when told; returns what arrived
    after each round of not reading, and the server's consumption records before."""
    pair = Pair(backend=backend, server_quic={"max_stream_data": WINDOW}, client_config=NO_SESSION_LIMIT,
                server_config=NO_SESSION_LIMIT)
    sid = pair.open_session()
    records = pair.server.quic.consumed_records
    stream_id = pair.client.open_stream(sid, is_unidirectional=True)
    pair.client.send_stream_data(stream_id, b"s" * (512 * 1024), end_stream=True)
    arrived: list[int] = []
    total = 0
    for _ in range(rounds_before_reading):
        pair.run(horizon=2.0)  # timers fire too: the sender's probes and STREAM_DATA_BLOCKED go out
        total += sum(len(e.data) for e in pair.take("server", ev.StreamDataReceived))
        arrived.append(total)
    return pair, stream_id, arrived, records


def test_a_slow_reader_caps_what_the_sender_can_have_in_flight(backend: str) -> None:
    pair, stream_id, arrived, _ = _send_under_a_slow_reader(backend, rounds_before_reading=5)
    assert 0 < arrived[-1] <= WINDOW, arrived
    assert arrived[-1] == arrived[0]  # nothing more arrives however long the reader waits
    assert pair.server.quic.stream_window(stream_id) < 1024
    assert pair.client.stream_send_buffered(stream_id) >= 512 * 1024 - WINDOW


def test_reading_grants_credit_one_window_ahead_until_everything_arrives(backend: str) -> None:
    pair, stream_id, arrived, records = _send_under_a_slow_reader(backend, rounds_before_reading=1)
    consumed, fin = 0, False
    received = arrived[-1]
    for _ in range(100):
        pair.server.consume_stream_data(stream_id, received - consumed)
        consumed = received
        pair.run()
        for event in pair.take("server", ev.StreamDataReceived):
            received += len(event.data)
            fin = fin or event.end_stream
        # never more than one window beyond what the application has read
        assert received <= consumed + WINDOW, (received, consumed)
        if fin:
            break
    assert fin and received == 512 * 1024
    pair.server.consume_stream_data(stream_id, received - consumed)
    pair.run()
    assert pair.server.quic.consumed_records == records  # the finished stream's record is gone


def _stream_count_pair(backend: str, *, limit: int | None = None) -> Pair:
    """A pair whose server grants the client ``limit`` bidirectional streams (its default if None)."""
    if backend == "aioquic" and AIOQUIC_DOUBLES_MAX_STREAMS:
        pytest.skip(PER_STREAM_MAX_STREAMS_REASON)

    def set_limit(engine: WebTransportEngine) -> None:
        if limit is not None:
            grant = engine.quic._local_max_streams_bidi  # noqa: SLF001 - test-only tweak of the grant
            grant.value = grant.sent = limit

    return Pair(backend=backend, tweak_server=set_limit, client_config=NO_SESSION_LIMIT,
                server_config=NO_SESSION_LIMIT)


def _request(pair: Pair, sid: int) -> int:
    """One request stream, asked and answered with FINs both ways; its id."""
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"q", end_stream=True)
    pair.run()
    pair.server.send_stream_data(stream_id, b"a", end_stream=True)
    pair.run()
    return stream_id


def test_peer_stream_count_credit_follows_finished_streams(backend: str) -> None:
    pair = _stream_count_pair(backend, limit=8)
    sid = pair.open_session()
    opened = []
    while pair.client.quic.can_open_stream(is_unidirectional=False):
        stream_id = pair.client.open_stream(sid, is_unidirectional=False)
        pair.client.send_stream_data(stream_id, b"q")
        opened.append(stream_id)
    pair.run(horizon=2.0)
    assert len(opened) == 7  # the CONNECT stream holds the eighth
    # however long the streams stay open, no more credit comes: concurrency is bounded
    assert not pair.client.quic.can_open_stream(is_unidirectional=False)
    for stream_id in opened:
        pair.client.send_stream_data(stream_id, b"", end_stream=True)
        pair.server.send_stream_data(stream_id, b"a", end_stream=True)
    pair.run()
    assert pair.client.quic.can_open_stream(is_unidirectional=False)


def test_stream_count_credit_goes_back_in_batches_not_a_frame_per_stream(backend: str) -> None:
    pair = _stream_count_pair(backend)
    sid = pair.open_session()
    limit = pair.server.quic._local_max_streams_bidi  # noqa: SLF001 - what the server has advertised
    advertised = [limit.sent]
    for _ in range(300):  # one request stream at a time, as a request/response app opens them
        _request(pair, sid)
        if limit.sent != advertised[-1]:
            advertised.append(limit.sent)
    # every finished stream's slot came back (301 opened with the CONNECT stream's) ...
    assert advertised[-1] >= 301
    # ... a few dozen at a time: a MAX_STREAMS per stream cost a packet and its ACK each
    assert len(advertised) <= 10, advertised
    assert pair.client.quic.can_open_stream(is_unidirectional=False)


def test_held_back_stream_credit_is_granted_once_the_peer_reaches_its_limit(backend: str) -> None:
    pair = _stream_count_pair(backend, limit=8)
    sid = pair.open_session()
    for _ in range(3):  # finished: three slots come back, but the peer still has four to open
        _request(pair, sid)
    held = []
    while pair.client.quic.can_open_stream(is_unidirectional=False):  # then it opens all it may, keeping them
        stream_id = pair.client.open_stream(sid, is_unidirectional=False)
        pair.client.send_stream_data(stream_id, b"q")
        held.append(stream_id)
        pair.run()
        assert len(held) < 20
    # the three held-back slots were granted when the peer ran out: 4 + 3 open at once
    assert len(held) == 7
    pair.run(horizon=2.0)
    assert not pair.client.quic.can_open_stream(is_unidirectional=False)


def test_a_stream_that_arrives_late_does_not_hold_back_the_credit_of_a_peer_at_its_limit(backend: str) -> None:
    pair = _stream_count_pair(backend, limit=8)
    sid = pair.open_session()
    first = pair.client.open_stream(sid, is_unidirectional=False)
    assert pair.client.datagrams_to_send(pair.now)  # the packet opening it is lost
    held = [first]
    while pair.client.quic.can_open_stream(is_unidirectional=False):
        held.append(pair.client.open_stream(sid, is_unidirectional=False))
        assert len(held) < 20
    pair.run(horizon=5.0)  # the later streams arrive first; loss recovery resends the first last
    assert len(held) == 7
    for stream_id in held[:6]:  # six finish, one stays open
        pair.client.send_stream_data(stream_id, b"q", end_stream=True)
        pair.run()
        pair.server.send_stream_data(stream_id, b"a", end_stream=True)
        pair.run()
    pair.run(horizon=5.0)
    # the peer reached its limit, so the slots of its six finished streams are its again
    assert pair.client.quic.can_open_stream(is_unidirectional=False)


def test_each_end_is_given_one_spare_connection_id_not_seven(backend: str) -> None:
    pair = Pair(backend=backend)
    pair.open_session()
    pair.run(horizon=1.0)
    # the handshake's own id, then one NEW_CONNECTION_ID each way: both ends advertise
    # active_connection_id_limit 2 (the libraries' default of 8 cost 7 frames, events and
    # routing entries a side)
    assert len(pair.take("server", ev.ConnectionIdIssued)) == 1
    assert len(pair.take("client", ev.ConnectionIdIssued)) == 1
    assert pair.client.quic.missing_attributes() == [] and pair.server.quic.missing_attributes() == []


def test_the_peer_certificate_is_the_same_der_on_each_backend(backend: str) -> None:
    pair = Pair(backend=backend)
    pair.open_session()
    cert, _ = make_certificate()
    der = cert.public_bytes(Encoding.DER)
    assert pair.client.quic.peer_certificate_der == der
    assert pair.client.quic.peer_certificate == cert
    assert hashlib.sha256(pair.client.quic.peer_certificate_der or b"").digest() == hashlib.sha256(der).digest()
    assert pair.server.quic.peer_certificate_der is None  # no client certificate


def test_datagrams_in_lost_packets_are_counted_as_dropped(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    for i in range(20):
        assert pair.client.send_datagram(sid, b"%d" % i + b"." * 500)
    lost = 0
    while pair.client.quic.pending_datagrams:  # every packet carrying them is lost on the way
        lost += len(pair.client.datagrams_to_send(pair.now))
        pair.now += 0.005
    assert lost
    assert pair.client.quic.datagrams_dropped == 0
    pair.run(horizon=5.0)  # the server's later ACKs and the client's timers declare them lost
    for i in range(5):
        pair.client.send_datagram(sid, b"after %d" % i)
    pair.run(horizon=5.0)
    delivered = pair.take("server", ev.DatagramReceived)
    assert [d.data for d in delivered] == [b"after %d" % i for i in range(5)]
    assert pair.client.quic.datagrams_dropped == 20
    assert pair.server.quic.datagrams_dropped == 0
    # counted where the application looks: the session's dropped datagrams
    snapshot = pair.client.session_snapshot(sid)
    assert snapshot is not None and snapshot.datagrams_dropped == 20 and snapshot.datagrams_sent == 25


def test_an_idle_timeout_is_reported_as_such_on_each_backend(backend: str) -> None:
    pair = Pair(backend=backend, client_quic={"idle_timeout": 5.0}, server_quic={"idle_timeout": 5.0})
    sid = pair.open_session()
    assert pair.client.quic.peer_max_idle_timeout == 5.0
    pair.run(horizon=30.0, max_rounds=50)
    closed = pair.one("client", ev.SessionClosed)
    assert closed.session_id == sid and closed.cause is CloseCause.IDLE_TIMEOUT
    terminated = pair.one("client", ev.ConnectionTerminated)
    assert not terminated.by_peer


@pytest.mark.parametrize(("client_backend", "server_backend"), [("aioquic", "qh3"), ("qh3", "aioquic")])
def test_the_backends_talk_to_each_other(client_backend: str, server_backend: str) -> None:
    cert, key = make_certificate()
    client = WebTransportEngine(seam.create_quic_connection(  # type: ignore[arg-type]
        client_backend, is_client=True, verify_peer=False, server_name="localhost"))
    server = WebTransportEngine(seam.create_quic_connection(  # type: ignore[arg-type]
        server_backend, is_client=False, certificate=cert, private_key=key,
        original_destination_connection_id=client.quic.original_destination_connection_id))
    now = 1.0
    client.connect(SERVER_ADDR, now)
    events: dict[str, list[Any]] = {"client": [], "server": []}

    def run() -> None:
        nonlocal now
        for _ in range(50):
            moved = False
            for data, _ in client.datagrams_to_send(now):
                server.receive_datagram(data, CLIENT_ADDR, now)
                moved = True
            for data, _ in server.datagrams_to_send(now):
                client.receive_datagram(data, SERVER_ADDR, now)
                moved = True
            now += 0.001
            for side, engine in (("client", client), ("server", server)):
                while (event := engine.next_event()) is not None:
                    events[side].append(event)
            if not moved:
                return

    run()
    sid = client.open_session(authority="localhost", path="/echo")
    run()
    assert any(isinstance(e, ev.SessionRequested) for e in events["server"])
    server.accept_session(sid)
    run()
    stream_id = client.open_stream(sid, is_unidirectional=False)
    client.send_stream_data(stream_id, b"across", end_stream=True)
    client.send_datagram(sid, b"dgram")
    run()
    data = b"".join(e.data for e in events["server"] if isinstance(e, ev.StreamDataReceived))
    assert data == b"across"
    assert [e.data for e in events["server"] if isinstance(e, ev.DatagramReceived)] == [b"dgram"]


def test_each_backend_lets_the_peer_open_128_streams_of_each_kind(backend: str) -> None:
    pair = Pair(backend=backend)
    pair.open_session()
    client = pair.client.quic
    for uni in (False, True):
        opened = 0
        while client.can_open_stream(uni):
            client.send_stream_data(client.get_next_available_stream_id(is_unidirectional=uni), b"")
            opened += 1
        # the CONNECT stream holds one bidi slot; the HTTP/3 control and QPACK streams three uni
        assert opened == (127 if not uni else 125), (uni, opened)


# ---------------------------------------------------------------------------- TLS exporter, mTLS, reset


def test_both_ends_export_the_same_keying_material(backend: str) -> None:
    pair = Pair(backend=backend)
    client, server = pair.client.quic, pair.server.quic
    with pytest.raises(RuntimeError, match="handshake is complete"):
        client.export_keying_material(b"label", b"", 32)
    pair.open_session()
    exported = client.export_keying_material(b"EXPORTER-test", b"context", 32)
    assert exported == server.export_keying_material(b"EXPORTER-test", b"context", 32)
    assert len(set(exported)) > 8  # not a constant fill
    others = {client.export_keying_material(b"EXPORTER-other", b"context", 32),
              client.export_keying_material(b"EXPORTER-test", b"contexT", 32),
              client.export_keying_material(b"EXPORTER-test", b"", 32)}
    assert exported not in others and len(others) == 3
    for length in (0, 1, 31, 33, 100, 500):
        out = client.export_keying_material(b"EXPORTER-test", b"context", length)
        assert len(out) == length and out == server.export_keying_material(b"EXPORTER-test", b"context", length)
    # the output of a shorter export is not a prefix trick: HKDF-Expand-Label binds the length
    assert client.export_keying_material(b"EXPORTER-test", b"context", 16) != exported[:16]
    # a new connection exports unrelated bytes
    again = Pair(backend=backend)
    again.open_session()
    assert again.client.quic.export_keying_material(b"EXPORTER-test", b"context", 32) != exported


def test_the_tls_exporter_agrees_with_openssl() -> None:
    """The exporter function against an independent implementation: OpenSSL (via pyOpenSSL,
    an aioquic dependency) runs a TLS 1.3 handshake in memory, logs its exporter master
    secret (EXPORTER_SECRET keylog line) and exports; ours must give the same bytes from it."""
    from OpenSSL import SSL

    cert, key = make_certificate()
    lines: list[bytes] = []
    server_ctx = SSL.Context(SSL.TLS_METHOD)
    server_ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    server_ctx.use_certificate(cert)
    server_ctx.use_privatekey(key)
    client_ctx = SSL.Context(SSL.TLS_METHOD)
    client_ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    client_ctx.set_keylog_callback(lambda _conn, line: lines.append(bytes(line)))
    server_conn, client_conn = SSL.Connection(server_ctx, None), SSL.Connection(client_ctx, None)
    server_conn.set_accept_state()
    client_conn.set_connect_state()
    for _ in range(10):
        for conn in (client_conn, server_conn):
            with contextlib.suppress(SSL.WantReadError):
                conn.do_handshake()
        for source, sink in ((client_conn, server_conn), (server_conn, client_conn)):
            with contextlib.suppress(SSL.WantReadError):
                sink.bio_write(source.bio_read(65536))
    assert client_conn.get_protocol_version_name() == "TLSv1.3"
    suite = client_conn.get_cipher_name() or ""
    hash_name = "sha384" if suite.endswith("SHA384") else "sha256"
    secret_line = next(line for line in lines if line.startswith(b"EXPORTER_SECRET "))
    secret = bytes.fromhex(secret_line.split()[2].decode())
    for label, context, length in ((b"EXPORTER-WebTransport", b"\x00" * 8 + b"\x03app\x00", 32),
                                   (b"EXPORTER-test", b"", 1), (b"x", b"context" * 30, 200)):
        expected = client_conn.export_keying_material(label, length, context)
        assert seam.tls_exporter(hash_name, secret, label, context, length) == expected, (suite, label)


def test_the_exporter_secret_is_taken_where_rfc_8446_derives_it(backend: str, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """The exporter master secret comes from the key schedule at the moment it derives the
    server's application traffic secret (same master secret and transcript, RFC 8446 §7.1):
    on both ends, that is the secret the TLS secrets log shows, and a schedule that does not
    reproduce it yields no exporter secret."""
    import io

    from pywebtransport._protocol import quic_aioquic, quic_qh3

    captured: list[tuple[str, bytes, bool]] = []
    real = seam.exporter_secret_from_schedule

    def recording(schedule: Any, hash_name: str, secret: bytes) -> tuple[str, bytes] | None:
        result = real(schedule, hash_name, secret)
        captured.append((hash_name, secret, result is not None))
        return result

    monkeypatch.setattr(quic_aioquic, "exporter_secret_from_schedule", recording)
    monkeypatch.setattr(quic_qh3, "exporter_secret_from_schedule", recording)
    log = io.StringIO()
    pair = Pair(backend=backend, client_quic={"secrets_log": log})
    pair.open_session()
    logged = bytes.fromhex(next(line.split()[2] for line in log.getvalue().splitlines()
                                if line.startswith("SERVER_TRAFFIC_SECRET_0")))
    assert len(captured) == 2  # once per end, at the first 1-RTT secret of the server's direction
    assert all(secret == logged and ok and name in ("sha256", "sha384") for name, secret, ok in captured)
    seen: list[bytes] = []

    class Elsewhere:
        """A key schedule at another moment: it derives some other secret."""

        def derive_secret(self, label: bytes) -> bytes:
            seen.append(label)
            return b"s" * 32

    assert real(Elsewhere(), "sha256", logged) is None
    assert seen == [b"s ap traffic"]


def test_an_aioquic_server_asks_for_the_client_certificate_of_either_backend(backend: str) -> None:
    cert, key = make_certificate()
    pair = Pair(backend="aioquic", server_quic={"request_client_certificate": True})
    # the client side of the pair on the backend under test, with a certificate
    pair.client = WebTransportEngine(seam.create_quic_connection(  # type: ignore[arg-type]
        backend, is_client=True, verify_peer=False, server_name="localhost", certificate=cert, private_key=key))
    pair.server = WebTransportEngine(seam.create_quic_connection(  # type: ignore[arg-type]
        "aioquic", is_client=False, certificate=make_certificate()[0], private_key=make_certificate()[1],
        request_client_certificate=True,
        original_destination_connection_id=pair.client.quic.original_destination_connection_id))
    pair.client.connect(SERVER_ADDR, pair.now)
    pair.run()
    assert pair.server.quic.handshake_complete and pair.client.quic.handshake_complete
    assert pair.server.quic.peer_certificate == cert
    assert pair.server.quic.peer_certificate_der == cert.public_bytes(Encoding.DER)
    assert pair.server.quic.peer_certificate_chain == ()


def test_a_server_not_asking_gets_no_client_certificate(backend: str) -> None:
    cert, key = make_certificate()
    pair = Pair(backend=backend, client_quic={"certificate": cert, "private_key": key})
    pair.open_session()
    assert pair.server.quic.handshake_complete
    assert pair.server.quic.peer_certificate is None


def test_qh3_servers_refuse_to_ask_for_client_certificates() -> None:
    with pytest.raises(ValueError, match="cannot request client certificates"):
        seam.create_quic_connection("qh3", is_client=False, request_client_certificate=True)


def test_a_client_certificate_is_verified_against_the_ca_file(tmp_path: Any) -> None:
    cert, _ = make_certificate()  # self-signed, for server authentication
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(cert.public_bytes(Encoding.PEM))
    failure = seam.verify_client_certificate(cert, (), str(ca_file))
    assert failure is not None  # not a client certificate (and a self-signed leaf is no CA)
    assert "cannot read CA file" in (seam.verify_client_certificate(cert, (), str(tmp_path / "none.pem")) or "")


def test_neither_backend_has_reset_stream_at_and_an_early_reset_loses_the_stream(backend: str) -> None:
    """RESET_STREAM_AT (reliable reset, needed by draft-15 for stream headers) is not in
    aioquic 1.x nor qh3 1.x. A stream reset before its WebTransport header was delivered is
    then invisible to the peer's application: the peer's QUIC stack gets RESET_STREAM for a
    stream it has no header for, and cannot tell which session it belonged to."""
    pair = Pair(backend=backend)
    assert pair.client.quic.supports_reset_stream_at is False
    assert pair.server.quic.supports_reset_stream_at is False
    sid = pair.open_session()
    pair.take("server")
    for uni in (True, False):
        stream_id = pair.client.open_stream(sid, is_unidirectional=uni)
        pair.client.reset_stream(stream_id, 7)  # in the same flight as the stream's header
        pair.run()
        assert pair.take("server") == []  # no StreamOpened, no StreamReset: the stream is gone
        # QUIC saw only its reset and discarded it; for a bidi stream we reset our own sending
        # side in answer, so its stream-count credit comes back too (no slot held forever).
        pair.run()
        assert pair.server.quic.is_stream_discarded(stream_id)
        client_view, server_view = pair.client.session_snapshot(sid), pair.server.session_snapshot(sid)
        assert client_view is not None and server_view is not None
        opened = "uni" if uni else "bidi"
        # session flow control: we counted the stream, the peer never did (one credit lost)
        assert (getattr(client_view, f"local_streams_{opened}_opened")
                == getattr(server_view, f"peer_streams_{opened}_opened") + 1)
        # once the header was delivered, a reset reaches the session as usual
        stream_id = pair.client.open_stream(sid, is_unidirectional=uni)
        pair.client.send_stream_data(stream_id, b"x")
        pair.run()
        pair.client.reset_stream(stream_id, 9)
        pair.run()
        kinds = [type(e) for e in pair.take("server")]
        assert kinds == [ev.StreamOpened, ev.StreamDataReceived, ev.StreamReset]
    snapshot = pair.server.session_snapshot(sid)
    assert snapshot is not None and snapshot.state.value == "connected"


def test_the_tls_output_buffers_shrink_once_the_handshake_is_complete(backend: str) -> None:
    # Both libraries hold three 16 KiB TLS output buffers for a connection's whole life; after
    # the handshake the shim keeps 256 B for 1-RTT and one shared empty buffer for the others
    # (TLS writes nothing after the handshake, test_tls_buffers.py).
    pair = Pair(backend=backend)
    client_buffers = pair.client.quic._crypto_buffers
    assert all(buffer.capacity == 16384 for buffer in client_buffers.values())
    sid = pair.open_session()
    for quic in (pair.client.quic, pair.server.quic):
        capacities = {epoch.name: buffer.capacity for epoch, buffer in quic._crypto_buffers.items()}
        assert capacities == {"INITIAL": 0, "HANDSHAKE": 0, "ONE_RTT": 256}, capacities
    every = [*pair.client.quic._crypto_buffers.values(), *pair.server.quic._crypto_buffers.values()]
    assert len({id(b) for b in every}) == 3  # each side's 1-RTT buffer, and one shared empty one
    # ... and the connection goes on working: a stream and a datagram both ways.
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"after the handshake", end_stream=True)
    pair.run()
    assert pair.stream_payload("server", stream_id) == (b"after the handshake", True)
    assert pair.server.send_datagram(sid, b"d")
    pair.run()
    assert [d.data for d in pair.take("client", ev.DatagramReceived)] == [b"d"]


def test_a_close_the_quic_library_starts_by_itself_is_not_reported_as_the_peers(backend: str) -> None:
    # aioquic/qh3 close the connection themselves on a QUIC protocol error; the engine must
    # not tell the application that the peer closed it.
    pair = Pair(backend=backend)
    sid = pair.open_session()
    pair.server.quic.close(error_code=0x7, reason_phrase="frame encoding error")  # not engine.close()
    pair.run()
    server_end = pair.one("server", ev.ConnectionTerminated)
    client_end = pair.one("client", ev.ConnectionTerminated)
    assert (server_end.error_code, server_end.by_peer) == (0x7, False)
    assert (client_end.error_code, client_end.by_peer) == (0x7, True)
    assert pair.one("server", ev.SessionClosed).cause is CloseCause.CONNECTION_CLOSED
    assert pair.one("client", ev.SessionClosed).cause is CloseCause.PEER_CONNECTION_CLOSE
    assert sid == 0


def test_connections_share_one_copy_of_each_frame_epoch_set(backend: str) -> None:
    # Each library builds a frame table per connection with a fresh frozenset per frame type;
    # the shim points every connection at one shared copy (about 7 KiB saved per connection).
    first, second = Pair(backend=backend), Pair(backend=backend)
    tables = [pair.server.quic._QuicConnection__frame_handlers for pair in (first, second)]
    assert len(tables[0]) > 20 and tables[0].keys() == tables[1].keys()
    for frame_type in tables[0]:
        assert tables[0][frame_type][1] is tables[1][frame_type][1], hex(frame_type)
    first.open_session()  # and the connections still speak QUIC


def test_more_bytes_on_an_open_stream_arrive_and_a_peers_unidirectional_stream_stays_unsendable(
        backend: str) -> None:
    """The seam's send path (qh3's skips its own stream lookup for an open stream): bytes
    written in pieces arrive whole and in order, and the peer's unidirectional stream, which
    QUIC already holds, still refuses our bytes."""
    pair = Pair(backend=backend)
    pair.open_session()
    quic_client, quic_server = pair.client.quic, pair.server.quic
    bidi = quic_client.get_next_available_stream_id(is_unidirectional=False)
    for piece in (b"one ", b"two ", b"three"):
        quic_client.send_stream_data(bidi, piece)
    quic_client.send_stream_data(bidi, b"", end_stream=True)
    peer_uni = quic_server.get_next_available_stream_id(is_unidirectional=True)
    quic_server.send_stream_data(peer_uni, b"x")
    received = {}
    for _ in range(5):
        for data, _addr in quic_client.datagrams_to_send(pair.now):
            quic_server.receive_datagram(data, CLIENT_ADDR, now=pair.now)
        for data, _addr in quic_server.datagrams_to_send(pair.now):
            quic_client.receive_datagram(data, SERVER_ADDR, now=pair.now)
        for quic in (quic_client, quic_server):
            while (event := quic.next_event()) is not None:
                if hasattr(event, "stream_id") and hasattr(event, "data"):
                    received.setdefault(event.stream_id, b"")
                    received[event.stream_id] += event.data
        pair.now += 0.01
    assert received[bidi] == b"one two three"
    assert quic_client.has_stream(peer_uni)  # the client holds the peer's stream
    with pytest.raises(ValueError):
        quic_client.send_stream_data(peer_uni, b"not ours to send")
