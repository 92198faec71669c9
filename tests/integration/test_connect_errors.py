"""A failed connect says what happened: a refused port fails at once, and a timeout names the
stage reached (no reply at all, handshake not done, no SETTINGS, CONNECT not answered)."""

from __future__ import annotations

import asyncio
import builtins
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import pytest
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import HandshakeCompleted, ProtocolNegotiated, QuicEvent

from pywebtransport.client import WebTransportClient
from pywebtransport.client.reconnect import is_retryable_error
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.connection import ConnectStage
from pywebtransport.exceptions import ConnectionRefusedError, HandshakeError, TimeoutError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession
from pywebtransport.utils import SelfSignedCertificate
from tests.integration.peers import client_connection

#: The connect timeout of the stage tests: long enough for a loopback handshake on a busy
#: machine, short enough that each test waits it out quickly.
STAGE_TIMEOUT = 2.0


def closed_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class _Silent(asyncio.DatagramProtocol):
    """A bound UDP port that reads everything and answers nothing."""


class _Junk(asyncio.DatagramProtocol):
    """Answers every datagram with bytes that are not QUIC."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.transport.sendto(b"\x00not quic\x00" * 4, addr)


@asynccontextmanager
async def udp_peer(protocol: asyncio.DatagramProtocol) -> AsyncIterator[int]:
    """Serve ``protocol`` on a fresh loopback port; yields the port."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: protocol, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


class _ClosesWithAnHttp3Code(QuicConnectionProtocol):
    """Ends each connection as its handshake completes, with an application (HTTP/3) close
    whose code, H3_EXCESSIVE_LOAD (0x107), lies in the range of QUIC's TLS alerts."""

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self._quic.close(error_code=0x107, reason_phrase="overloaded")
            self.transmit()


class _SilentAfterConnect(QuicConnectionProtocol):
    """An HTTP/3 server announcing WebTransport that, once a CONNECT request arrives, sends
    what it has (its ACK) and then neither reads nor sends anything more: a server that froze,
    or a path that started dropping every packet. ``asked`` is set at the request."""

    asked = asyncio.Event()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._h3: H3Connection | None = None
        self._frozen = False

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:  # type: ignore[override]
        if not self._frozen:
            super().datagram_received(data, addr)

    def transmit(self) -> None:
        if not self._frozen:
            super().transmit()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self._h3 = H3Connection(self._quic, enable_webtransport=True)
        if self._h3 is None:
            return
        if any(isinstance(h3_event, HeadersReceived) for h3_event in self._h3.handle_event(event)):
            super().transmit()
            self._frozen = True
            type(self).asked.set()


@asynccontextmanager
async def quic_only_server(certificate: SelfSignedCertificate,
                           protocol: type[QuicConnectionProtocol] = QuicConnectionProtocol) -> AsyncIterator[int]:
    """A raw aioquic server that completes QUIC with ALPN h3 but never speaks HTTP/3."""
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"], max_datagram_frame_size=65536)
    configuration.load_cert_chain(str(certificate.cert_path), str(certificate.key_path))
    transport, server = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: QuicServer(configuration=configuration, create_protocol=protocol), local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        server.close()


async def _connect_fails(config: ClientConfig, url: str) -> BaseException:
    async with WebTransportClient(config=config) as client:
        with pytest.raises((builtins.TimeoutError, HandshakeError)) as caught:
            # The outer bound only guards the test: the client must give up by itself first.
            await asyncio.wait_for(client.connect(url), config.connect_timeout + 10)
        assert client.connect_failures == 1
    return caught.value


@pytest.mark.parametrize("mode", ["reader", "transport", "mmsg"])
async def test_nothing_listening_fails_at_once_with_connection_refused(
        client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("PYWEBTRANSPORT_UDP_MODE", mode)
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await _connect_fails(client_config.replace(connect_timeout=30.0),
                                 f"https://127.0.0.1:{closed_port()}/")
    assert isinstance(error, ConnectionRefusedError)
    assert isinstance(error, builtins.ConnectionRefusedError) and isinstance(error, HandshakeError)
    assert "unreachable" in str(error)
    assert loop.time() - started < 10.0  # a third of the connect timeout: it did not wait it out


async def test_an_ipv6_peer_is_named_with_its_host_in_brackets(client_config: ClientConfig) -> None:
    # "::1:4433" reads as an address with no port; errors and logs write "[::1]:4433".
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    error = await _connect_fails(client_config, f"https://[::1]:{port}/")
    assert isinstance(error, ConnectionRefusedError)
    assert f"[::1]:{port} refused the connection" in str(error)


async def test_a_peer_that_never_answers_times_out_saying_no_reply(client_config: ClientConfig) -> None:
    async with udp_peer(_Silent()) as port:
        error = await _connect_fails(client_config.replace(connect_timeout=STAGE_TIMEOUT),
                                     f"https://127.0.0.1:{port}/")
    assert isinstance(error, TimeoutError) and isinstance(error, builtins.TimeoutError)
    assert ConnectStage.NO_REPLY.value in str(error)
    assert f"127.0.0.1:{port}" in str(error)


async def test_a_peer_that_answers_without_quic_times_out_in_the_handshake(client_config: ClientConfig) -> None:
    async with udp_peer(_Junk()) as port:
        error = await _connect_fails(client_config.replace(connect_timeout=STAGE_TIMEOUT),
                                     f"https://127.0.0.1:{port}/")
    assert isinstance(error, TimeoutError)
    assert ConnectStage.HANDSHAKE.value in str(error)
    assert "datagrams received" in str(error)


async def test_a_quic_peer_without_http3_times_out_waiting_for_settings(
        client_config: ClientConfig, certificate: SelfSignedCertificate) -> None:
    async with quic_only_server(certificate) as port:
        error = await _connect_fails(client_config.replace(connect_timeout=STAGE_TIMEOUT),
                                     f"https://127.0.0.1:{port}/")
    assert isinstance(error, TimeoutError)
    assert ConnectStage.SETTINGS.value in str(error)


async def test_an_http3_close_during_the_connect_is_no_tls_alert_and_may_be_retried(
        client_config: ClientConfig, certificate: SelfSignedCertificate) -> None:
    # HTTP/3 codes (0x100-0x1ff) share QUIC's range for TLS alerts (CRYPTO_ERROR): the close
    # frame's type tells them apart. An overloaded server's close read as a TLS alert, and
    # client.sessions() gave up instead of retrying.
    async with quic_only_server(certificate, _ClosesWithAnHttp3Code) as port:
        error = await _connect_fails(client_config, f"https://127.0.0.1:{port}/")
    assert isinstance(error, HandshakeError) and error.error_code == 0x107
    assert error.tls_alert is None and is_retryable_error(error)


async def test_the_engines_own_settings_deadline_is_reported_as_a_connect_timeout(
        client_config: ClientConfig, certificate: SelfSignedCertificate) -> None:
    """The engine gives up on SETTINGS connect_timeout after the handshake; on a stalled loop
    that can land before the connect's own timer is seen. The caller still gets the timeout."""
    async with quic_only_server(certificate) as port:
        connection = await client_connection(client_config.replace(connect_timeout=0.3), port)
        try:
            connection.connect()
            with pytest.raises(TimeoutError) as caught:  # no timer of its own: only the engine's deadline
                await asyncio.wait_for(connection.wait_connected(timeout=None), 10.0)
        finally:
            await connection.close()
    assert ConnectStage.SETTINGS.value in str(caught.value)
    assert "no SETTINGS within 0.3s" in str(caught.value)


async def test_an_unanswered_connect_request_times_out_naming_it(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    asked = asyncio.Event()
    never = asyncio.Event()

    async def decider(session: WebTransportSession) -> int | None:
        asked.set()
        await never.wait()  # never decides: the CONNECT request stays unanswered
        return None

    async def handler(session: WebTransportSession) -> None:  # pragma: no cover - never accepted
        await session.wait_closed()

    async with WebTransportServer(config=server_config, handler=handler, decider=decider) as server:
        host, port = server.local_address
        error = await _connect_fails(client_config.replace(connect_timeout=STAGE_TIMEOUT),
                                     f"https://{host}:{port}/waiting")
    assert asked.is_set()
    assert isinstance(error, TimeoutError)
    assert "did not answer the CONNECT request for /waiting" in str(error)


def _silent_after_connect() -> type[_SilentAfterConnect]:
    """The silent peer's class with an ``asked`` event of this test's loop."""
    return type("Silent", (_SilentAfterConnect,), {"asked": asyncio.Event()})


async def test_a_connect_the_server_stops_answering_fails_within_its_timeout(
        certificate: SelfSignedCertificate, client_config: ClientConfig) -> None:
    # The failed connect closes the session it asked for; a close nobody acknowledges used to
    # keep it waiting close_timeout (5 s) past connect_timeout.
    protocol = _silent_after_connect()
    config = client_config.replace(connect_timeout=1.0, close_timeout=30.0)
    loop = asyncio.get_running_loop()
    async with quic_only_server(certificate, protocol) as port:
        started = loop.time()
        error = await _connect_fails(config, f"https://127.0.0.1:{port}/frozen")
        elapsed = loop.time() - started
    assert protocol.asked.is_set() and isinstance(error, TimeoutError)
    assert "did not answer the CONNECT request for /frozen" in str(error)
    assert elapsed < config.connect_timeout + 5.0, f"connect(timeout=1.0) took {elapsed:.1f}s"


async def test_a_cancelled_connect_ends_at_once_when_the_server_stopped_answering(
        certificate: SelfSignedCertificate, client_config: ClientConfig) -> None:
    protocol = _silent_after_connect()
    async with (quic_only_server(certificate, protocol) as port,
                WebTransportClient(config=client_config.replace(close_timeout=30.0)) as client):
        connecting = asyncio.ensure_future(client.connect(f"https://127.0.0.1:{port}/frozen"))
        await asyncio.wait_for(protocol.asked.wait(), 10)
        connecting.cancel()
        # Well under close_timeout: the cancelled connect waits for no acknowledgement.
        done, _ = await asyncio.wait([connecting], timeout=10)
        assert connecting in done and connecting.cancelled()
        assert client.connections == []
