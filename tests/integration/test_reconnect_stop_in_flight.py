"""Stopping a reconnecting client stops its connection attempt in flight: ``aclose()`` ends
the ``async for`` at once against a server that stopped answering, instead of after the rest
of ``connect_timeout``, and the attempt's connection is closed. A cancelled consumer takes
the attempt down with it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from pywebtransport.client import ReconnectingClient, ReconnectPolicy, WebTransportClient
from pywebtransport.config import ClientConfig
from pywebtransport.connection import WebTransportConnection
from pywebtransport.session import WebTransportSession

pytestmark = pytest.mark.timeout(60)

#: The attempt's own timeout: far beyond the bound the tests allow for the iteration to end.
CONNECT_TIMEOUT = 30.0
#: How long the iteration may take to end: generous, yet well below CONNECT_TIMEOUT.
PROMPTLY = 5.0
WAIT = 10.0


class _Listener(asyncio.DatagramProtocol):
    """A server that stopped answering; ``heard`` is set by the client's first Initial."""

    def __init__(self) -> None:
        self.heard = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.heard.set()


@dataclass
class InFlight:
    client: WebTransportClient
    sessions: ReconnectingClient
    first: asyncio.Future[WebTransportSession]  # the pending ``__anext__()``
    connection: WebTransportConnection  # the attempt's


@asynccontextmanager
async def attempt_in_flight(client_config: ClientConfig, policy: ReconnectPolicy) -> AsyncIterator[InFlight]:
    """A client whose ``sessions()`` iterator waits in its first attempt, to a silent peer."""
    listener = _Listener()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: listener, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with WebTransportClient(config=client_config.replace(connect_timeout=CONNECT_TIMEOUT)) as client:
            sessions = client.sessions(f"https://127.0.0.1:{port}/x", policy=policy)
            first = asyncio.ensure_future(sessions.__anext__())
            try:
                await asyncio.wait_for(listener.heard.wait(), WAIT)
                [connection] = client.connections
                yield InFlight(client, sessions, first, connection)
            finally:
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
                await sessions.aclose()
    finally:
        transport.close()


def _assert_attempt_cleaned_up(flight: InFlight) -> None:
    assert flight.connection.is_closed  # the cancelled attempt closed its connection
    assert flight.client.connections == [] and flight.client.get_stats()["connections"] == 0
    assert flight.sessions.attempts == 1 and flight.sessions.session is None


@pytest.mark.parametrize("policy_timeout", [None, CONNECT_TIMEOUT], ids=["client_timeout", "policy_timeout"])
async def test_aclose_during_an_attempt_in_flight_ends_iteration_at_once(
        client_config: ClientConfig, policy_timeout: float | None) -> None:
    policy = ReconnectPolicy(initial_delay=0.01, connect_timeout=policy_timeout)
    async with attempt_in_flight(client_config, policy) as flight:
        await flight.sessions.aclose()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(flight.first, PROMPTLY)
        _assert_attempt_cleaned_up(flight)
        with pytest.raises(StopAsyncIteration):
            await flight.sessions.__anext__()


async def test_leaving_async_with_during_an_attempt_in_flight_ends_iteration_at_once(
        client_config: ClientConfig) -> None:
    async with attempt_in_flight(client_config, ReconnectPolicy(initial_delay=0.01)) as flight:
        async with flight.sessions:
            pass  # __aexit__ runs aclose() while the consumer's attempt is under way
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(flight.first, PROMPTLY)
        _assert_attempt_cleaned_up(flight)


async def test_cancelling_the_consumer_during_an_attempt_closes_its_connection(client_config: ClientConfig) -> None:
    async with attempt_in_flight(client_config, ReconnectPolicy(initial_delay=0.01)) as flight:
        flight.first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(flight.first, PROMPTLY)
        _assert_attempt_cleaned_up(flight)
