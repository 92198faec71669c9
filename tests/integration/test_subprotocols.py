"""Subprotocol negotiation over UDP loopback (draft-15 §3.3, the W3C ``protocols`` option)."""

from __future__ import annotations

import asyncio

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ServerConfig
from pywebtransport.exceptions import SessionRejectedError
from pywebtransport.server import WebTransportServer
from pywebtransport.session import WebTransportSession

pytestmark = pytest.mark.timeout(60)


async def test_the_server_picks_its_first_preference_the_client_offered(server_config: ServerConfig,
                                                                        client: WebTransportClient) -> None:
    seen: asyncio.Future[tuple[str | None, tuple[str, ...]]] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        seen.set_result((session.protocol, session.available_protocols))
        await session.wait_closed()

    async with WebTransportServer(config=server_config, handler=handler, protocols=["chat.v3", "chat.v2"]) as server:
        host, port = server.local_address
        session = await client.connect(f"https://{host}:{port}/x", protocols=["chat.v1", "chat.v2"])
        assert session.protocol == "chat.v2"
        assert await asyncio.wait_for(seen, 10) == ("chat.v2", ("chat.v1", "chat.v2"))
        await session.close()


async def test_a_decider_can_select_and_no_overlap_means_no_protocol(server_config: ServerConfig,
                                                                     client: WebTransportClient) -> None:
    async def decider(session: WebTransportSession) -> bool:
        if "pick-me" in session.available_protocols:
            session.select_protocol("pick-me")
        return True

    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    async with WebTransportServer(config=server_config, handler=handler, decider=decider,
                                  protocols=["other"]) as server:
        host, port = server.local_address
        chosen = await client.connect(f"https://{host}:{port}/x", protocols=["x", "pick-me"])
        plain = await client.connect(f"https://{host}:{port}/x", protocols=["nothing-in-common"])
        assert (chosen.protocol, plain.protocol) == ("pick-me", None)
        await chosen.close()
        await plain.close()


async def test_a_server_answer_outside_the_offer_fails_the_session(server_config: ServerConfig,
                                                                   client: WebTransportClient) -> None:
    async def handler(session: WebTransportSession) -> None:
        await session.wait_closed()

    async def decider(session: WebTransportSession) -> bool:
        connection = session.connection
        assert connection is not None
        # A misbehaving server: it answers a protocol the client never offered.
        connection.accept_session(session, headers={"wt-protocol": '"rogue"'})
        return True

    async with WebTransportServer(config=server_config, handler=handler, decider=decider) as server:
        host, port = server.local_address
        with pytest.raises(SessionRejectedError, match="did not offer"):
            await client.connect(f"https://{host}:{port}/x", protocols=["chat.v1"])
