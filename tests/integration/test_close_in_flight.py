"""A connection closed right after its last session keeps that session's close on the wire
until the peer has it (found under load on qh3: the packet carrying WT_CLOSE_SESSION was not
out yet, and QUIC, once closing, sends nothing but CONNECTION_CLOSE, so the server saw
'connection terminated' instead of the client's code and reason).

Here the datagrams that carry the close are lost deterministically: QUIC builds them (and
counts them in flight) but they never reach the socket, so only a retransmission can
deliver the close, and only a connection close that waits for its acknowledgement lets one
happen."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession
from tests.integration.conftest import running_server


def _lose_the_next_send(quic: Any) -> None:
    """The next ``datagrams_to_send`` of ``quic`` is built and then lost on the way out."""
    send = quic.datagrams_to_send

    def lost_once(now: float) -> list[tuple[bytes, Any]]:
        quic.datagrams_to_send = send  # every later send goes out
        send(now)
        return []

    quic.datagrams_to_send = lost_once


@pytest.mark.parametrize("close_connection", [False, True], ids=["client-closes-it", "close_connection"])
async def test_the_last_session_close_reaches_the_server_when_its_packet_is_lost(
        close_connection: bool, server_config: ServerConfig, client_config: ClientConfig) -> None:
    closed: asyncio.Future[tuple[int | None, str | None]] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()
        closed.set_result((session.close_code, session.close_reason))

    async with running_server(server_config, {"/c": handler}) as (_, base), \
            WebTransportClient(config=client_config) as client:
        session = await client.connect(f"{base}/c")
        connection = session.connection
        assert connection is not None
        _lose_the_next_send(connection._engine.quic)
        # The client closes its connection once its last session is closed.
        await session.close(error_code=4005, reason="bye 5", close_connection=close_connection)
        await asyncio.wait_for(connection.wait_closed(), 10)
        assert await asyncio.wait_for(closed, 10) == (4005, "bye 5")
