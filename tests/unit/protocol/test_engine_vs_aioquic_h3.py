"""Our engine against a stack we did not write: aioquic's H3Connection(enable_webtransport=True).

Both run in memory over real QUIC + TLS; aioquic speaks the draft-02 wire format that
browsers use, so these sessions run without session flow control.
"""

from __future__ import annotations

from aioquic.h3 import events as h3e
from aioquic.h3.connection import FrameType, H3Connection, H3Stream
from aioquic.quic.connection import QuicConnection

from pywebtransport._protocol import BackpressuredQuicConnection, WebTransportEngine
from pywebtransport._protocol import events as ev
from pywebtransport._protocol.settings import DIALECT_DRAFT02

from .harness import CLIENT_ADDR, SERVER_ADDR, quic_configuration


def open_aioquic_bidi(h3: H3Connection, session_id: int) -> int:
    """Open a WebTransport bidi stream with aioquic and let it receive the answer.

    aioquic's H3Connection tags a bidi stream it opens only for logging, so the peer's answer
    would be parsed as HTTP/3 frames; this marks aioquic's own record of the stream (a gap in
    aioquic, not in the protocol).
    """
    stream_id = h3.create_webtransport_stream(session_id, is_unidirectional=False)
    record = h3._stream.setdefault(stream_id, H3Stream(stream_id))
    record.frame_type = FrameType.WEBTRANSPORT_STREAM
    record.session_id = session_id
    return stream_id


class AioquicPeer:
    """aioquic's QuicConnection + H3Connection, pumped against one of our engines."""

    def __init__(self, *, our_side: str) -> None:
        self.now = 2000.0
        self.events: list[h3e.H3Event] = []
        self.our_events: list[ev.EngineEvent] = []
        self.peer_is_client = our_side == "server"
        if our_side == "server":
            self.quic = QuicConnection(configuration=quic_configuration(is_client=True))
            self.h3 = H3Connection(self.quic, enable_webtransport=True)
            sq = BackpressuredQuicConnection(configuration=quic_configuration(is_client=False),
                                             original_destination_connection_id=self.quic.original_destination_connection_id)
            self.engine = WebTransportEngine(sq)
            self.quic.connect(SERVER_ADDR, now=self.now)
            self.peer_addr, self.our_addr = CLIENT_ADDR, SERVER_ADDR
        else:
            cq = BackpressuredQuicConnection(configuration=quic_configuration(is_client=True))
            self.engine = WebTransportEngine(cq)
            self.quic = QuicConnection(configuration=quic_configuration(is_client=False),
                                       original_destination_connection_id=cq.original_destination_connection_id)
            self.h3 = H3Connection(self.quic, enable_webtransport=True)
            self.engine.connect(SERVER_ADDR, self.now)
            self.peer_addr, self.our_addr = SERVER_ADDR, CLIENT_ADDR

    def run(self, rounds: int = 100) -> None:
        for _ in range(rounds):
            moved = False
            # The client side speaks first: a server has no network path before its first packet.
            for step in (self._from_peer, self._from_us) if self.peer_is_client else (self._from_us, self._from_peer):
                moved = step() or moved
            while (qe := self.quic.next_event()) is not None:
                self.events.extend(self.h3.handle_event(qe))
            while (e := self.engine.next_event()) is not None:
                self.our_events.append(e)
            self.now += 0.001
            if not moved:
                break

    def _from_peer(self) -> bool:
        packets = self.quic.datagrams_to_send(now=self.now)
        for data, _ in packets:
            self.engine.receive_datagram(data, self.peer_addr, self.now)
        return bool(packets)

    def _from_us(self) -> bool:
        packets = self.engine.datagrams_to_send(self.now)
        for data, _ in packets:
            self.quic.receive_datagram(data, self.our_addr, now=self.now)
        return bool(packets)

    def take(self, kind: type) -> list:
        out = [e for e in self.events if isinstance(e, kind)]
        self.events = [e for e in self.events if not isinstance(e, kind)]
        return out

    def take_ours(self, kind: type) -> list:
        out = [e for e in self.our_events if isinstance(e, kind)]
        self.our_events = [e for e in self.our_events if not isinstance(e, kind)]
        return out


def test_aioquic_client_opens_a_session_on_our_server_and_echoes() -> None:
    peer = AioquicPeer(our_side="server")
    peer.run()
    assert peer.take_ours(ev.H3Ready)[0].dialect == DIALECT_DRAFT02
    sid = peer.quic.get_next_available_stream_id()
    peer.h3.send_headers(sid, [(b":method", b"CONNECT"), (b":protocol", b"webtransport"), (b":scheme", b"https"),
                               (b":authority", b"localhost"), (b":path", b"/echo"), (b"origin", b"https://x.test")])
    peer.run()
    request = peer.take_ours(ev.SessionRequested)[0]
    assert (request.session_id, request.path, request.origin) == (sid, "/echo", "https://x.test")
    peer.engine.accept_session(sid)
    peer.run()
    response = peer.take(h3e.HeadersReceived)[0]
    assert dict(response.headers)[b":status"] == b"200"

    # bidi stream from aioquic, echoed by us
    bidi = open_aioquic_bidi(peer.h3, sid)
    peer.quic.send_stream_data(bidi, b"ping", end_stream=True)
    peer.run()
    assert peer.take_ours(ev.StreamOpened)[0].stream_id == bidi
    data = b"".join(e.data for e in peer.take_ours(ev.StreamDataReceived) if e.stream_id == bidi)
    assert data == b"ping"
    peer.engine.send_stream_data(bidi, data.upper(), end_stream=True)
    peer.run()
    echoed = [e for e in peer.take(h3e.WebTransportStreamDataReceived) if e.stream_id == bidi]
    assert b"".join(e.data for e in echoed) == b"PING" and echoed[-1].stream_ended

    # uni stream from aioquic
    uni = peer.h3.create_webtransport_stream(sid, is_unidirectional=True)
    peer.quic.send_stream_data(uni, b"one-way", end_stream=True)
    peer.run()
    assert b"".join(e.data for e in peer.take_ours(ev.StreamDataReceived) if e.stream_id == uni) == b"one-way"

    # uni stream from us
    ours = peer.engine.open_stream(sid, is_unidirectional=True)
    peer.engine.send_stream_data(ours, b"from-server", end_stream=True)
    peer.run()
    got = [e for e in peer.take(h3e.WebTransportStreamDataReceived) if e.stream_id == ours]
    assert b"".join(e.data for e in got) == b"from-server" and got[0].session_id == sid

    # datagrams both ways
    peer.h3.send_datagram(sid, b"dgram-up")
    peer.engine.send_datagram(sid, b"dgram-down")
    peer.run()
    assert [e.data for e in peer.take_ours(ev.DatagramReceived)] == [b"dgram-up"]
    assert [(e.stream_id, e.data) for e in peer.take(h3e.DatagramReceived)] == [(sid, b"dgram-down")]


def test_our_client_opens_a_session_on_an_aioquic_server_and_echoes() -> None:
    peer = AioquicPeer(our_side="client")
    peer.run()
    assert peer.take_ours(ev.H3Ready)[0].dialect == DIALECT_DRAFT02
    sid = peer.engine.open_session(authority="localhost", path="/wt", origin="https://y.test")
    peer.run()
    request = peer.take(h3e.HeadersReceived)[0]
    headers = dict(request.headers)
    assert headers[b":method"] == b"CONNECT" and headers[b":protocol"] == b"webtransport"
    assert headers[b":path"] == b"/wt" and headers[b"origin"] == b"https://y.test"
    peer.h3.send_headers(sid, [(b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")])
    peer.run()
    assert peer.take_ours(ev.SessionEstablished)[0].session_id == sid

    bidi = peer.engine.open_stream(sid, is_unidirectional=False)
    peer.engine.send_stream_data(bidi, b"hello", end_stream=True)
    peer.run()
    got = [e for e in peer.take(h3e.WebTransportStreamDataReceived) if e.stream_id == bidi]
    assert b"".join(e.data for e in got) == b"hello" and got[0].session_id == sid
    peer.quic.send_stream_data(bidi, b"HELLO", end_stream=True)
    peer.run()
    assert b"".join(e.data for e in peer.take_ours(ev.StreamDataReceived) if e.stream_id == bidi) == b"HELLO"

    server_uni = peer.h3.create_webtransport_stream(sid, is_unidirectional=True)
    peer.quic.send_stream_data(server_uni, b"push", end_stream=True)
    peer.run()
    opened = peer.take_ours(ev.StreamOpened)
    assert [(e.stream_id, e.is_unidirectional) for e in opened] == [(server_uni, True)]

    peer.engine.send_datagram(sid, b"up")
    peer.h3.send_datagram(sid, b"down")
    peer.run()
    assert [e.data for e in peer.take(h3e.DatagramReceived)] == [b"up"]
    assert [e.data for e in peer.take_ours(ev.DatagramReceived)] == [b"down"]

    peer.engine.close_session(sid, 5, "done")
    peer.run()
    tail = b"".join(e.data for e in peer.take(h3e.DataReceived) if e.stream_id == sid)
    assert tail.startswith(b"\x68\x43")  # WT_CLOSE_SESSION (0x2843) as a 2-byte varint
