"""Choosing how the endpoint uses its socket: every platform/capability branch, forced.

``PYWEBTRANSPORT_UDP_MODE`` (or ``mode=``) forces ``reader``, ``transport`` or ``mmsg``;
``auto`` picks by platform and by what was built, and falls back to asyncio's transport on
a loop without ``add_reader`` (the Windows proactor loop, imitated here).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Coroutine
from typing import Any

import pytest

from pywebtransport._io import UdpEndpoint
from pywebtransport._io import modes as modes_module
from pywebtransport._io.modes import ENV_VAR, UdpMode, mmsg, requested_mode, resolve_mode
from pywebtransport._wire import NO_EXTENSIONS
from pywebtransport.types import Address
from tests.unit.io.fakes import Factory
from tests.unit.io.quic_bytes import long_packet

DCID = bytes.fromhex("0102030405060708")


@pytest.mark.parametrize(("value", "expected"), [
    (None, UdpMode.AUTO), ("", UdpMode.AUTO), ("auto", UdpMode.AUTO), ("reader", UdpMode.READER),
    ("transport", UdpMode.TRANSPORT), ("mmsg", UdpMode.MMSG), (" MMSG ", UdpMode.MMSG),
])
def test_requested_mode_reads_the_environment(value: str | None, expected: UdpMode) -> None:
    environ = {} if value is None else {ENV_VAR: value}
    assert requested_mode(environ) is expected


def test_unknown_mode_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match=f"{ENV_VAR}='epoll'.*auto, reader, transport, mmsg"):
        requested_mode({ENV_VAR: "epoll"})


@pytest.mark.parametrize(("requested", "platform", "batched", "expected"), [
    (UdpMode.AUTO, "linux", True, UdpMode.MMSG),
    (UdpMode.AUTO, "linux", False, UdpMode.READER),  # pure build, or compiled module missing
    (UdpMode.AUTO, "darwin", False, UdpMode.READER),
    (UdpMode.AUTO, "win32", False, UdpMode.READER),  # the proactor fallback happens at open()
    (UdpMode.AUTO, "freebsd14", True, UdpMode.READER),  # batching is only trusted on Linux
    (UdpMode.READER, "linux", True, UdpMode.READER),
    (UdpMode.TRANSPORT, "linux", True, UdpMode.TRANSPORT),
    (UdpMode.MMSG, "linux", False, UdpMode.MMSG),  # the pure twin keeps the interface
    (UdpMode.MMSG, "win32", False, UdpMode.MMSG),
    (UdpMode.TRANSPORT, "win32", False, UdpMode.TRANSPORT),
])
def test_resolve_mode_for_each_platform_and_capability(requested: UdpMode, platform: str, batched: bool,
                                                       expected: UdpMode) -> None:
    assert resolve_mode(requested, platform=platform, batched=batched) is expected


def test_mmsg_variant_in_use_matches_the_build() -> None:
    if NO_EXTENSIONS or not sys.platform.startswith("linux"):
        assert modes_module.MMSG_IMPLEMENTATION == "python" and mmsg.BATCHED is False
    else:  # CI builds the extension: auto must really batch on Linux
        assert modes_module.MMSG_IMPLEMENTATION == "cython" and mmsg.BATCHED is True


class _ReplyingFactory(Factory):
    """Opens FakeConnections that answer each datagram; ``opened`` is set at the first."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()

    def __call__(self, original_dcid: bytes, addr: Address) -> Any:
        connection = super().__call__(original_dcid, addr)
        assert connection is not None

        def reply(data: bytes, source: Address) -> None:
            connection.outbox.append((b"hello " + original_dcid, source))

        connection.on_datagram = reply
        self.opened.set()
        return connection


async def _round_trip(endpoint: UdpEndpoint, factory: _ReplyingFactory, family: socket.AddressFamily,
                      host: str) -> None:
    """An Initial from a plain socket opens a connection whose reply comes back."""
    loop = asyncio.get_running_loop()
    peer = socket.socket(family, socket.SOCK_DGRAM)
    peer.setblocking(False)
    try:
        peer.bind((host, 0))
        initial = long_packet("initial", dcid=DCID, scid=b"\x09" * 4)
        reply = asyncio.ensure_future(loop.sock_recv(peer, 2048))
        peer.sendto(initial, endpoint.local_address)
        await asyncio.wait_for(factory.opened.wait(), 5)
        assert factory.made[0].received[0][0] == initial
        assert await asyncio.wait_for(reply, 5) == b"hello " + DCID
        assert endpoint.datagrams_out == 1
    finally:
        peer.close()


@pytest.mark.parametrize("mode", [UdpMode.READER, UdpMode.TRANSPORT, UdpMode.MMSG])
@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
                         ids=["ipv4", "ipv6"])
async def test_forced_mode_is_used_and_serves_a_connection(mode: UdpMode, family: socket.AddressFamily,
                                                           host: str) -> None:
    factory = _ReplyingFactory()
    endpoint = await UdpEndpoint.open(local_addr=(host, 0), new_connection=factory, mode=mode)
    try:
        assert endpoint.mode is mode
        assert endpoint.gso is (mode is UdpMode.MMSG and mmsg.BATCHED)  # this kernel has UDP_SEGMENT
        await _round_trip(endpoint, factory, family, host)
    finally:
        endpoint.close()
        await asyncio.wait_for(endpoint.wait_closed(), 5)


@pytest.mark.parametrize("value", ["reader", "transport", "mmsg"])
async def test_environment_variable_forces_the_mode(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_VAR, value)
    endpoint = await UdpEndpoint.open(local_addr=("127.0.0.1", 0))
    try:
        assert endpoint.mode is UdpMode(value)
    finally:
        endpoint.close()


async def test_auto_mode_on_this_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    endpoint = await UdpEndpoint.open(local_addr=("127.0.0.1", 0))
    try:
        linux_batched = sys.platform.startswith("linux") and mmsg.BATCHED
        assert endpoint.mode is (UdpMode.MMSG if linux_batched else UdpMode.READER)
    finally:
        endpoint.close()


class _ProactorLikeLoop(asyncio.SelectorEventLoop):
    """A loop that, like Windows' proactor loop, cannot watch a socket for us."""

    def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:
        raise NotImplementedError


def _run_on_proactor_like_loop(coro: Coroutine[Any, Any, None]) -> None:
    loop = _ProactorLikeLoop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


def test_auto_falls_back_to_the_datagram_transport_without_add_reader() -> None:
    async def scenario() -> None:
        factory = _ReplyingFactory()
        endpoint = await UdpEndpoint.open(local_addr=("127.0.0.1", 0), new_connection=factory, mode=UdpMode.AUTO)
        try:
            assert endpoint.mode is UdpMode.TRANSPORT
            await _round_trip(endpoint, factory, socket.AF_INET, "127.0.0.1")
        finally:
            endpoint.close()
            await asyncio.wait_for(endpoint.wait_closed(), 5)

    _run_on_proactor_like_loop(scenario())


@pytest.mark.parametrize("mode", [UdpMode.READER, UdpMode.MMSG])
def test_forcing_a_socket_mode_without_add_reader_is_an_error(mode: UdpMode) -> None:
    async def scenario() -> None:
        with pytest.raises(RuntimeError, match=f"{mode.value!r} needs a loop with add_reader"):
            await UdpEndpoint.open(local_addr=("127.0.0.1", 0), mode=mode)

    _run_on_proactor_like_loop(scenario())


def test_attach_socket_refuses_modes_that_do_not_read_the_socket() -> None:
    async def scenario() -> None:
        endpoint = UdpEndpoint()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for mode in (UdpMode.AUTO, UdpMode.TRANSPORT):
                with pytest.raises(ValueError, match=mode.value):
                    endpoint.attach_socket(sock, mode=mode)
        finally:
            sock.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", [UdpMode.READER, UdpMode.TRANSPORT])
async def test_reuse_port_lets_two_endpoints_share_a_port(mode: UdpMode) -> None:
    first = await UdpEndpoint.open(local_addr=("127.0.0.1", 0), mode=mode, reuse_port=True)
    try:
        port = first.local_address[1]
        second = await UdpEndpoint.open(local_addr=("127.0.0.1", port), mode=mode, reuse_port=True)
        try:
            assert second.local_address == ("127.0.0.1", port)
        finally:
            second.close()
        with pytest.raises(OSError):  # without the option the port is taken
            await UdpEndpoint.open(local_addr=("127.0.0.1", port), mode=mode)
    finally:
        first.close()
