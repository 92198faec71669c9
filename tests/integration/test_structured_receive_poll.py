"""``StructuredStream.receive_obj(timeout=0)`` polls: a message already received whole is
returned without waiting, as ``datagrams.receive(timeout=0)`` returns a waiting datagram;
a message not (wholly) there yet is a TimeoutError at once, and nothing of it is lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ServerConfig
from pywebtransport.exceptions import StreamClosedError, TimeoutError
from pywebtransport.messaging import JSONSerializer, StructuredStream
from pywebtransport.messaging.framing import encode_frame

from .conftest import echo_handler, running_server

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0  # bounds a hang only


@dataclass
class Ping:
    seq: int


REGISTRY: dict[int, type[Any]] = {1: Ping}


def _frame(obj: Ping) -> bytes:
    return encode_frame(1, JSONSerializer().serialize(obj))


@pytest.fixture
async def echo_base(server_config: ServerConfig) -> AsyncIterator[str]:
    async with running_server(server_config, {"/echo": echo_handler}) as (_, base):
        yield base


async def _typed_echo_stream(client: WebTransportClient, base: str) -> StructuredStream:
    session = await client.connect(base + "/echo")
    return await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)


@pytest.mark.parametrize("timeout", [0, -1.0], ids=["zero", "negative"])
async def test_receive_obj_without_waiting_returns_a_message_already_received(
        echo_base: str, client: WebTransportClient, timeout: float) -> None:
    typed = await _typed_echo_stream(client, echo_base)
    # One write of two small frames travels (and is echoed) as one STREAM frame: once the
    # first message is here, the second one is buffered whole.
    typed.stream.write(_frame(Ping(1)) + _frame(Ping(2)))
    await typed.stream.drain()
    assert await typed.receive_obj(timeout=WAIT) == Ping(1)
    assert await typed.receive_obj(timeout=timeout) == Ping(2)
    assert typed.messages_received == 2


async def test_receive_obj_without_waiting_on_a_partial_message_times_out_and_keeps_its_bytes(
        echo_base: str, client: WebTransportClient) -> None:
    typed = await _typed_echo_stream(client, echo_base)
    second = _frame(Ping(2))
    typed.stream.write(_frame(Ping(1)) + second[:6])  # the next frame only begins
    await typed.stream.drain()
    assert await typed.receive_obj(timeout=WAIT) == Ping(1)
    for _ in range(3):  # each poll fails at once; none of them swallows bytes or holds the read lock
        with pytest.raises(TimeoutError, match="no message within 0s"):
            await typed.receive_obj(timeout=0)
    typed.stream.write(second[6:])
    await typed.stream.drain()
    assert await typed.receive_obj(timeout=WAIT) == Ping(2)


async def test_receive_obj_without_waiting_on_a_finished_stream_says_it_is_closed(
        echo_base: str, client: WebTransportClient) -> None:
    typed = await _typed_echo_stream(client, echo_base)
    await typed.send_obj(Ping(1))
    await typed.close()  # the echo server finishes its side after echoing
    assert [obj async for obj in typed] == [Ping(1)]
    with pytest.raises(StreamClosedError):
        await typed.receive_obj(timeout=0)
