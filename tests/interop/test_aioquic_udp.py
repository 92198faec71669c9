"""aioquic's own asyncio HTTP/3 stack (H3Connection with WebTransport) against ours, over UDP
on 127.0.0.1: their server with our client, and their client with our server."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3 import events as h3e
from aioquic.h3.connection import H3Connection
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream, WebTransportStream
from pywebtransport.utils import SelfSignedCertificate, generate_self_signed_cert
from tests.unit.protocol.test_engine_vs_aioquic_h3 import open_aioquic_bidi

from ..integration.conftest import echo_handler, running_server

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    return generate_self_signed_cert("localhost", output_dir=tmp_path_factory.mktemp("aioquic-cert"))


class AioquicWebTransportServer(QuicConnectionProtocol):
    """A WebTransport echo server written only with aioquic's H3Connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3: H3Connection | None = None
        self.sessions: set[int] = set()
        self.uni_buffers: dict[int, bytearray] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic, enable_webtransport=True)
        if self.h3 is None:
            return
        for h3_event in self.h3.handle_event(event):
            self.h3_event(h3_event)
        self.transmit()

    def h3_event(self, event: h3e.H3Event) -> None:
        assert self.h3 is not None
        if isinstance(event, h3e.HeadersReceived):
            headers = dict(event.headers)
            if headers.get(b":method") == b"CONNECT" and headers.get(b":protocol") == b"webtransport":
                self.sessions.add(event.stream_id)
                self.h3.send_headers(event.stream_id, [(b":status", b"200"),
                                                       (b"sec-webtransport-http3-draft", b"draft02")])
            else:
                self.h3.send_headers(event.stream_id, [(b":status", b"400")], end_stream=True)
        elif isinstance(event, h3e.WebTransportStreamDataReceived):
            if event.stream_id % 4 in (0, 1):  # bidirectional: echo in place
                self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.stream_ended)
            else:  # unidirectional: answer on a new uni stream once complete
                buffer = self.uni_buffers.setdefault(event.stream_id, bytearray())
                buffer += event.data
                if event.stream_ended:
                    reply = self.h3.create_webtransport_stream(event.session_id, is_unidirectional=True)
                    self._quic.send_stream_data(reply, b"aioquic got: " + bytes(buffer), end_stream=True)
        elif isinstance(event, h3e.DatagramReceived):
            self.h3.send_datagram(event.stream_id, b"echo:" + event.data)


async def test_our_client_against_an_aioquic_server(cert: SelfSignedCertificate) -> None:
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"], max_datagram_frame_size=65536)
    configuration.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    # What aioquic's serve() does, keeping the transport to learn the port it bound.
    transport, server = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: QuicServer(configuration=configuration, create_protocol=AioquicWebTransportServer),
        local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with WebTransportClient(config=ClientConfig(server_certificate_hashes=[cert.sha256])) as client:
            session = await client.connect(f"https://127.0.0.1:{port}/anything")
            assert session.connection is not None and session.connection.dialect == "draft-02"
            bidi = await session.create_bidirectional_stream()
            await bidi.write_all(b"round trip" * 1000, end_stream=True)
            assert await asyncio.wait_for(bidi.read(), 10) == b"round trip" * 1000
            uni = await session.create_unidirectional_stream()
            await uni.write_all(b"one way", end_stream=True)
            reply = await session.accept_stream(timeout=10)
            assert isinstance(reply, WebTransportReceiveStream)
            assert await reply.read() == b"aioquic got: one way"
            for _ in range(20):
                await session.datagrams.send(b"dg")
                try:
                    assert await session.datagrams.receive(timeout=0.2) == b"echo:dg"
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail("no datagram came back from the aioquic server")
            await session.close()
    finally:
        server.close()


class AioquicWebTransportClient(QuicConnectionProtocol):
    """A WebTransport client written only with aioquic's H3Connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic, enable_webtransport=True)
        self.queue: asyncio.Queue[h3e.H3Event] = asyncio.Queue()

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.h3.handle_event(event):
            self.queue.put_nowait(h3_event)

    def next_stream_id(self) -> int:
        """The id the next bidirectional stream this client opens will have."""
        return self._quic.get_next_available_stream_id()

    def send_stream_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        self._quic.send_stream_data(stream_id, data, end_stream=end_stream)

    async def next(self, kind: type, timeout: float = 10) -> Any:
        async def wait() -> Any:
            while True:
                event = await self.queue.get()
                if isinstance(event, kind):
                    return event
        return await asyncio.wait_for(wait(), timeout)


async def test_an_aioquic_client_against_our_server(cert: SelfSignedCertificate) -> None:
    seen: list[WebTransportSession] = []

    async def handler(session: WebTransportSession) -> None:
        seen.append(session)
        await echo_handler(session)

    config = ServerConfig(host="127.0.0.1", port=0, certfile=str(cert.cert_path), keyfile=str(cert.key_path))
    async with running_server(config, {"/echo": handler}) as (server, _):
        port = server.local_address[1]
        configuration = QuicConfiguration(is_client=True, alpn_protocols=["h3"], max_datagram_frame_size=65536,
                                          verify_mode=ssl.CERT_NONE, server_name="localhost")
        async with connect("127.0.0.1", port, configuration=configuration,
                           create_protocol=AioquicWebTransportClient) as client:
            assert isinstance(client, AioquicWebTransportClient)
            sid = client.next_stream_id()
            client.h3.send_headers(sid, [(b":method", b"CONNECT"), (b":protocol", b"webtransport"),
                                         (b":scheme", b"https"), (b":authority", b"localhost"),
                                         (b":path", b"/echo"), (b"origin", b"https://aioquic.test")])
            client.transmit()
            response = await client.next(h3e.HeadersReceived)
            assert dict(response.headers)[b":status"] == b"200"
            assert seen and seen[0].headers["origin"] == "https://aioquic.test"

            bidi = open_aioquic_bidi(client.h3, sid)
            client.send_stream_data(bidi, b"hello ours", end_stream=True)
            client.transmit()
            echoed = bytearray()
            while True:
                event = await client.next(h3e.WebTransportStreamDataReceived)
                if event.stream_id == bidi:
                    echoed += event.data
                    if event.stream_ended:
                        break
            assert bytes(echoed) == b"hello ours"

            uni = client.h3.create_webtransport_stream(sid, is_unidirectional=True)
            client.send_stream_data(uni, b"uni to ours", end_stream=True)
            client.transmit()
            reply = bytearray()
            while True:
                event = await client.next(h3e.WebTransportStreamDataReceived)
                reply += event.data
                if event.stream_ended:
                    break
            assert bytes(reply) == b"uni to ours"

            client.h3.send_datagram(sid, b"dgram")
            client.transmit()
            datagram = await client.next(h3e.DatagramReceived)
            assert (datagram.stream_id, datagram.data) == (sid, b"dgram")
        assert isinstance(seen[0], WebTransportSession)
        assert not isinstance(seen[0], WebTransportStream)
