"""Two engines wired back to back in memory: real QUIC + TLS, virtual clock, no sockets."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aioquic.quic.configuration import QuicConfiguration
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pywebtransport._protocol import EngineConfig, WebTransportEngine
from pywebtransport._protocol import events as ev
from pywebtransport._protocol import quic as quic_seam
from pywebtransport._protocol.budget import SharedBudgets

CLIENT_ADDR = ("10.0.0.1", 50000)  # only labels: nothing is sent anywhere
SERVER_ADDR = ("10.0.0.2", 4433)


@lru_cache(maxsize=1)
def test_certificate() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=9))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def quic_configuration(*, is_client: bool, max_datagram_frame_size: int = 65536,
                       max_stream_data: int = 1 << 20, max_data: int = 1 << 22) -> QuicConfiguration:
    qc = QuicConfiguration(is_client=is_client, alpn_protocols=["h3"], max_datagram_frame_size=max_datagram_frame_size,
                           max_stream_data=max_stream_data, max_data=max_data)
    if is_client:
        qc.verify_mode = ssl.CERT_NONE
        qc.server_name = "localhost"
    else:
        cert, key = test_certificate()
        qc.certificate = cert
        qc.private_key = key
    return qc


@dataclass
class Pair:
    """A client engine and a server engine exchanging packets in memory."""

    client_config: EngineConfig = field(default_factory=EngineConfig)
    server_config: EngineConfig = field(default_factory=EngineConfig)
    client_quic: dict[str, Any] = field(default_factory=dict)
    server_quic: dict[str, Any] = field(default_factory=dict)
    tweak_client: Callable[[WebTransportEngine], None] | None = None
    tweak_server: Callable[[WebTransportEngine], None] | None = None
    now: float = 1000.0
    #: QUIC backend of both engines (None: $PYWEBTRANSPORT_QUIC_BACKEND, else aioquic).
    backend: str | None = None
    #: Budgets the server engine shares with other engines (as a server's connections do).
    server_budgets: SharedBudgets | None = None

    def __post_init__(self) -> None:
        backend = quic_seam.resolve_backend(self.backend)
        cert, key = test_certificate()
        cq = quic_seam.create_quic_connection(backend, is_client=True, verify_peer=False, server_name="localhost",
                                              **{"max_data": 1 << 22, **self.client_quic})
        self.client = WebTransportEngine(cq, config=self.client_config)  # type: ignore[arg-type]
        sq = quic_seam.create_quic_connection(backend, is_client=False, certificate=cert, private_key=key,
                                              original_destination_connection_id=cq.original_destination_connection_id,
                                              **{"max_data": 1 << 22, **self.server_quic})
        self.server = WebTransportEngine(sq, config=self.server_config,  # type: ignore[arg-type]
                                         budgets=self.server_budgets)
        if self.tweak_client:
            self.tweak_client(self.client)
        if self.tweak_server:
            self.tweak_server(self.server)
        self.client_events: list[ev.EngineEvent] = []
        self.server_events: list[ev.EngineEvent] = []
        self.client.connect(SERVER_ADDR, self.now)

    # -- moving packets
    def run(self, *, max_rounds: int = 200, horizon: float = 0.5) -> None:
        """Exchange packets (firing timers due within ``horizon``) until both sides are quiet."""
        for _ in range(max_rounds):
            moved = self._exchange()
            if not moved:
                timers = [t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None]
                due = min(timers) if timers else None
                if due is None or due > self.now + horizon:
                    break
                self.now = max(self.now, due)
                for engine in (self.client, self.server):
                    timer = engine.get_timer()
                    if timer is not None and timer <= self.now:
                        engine.handle_timer(self.now)
            self._collect()
        self._collect()

    def _exchange(self) -> bool:
        moved = False
        for data, _ in self.client.datagrams_to_send(self.now):
            self.server.receive_datagram(data, CLIENT_ADDR, self.now)
            moved = True
        for data, _ in self.server.datagrams_to_send(self.now):
            self.client.receive_datagram(data, SERVER_ADDR, self.now)
            moved = True
        self.now += 0.001
        return moved

    def _collect(self) -> None:
        for engine, sink in ((self.client, self.client_events), (self.server, self.server_events)):
            while (event := engine.next_event()) is not None:
                sink.append(event)

    # -- looking at events
    def take(self, side: str, kind: type[ev.EngineEvent] | None = None) -> list[Any]:
        """Remove and return the events of one side (of one class, if given)."""
        sink = self.client_events if side == "client" else self.server_events
        taken = [e for e in sink if kind is None or isinstance(e, kind)]
        sink[:] = [e for e in sink if e not in taken]
        return taken

    def one(self, side: str, kind: type[ev.EngineEvent]) -> Any:
        taken = self.take(side, kind)
        assert len(taken) == 1, f"expected one {kind.__name__} on the {side}, got {taken}"
        return taken[0]

    def open_session(self, path: str = "/echo", *, accept: bool = True, origin: str | None = "https://example.test",
                     headers: dict[str, str] | None = None) -> int:
        """Handshake (if needed), CONNECT, and accept on the server; returns the session id."""
        self.run()
        sid = self.client.open_session(authority="localhost:4433", path=path, origin=origin, headers=headers)
        self.run()
        request = self.one("server", ev.SessionRequested)
        assert request.session_id == sid
        if accept:
            self.server.accept_session(sid)
            self.run()
            self.one("server", ev.SessionEstablished)
            self.one("client", ev.SessionEstablished)
        return sid

    def stream_payload(self, side: str, stream_id: int) -> tuple[bytes, bool]:
        """Concatenated payload received on a stream and whether FIN arrived."""
        data = bytearray()
        fin = False
        for e in self.take(side, ev.StreamDataReceived):
            if e.stream_id == stream_id:
                data += e.data
                fin = fin or e.end_stream
            else:
                (self.client_events if side == "client" else self.server_events).append(e)
        return bytes(data), fin


def draft02_only(engine: WebTransportEngine) -> None:
    """Make an engine advertise only what Chromium advertises (draft-02, no flow control)."""
    from pywebtransport import constants as c

    keep = {c.SETTINGS_QPACK_MAX_TABLE_CAPACITY, c.SETTINGS_QPACK_BLOCKED_STREAMS, c.SETTINGS_H3_DATAGRAM,
            c.SETTINGS_H3_DATAGRAM_DRAFT04, c.SETTINGS_ENABLE_WEBTRANSPORT, c.SETTINGS_ENABLE_CONNECT_PROTOCOL}
    engine.local_settings = {k: v for k, v in engine.local_settings.items() if k in keep}


def no_h3(engine: WebTransportEngine) -> None:
    """Stop an engine from opening its own HTTP/3 streams, so a test can write raw bytes."""
    engine._h3.started = True


class RawPeer:
    """Writes hand-made HTTP/3 bytes from the client's QUIC connection to the server engine."""

    def __init__(self, pair: Pair, *, chunked: bool = False, from_server: bool = False) -> None:
        self.pair = pair
        self.quic = pair.server.quic if from_server else pair.client.quic
        #: Issue #11: write every stream payload one byte per call, running the pair in between,
        #: so the engine sees every frame, varint and header block cut at every possible point.
        self.chunked = chunked

    def uni(self, data: bytes, *, fin: bool = False) -> int:
        stream_id = self.quic.get_next_available_stream_id(is_unidirectional=True)
        self._write(stream_id, data, fin)
        return stream_id

    def bidi(self, data: bytes, *, fin: bool = False) -> int:
        stream_id = self.quic.get_next_available_stream_id(is_unidirectional=False)
        self._write(stream_id, data, fin)
        return stream_id

    def send(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        self._write(stream_id, data, fin)

    def _write(self, stream_id: int, data: bytes, fin: bool) -> None:
        if not self.chunked or len(data) <= 1:
            self.quic.send_stream_data(stream_id, data, end_stream=fin)
            return
        last = len(data) - 1
        for index in range(len(data)):
            try:
                self.quic.send_stream_data(stream_id, data[index:index + 1], end_stream=fin and index == last)
            except (RuntimeError, ValueError, AssertionError):  # the engine stopped or reset the stream:
                return  # the rest is moot (aioquic < 1.7 asserts instead of raising ValueError)
            self.pair.run()

    def control(self, settings: dict[int, int] | None = None) -> int:
        """Open a well-formed control stream + QPACK streams, as a proper client would."""
        from pywebtransport import constants as c
        from pywebtransport._wire import frames

        chosen = settings if settings is not None else {c.SETTINGS_ENABLE_WEBTRANSPORT: 1, c.SETTINGS_H3_DATAGRAM: 1}
        control = self.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_CONTROL)
                           + frames.encode_frame(c.FRAME_SETTINGS, frames.encode_settings(chosen)))
        self.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_QPACK_ENCODER))
        self.uni(frames.encode_uni_stream_header(c.STREAM_TYPE_QPACK_DECODER))
        return control

    def headers_frame(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        import pylsqpack

        from pywebtransport import constants as c
        from pywebtransport._wire import frames

        encoder = pylsqpack.Encoder()
        _, block = encoder.encode(stream_id, headers)
        return frames.encode_frame(c.FRAME_HEADERS, block)

    def connect_request(self, path: bytes = b"/x", *, drop: bytes | None = None) -> int:
        stream_id = self.quic.get_next_available_stream_id(is_unidirectional=False)
        headers = [(b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"https"),
                   (b":authority", b"localhost"), (b":path", path)]
        headers = [h for h in headers if h[0] != drop]
        self.send(stream_id, self.headers_frame(stream_id, headers))
        return stream_id



def raw_session_request(settings: dict[int, int], *,
                        server_config: EngineConfig | None = None) -> tuple[Pair, RawPeer, int]:
    """A server engine and a hand-written client (``RawPeer``) sending ``settings``, whose
    CONNECT the server has seen (SessionRequested, taken) and not answered yet."""
    pair = Pair(tweak_client=no_h3, server_config=server_config if server_config is not None else EngineConfig())
    pair.run()
    raw = RawPeer(pair)
    raw.control(settings)
    pair.run()
    sid = raw.connect_request(b"/x")
    pair.run()
    assert pair.one("server", ev.SessionRequested).session_id == sid
    return pair, raw, sid


def accept_raw_session(pair: Pair, sid: int) -> None:
    """Accept the session of ``raw_session_request`` on the server (SessionEstablished, taken)."""
    pair.server.accept_session(sid)
    pair.run()
    pair.one("server", ev.SessionEstablished)


def assert_server_connection_error(pair: Pair, code: int) -> None:
    """The server engine found a connection error ``code`` and the client saw the connection
    end with it (timers due within 2 s fire first)."""
    _assert_connection_error(pair, "server", "client", code)


def assert_client_connection_error(pair: Pair, code: int) -> None:
    """The same with the roles swapped: the client engine found it, the server saw the end."""
    _assert_connection_error(pair, "client", "server", code)


def _assert_connection_error(pair: Pair, found_by: str, seen_by: str, code: int) -> None:
    pair.run(horizon=2.0)
    violation = pair.one(found_by, ev.ProtocolViolation)
    assert violation.error_code == code, f"{violation.error_code:#x} != {code:#x}: {violation.reason}"
    terminated = pair.take(seen_by, ev.ConnectionTerminated)
    assert terminated and terminated[0].error_code == code


def record_aborts(engine: WebTransportEngine) -> list[tuple[str, int, int]]:
    """Record every STOP_SENDING / RESET_STREAM the engine asks QUIC for: (kind, stream, code)."""
    calls: list[tuple[str, int, int]] = []
    quic = engine.quic
    stop, reset = quic.stop_stream, quic.reset_stream

    def record_stop(stream_id: int, error_code: int) -> None:
        calls.append(("stop", stream_id, error_code))
        stop(stream_id, error_code)

    def record_reset(stream_id: int, error_code: int) -> None:
        calls.append(("reset", stream_id, error_code))
        reset(stream_id, error_code)

    quic.stop_stream = record_stop  # type: ignore[method-assign]
    quic.reset_stream = record_reset  # type: ignore[method-assign]
    return calls


def record_received(engine: WebTransportEngine) -> dict[int, bytearray]:
    """Record every stream byte the engine's QUIC connection hands up, before the engine sees it."""
    received: dict[int, bytearray] = {}
    quic = engine.quic
    next_event = quic.next_event

    def recording_next_event() -> quic_seam.QuicEvent | None:
        event = next_event()
        if isinstance(event, quic_seam.StreamDataReceived):
            received.setdefault(event.stream_id, bytearray()).extend(event.data)
        return event

    quic.next_event = recording_next_event  # type: ignore[method-assign]
    return received


def response_status(data: bytes) -> int | None:
    """The :status of the first HEADERS frame in a response stream's bytes (None if none)."""
    import pylsqpack

    from pywebtransport import constants as c
    from pywebtransport._wire import frames

    for frame_type, payload in frames.FrameParser().feed(bytes(data)):
        if frame_type == c.FRAME_HEADERS:
            _, headers = pylsqpack.Decoder(0, 0).feed_header(0, payload)
            return int(dict(headers)[b":status"])
    return None


# -- helpers for the hardening tests (issue #10)

Tweak = Callable[[WebTransportEngine], None]


def with_settings(settings: dict[int, int]) -> Tweak:
    """Make an engine send exactly ``settings`` in its SETTINGS frame (to imitate other stacks)."""

    def tweak(engine: WebTransportEngine) -> None:
        engine.local_settings = dict(settings)

    return tweak


def without_settings(*keys: int) -> Tweak:
    """Make an engine leave ``keys`` out of the SETTINGS it would otherwise send."""

    def tweak(engine: WebTransportEngine) -> None:
        engine.local_settings = {k: v for k, v in engine.local_settings.items() if k not in keys}

    return tweak


def compose(*tweaks: Tweak) -> Tweak:
    """Apply several tweaks in order."""

    def tweak(engine: WebTransportEngine) -> None:
        for each in tweaks:
            each(engine)

    return tweak


def quic_stream_limits(*, bidi: int | None = None, uni: int | None = None) -> Tweak:
    """Set the QUIC MAX_STREAMS an engine's connection grants the peer (aioquic fixes 128 and
    has no setting for it); must run before the handshake, as Pair's tweaks do."""

    def tweak(engine: WebTransportEngine) -> None:
        for value, limit in ((bidi, engine.quic._local_max_streams_bidi),  # noqa: SLF001
                             (uni, engine.quic._local_max_streams_uni)):  # noqa: SLF001
            if value is not None:
                limit.value = limit.sent = value

    return tweak


def pretend_peer_sent(engine: WebTransportEngine, settings: dict[int, int]) -> None:
    """Replace what the engine believes the peer's SETTINGS said, after the handshake: the
    only way to reach checks that guard against settings no conforming session can have."""
    from pywebtransport._protocol.settings import PeerSettings

    engine._h3.peer = PeerSettings.parse(settings)  # noqa: SLF001


def _qpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    """An RFC 7541 §5.1 prefixed integer, its prefix OR-ed into ``first``."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def qpack_block(lines: list[tuple[bytes, bytes] | int]) -> bytes:
    """A QPACK header block built by hand (RFC 9204 §4.5), independent of any encoder's
    limits: an int is an indexed static field line, a pair a literal with a literal name."""
    out = bytearray(b"\x00\x00")  # Required Insert Count 0, Delta Base 0: no dynamic table
    for line in lines:
        if isinstance(line, int):
            out += _qpack_int(line, 6, 0b1100_0000)  # indexed field line, static table
        else:
            name, value = line
            out += _qpack_int(len(name), 3, 0b0010_0000) + name  # literal name, no Huffman
            out += _qpack_int(len(value), 7, 0) + value
    return bytes(out)


#: RFC 9204 Appendix A: static table index of ``accept: */*``.
STATIC_ACCEPT_ANY = 29


def _aioquic_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(part) for part in version("aioquic").split(".")[:2] if part.isdigit())


#: aioquic < 1.7 (the newest that installs on Python 3.10) doubles MAX_STREAMS once half of
#: the streams are used instead of granting one back per finished stream; tests that pin the
#: per-stream policy say so with this marker (the 3.11+ runs execute them).
AIOQUIC_DOUBLES_MAX_STREAMS = _aioquic_version() < (1, 7)
PER_STREAM_MAX_STREAMS_REASON = ("aioquic < 1.7 (Python 3.10) doubles MAX_STREAMS instead of granting one back "
                                 "per finished stream")
needs_per_stream_max_streams = __import__("pytest").mark.skipif(AIOQUIC_DOUBLES_MAX_STREAMS,
                                                                reason=PER_STREAM_MAX_STREAMS_REASON)
