"""TLS keying-material export over real UDP (RFC 8446 §7.5 as draft-15 §4.8 uses it): both
ends of a session derive the same bytes; labels, contexts and sessions separate them."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.exceptions import SessionClosedError
from pywebtransport.session import WebTransportSession

from .conftest import running_server

pytestmark = pytest.mark.timeout(60)

#: (label, context, length) pairs the server exports for every session it serves.
REQUESTS: tuple[tuple[str | bytes, bytes, int], ...] = (
    ("app", b"", 32), ("app", b"ctx", 32), (b"other", b"ctx", 32), ("app", b"ctx", 1), ("app", b"ctx", 100),
    ("é" * 10, bytes(range(255)), 64),
)


class Exporter:
    """A server handler that exports keying material for each session it serves."""

    def __init__(self) -> None:
        self.results: asyncio.Queue[tuple[int, list[bytes]]] = asyncio.Queue()

    async def handler(self, session: WebTransportSession) -> None:
        await self.results.put((session.session_id,
                                [session.export_keying_material(*request) for request in REQUESTS]))
        await session.wait_closed()


async def test_both_ends_of_a_session_export_the_same_bytes(server_config, client_config) -> None:
    exporter = Exporter()
    async with running_server(server_config, {"/kx": exporter.handler}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/kx")
        session_id, server_side = await asyncio.wait_for(exporter.results.get(), 5)
        assert session_id == session.session_id
        client_side = [session.export_keying_material(*request) for request in REQUESTS]
        assert client_side == server_side
        assert [len(out) for out in client_side] == [request[2] for request in REQUESTS]
        assert len(set(client_side[:3])) == 3  # label and context each change the bytes
        assert client_side[4][:32] != client_side[1]  # the length is bound in (HkdfLabel), no prefix
        # draft-15 §4.8: the connection's exporter, label EXPORTER-WebTransport, context = session
        # ID (64 bits) ‖ label length ‖ label ‖ context length ‖ context
        connection = session.connection
        assert connection is not None
        wt_context = session.session_id.to_bytes(8, "big") + b"\x03app\x03ctx"
        assert connection.export_keying_material(b"EXPORTER-WebTransport", wt_context, 32) == client_side[1]
        await session.close()
        with pytest.raises(SessionClosedError):
            session.export_keying_material("app")


async def test_two_sessions_on_one_connection_get_different_material(server_config, client_config) -> None:
    exporter = Exporter()
    async with running_server(server_config, {"/kx": exporter.handler}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        first = await client.connect(f"{base}/kx")
        connection = first.connection
        assert connection is not None
        second = await connection.open_session(path="/kx", authority=base.removeprefix("https://"))
        assert second.connection is connection and second.session_id != first.session_id
        served = dict([await asyncio.wait_for(exporter.results.get(), 5) for _ in range(2)])
        for session in (first, second):
            assert [session.export_keying_material(*request) for request in REQUESTS] == served[session.session_id]
        assert first.export_keying_material("app", b"ctx") != second.export_keying_material("app", b"ctx")
        await second.close()
        await first.close()


async def test_export_arguments_are_checked(server_config, client_config) -> None:
    exporter = Exporter()
    async with running_server(server_config, {"/kx": exporter.handler}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/kx")
        with pytest.raises(ValueError, match="label"):
            session.export_keying_material("")
        with pytest.raises(ValueError, match="label"):
            session.export_keying_material(b"x" * 256)
        with pytest.raises(ValueError, match="context"):
            session.export_keying_material("app", b"x" * 256)
        with pytest.raises(ValueError, match="length"):
            session.export_keying_material("app", b"", -1)
        assert session.export_keying_material(b"x" * 255, b"y" * 255, 0) == b""
        await session.close()
