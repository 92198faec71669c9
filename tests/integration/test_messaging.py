"""Structured messaging end to end: typed objects over real streams and datagrams on 127.0.0.1."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ServerConfig
from pywebtransport.exceptions import DatagramTooLargeError, StreamClosedError, TimeoutError
from pywebtransport.messaging import (
    FramingError,
    JSONSerializer,
    MessageTooLargeError,
    MsgPackSerializer,
    SerializationError,
    Serializer,
    StructuredDatagramTransport,
    StructuredStream,
    UnknownMessageTypeError,
)
from pywebtransport.messaging.framing import encode_body, encode_frame
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportStream
from tests.serializers import serializer_params

from .conftest import echo_handler, running_server

pytestmark = pytest.mark.timeout(60)


class Mood(enum.Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


@dataclass
class Ping:
    seq: int


@dataclass
class Pong:
    seq: int
    note: str = ""


@dataclass
class ChatMessage:
    author: str
    text: str
    mood: Mood = Mood.HAPPY
    attachments: list[bytes] = field(default_factory=list)
    reply_to: int | None = None


@dataclass
class Unregistered:
    value: int


REGISTRY: dict[int, type[Any]] = {1: Ping, 2: Pong, 3: ChatMessage}


@pytest.fixture(params=serializer_params())
def serializer(request: pytest.FixtureRequest) -> Serializer:
    factory = request.param
    return factory()  # type: ignore[no-any-return]


async def typed_handler(session: WebTransportSession) -> None:
    """A server that speaks objects: Ping -> Pong (same seq), anything else is echoed,
    on every bidirectional stream and on datagrams. The serializer is JSON unless the
    path says ``?codec=msgpack``."""
    serializer: Serializer = MsgPackSerializer() if "codec=msgpack" in session.path else JSONSerializer()

    def answer(obj: Any) -> Any:
        return Pong(seq=obj.seq, note="from server") if isinstance(obj, Ping) else obj

    async def serve_stream(stream: WebTransportStream) -> None:
        async with StructuredStream(stream=stream, serializer=serializer, registry=REGISTRY) as typed:
            async for obj in typed:
                await typed.send_obj(answer(obj))

    async def serve_datagrams() -> None:
        typed = StructuredDatagramTransport(transport=session.datagrams, serializer=serializer, registry=REGISTRY)
        async for obj in typed:
            await typed.send_obj(answer(obj))

    tasks = [asyncio.ensure_future(serve_datagrams())]
    try:
        async for stream in session.incoming_streams():
            if isinstance(stream, WebTransportStream):
                tasks.append(asyncio.ensure_future(serve_stream(stream)))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def servers(server_config: ServerConfig) -> AsyncIterator[str]:
    async with running_server(server_config, {"/echo": echo_handler, "/typed": typed_handler}) as (_, base):
        yield base


def _path(serializer: Serializer) -> str:
    return "/typed?codec=msgpack" if isinstance(serializer, MsgPackSerializer) else "/typed"


async def _datagram_round_trip(typed: StructuredDatagramTransport, obj: Any, attempts: int = 5) -> Any:
    """Send and wait for the answer; datagrams may be lost, so retry a few times."""
    for _ in range(attempts):
        await typed.send_obj(obj)
        try:
            return await typed.receive_obj(timeout=1.0)
        except TimeoutError:
            continue
    raise AssertionError(f"no datagram answer to {obj!r} after {attempts} attempts")


# ---------------------------------------------------------------------------- streams


async def test_objects_of_several_types_round_trip_through_a_typed_server(
        servers: str, client: WebTransportClient, serializer: Serializer) -> None:
    session = await client.connect(servers + _path(serializer))
    typed = await session.create_structured_stream(serializer=serializer, registry=REGISTRY)
    assert isinstance(typed, StructuredStream)
    chat = ChatMessage(author="ann", text="héllo", mood=Mood.GRUMPY, attachments=[b"\x00\x01", b""], reply_to=4)
    await typed.send_obj(Ping(seq=1))
    assert await typed.receive_obj(timeout=5) == Pong(seq=1, note="from server")
    await typed.send_obj(chat)
    got = await typed.receive_obj(timeout=5)
    assert got == chat and isinstance(got, ChatMessage) and got.mood is Mood.GRUMPY
    await typed.send_obj(Pong(seq=9))
    assert await typed.receive_obj(timeout=5) == Pong(seq=9)
    assert typed.messages_sent == 3 and typed.messages_received == 3
    await typed.close()
    with pytest.raises(StreamClosedError):  # the server finishes its side after our FIN
        await typed.receive_obj(timeout=5)


async def test_async_iteration_ends_when_the_peer_finishes(servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)
    sent = [Ping(seq=i) for i in range(5)] + [ChatMessage(author="b", text="bye")]
    for obj in sent:
        await typed.send_obj(obj)
    await typed.close()
    received = [obj async for obj in typed]
    assert received == sent


async def test_concurrent_senders_never_interleave_frames(servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)
    text = "x" * 5000  # several QUIC packets per message

    async def sender(who: str) -> None:
        for i in range(10):
            await typed.send_obj(ChatMessage(author=who, text=text, reply_to=i))

    await asyncio.gather(*(sender(f"s{n}") for n in range(4)))
    await typed.close()
    received = [obj async for obj in typed]
    assert len(received) == 40
    for who in ("s0", "s1", "s2", "s3"):
        assert [m.reply_to for m in received if m.author == who] == list(range(10))


async def test_a_message_near_the_default_limit_round_trips(servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)
    big = ChatMessage(author="big", text="y" * 900_000)
    await typed.send_obj(big)
    assert await typed.receive_obj(timeout=10) == big


async def test_server_can_wrap_incoming_streams_with_its_own_max_size(
        server_config: ServerConfig, client: WebTransportClient) -> None:
    errors: asyncio.Queue[BaseException | Any] = asyncio.Queue()

    async def strict(session: WebTransportSession) -> None:
        stream = await session.accept_stream(timeout=5)
        assert isinstance(stream, WebTransportStream)
        typed = StructuredStream(stream=stream, serializer=JSONSerializer(), registry=REGISTRY, max_message_size=64)
        for _ in range(2):
            try:
                await errors.put(await typed.receive_obj(timeout=5))
            except Exception as exc:  # reported to the test
                await errors.put(exc)
        await session.wait_closed()

    async with running_server(server_config, {"/strict": strict}) as (_, base):
        session = await client.connect(base + "/strict")
        typed = await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)
        await typed.send_obj(ChatMessage(author="a", text="z" * 200))  # within our 1 MiB, over its 64
        await typed.send_obj(Ping(seq=2))
        first = await asyncio.wait_for(errors.get(), 5)
        assert isinstance(first, MessageTooLargeError) and first.limit == 64
        assert await asyncio.wait_for(errors.get(), 5) == Ping(seq=2)
        assert session.is_ready
        await session.close()


# ---------------------------------------------------------------------------- stream errors


async def test_sending_an_unregistered_type_or_oversize_message_sends_nothing(
        servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = StructuredStream(stream=await session.create_bidirectional_stream(), serializer=JSONSerializer(),
                             registry=REGISTRY, max_message_size=128)
    with pytest.raises(UnknownMessageTypeError, match="Unregistered"):
        await typed.send_obj(Unregistered(value=1))
    with pytest.raises(MessageTooLargeError) as info:
        await typed.send_obj(ChatMessage(author="a", text="q" * 500))
    assert info.value.limit == 128 and info.value.size > 128
    assert typed.stream.bytes_sent == 0
    await typed.send_obj(Ping(seq=3))  # the stream is intact: the echo is exactly one frame
    assert await typed.receive_obj(timeout=5) == Ping(seq=3)


async def test_unknown_type_id_malformed_and_oversize_frames_raise_and_the_stream_goes_on(
        servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = StructuredStream(stream=await session.create_bidirectional_stream(), serializer=JSONSerializer(),
                             registry=REGISTRY, max_message_size=256)
    raw = typed.stream
    # The echo server returns these bytes as they are, as if a peer had sent them.
    raw.write(encode_frame(77, b'{"seq":1}'))  # type id nobody registered
    raw.write(encode_frame(1, b'{"seq":'))  # truncated JSON
    raw.write(encode_frame(1, b'{"seq":"one"}'))  # JSON of the wrong shape
    raw.write(b"\x00\x00\x00\x00")  # a frame without a type id
    raw.write(encode_frame(3, b"a" * 1000, max_message_size=2000))  # over our 256
    raw.write(encode_frame(1, b'{"seq":42}'))
    await raw.drain()

    with pytest.raises(UnknownMessageTypeError) as unknown:
        await typed.receive_obj(timeout=5)
    assert unknown.value.type_id == 77
    with pytest.raises(SerializationError, match="malformed JSON"):
        await typed.receive_obj(timeout=5)
    with pytest.raises(SerializationError, match=r"\$\.seq: expected an int"):
        await typed.receive_obj(timeout=5)
    with pytest.raises(SerializationError, match="no type id"):
        await typed.receive_obj(timeout=5)
    with pytest.raises(MessageTooLargeError) as too_large:
        await typed.receive_obj(timeout=5)
    assert too_large.value.size == 1001 and too_large.value.limit == 256
    assert await typed.receive_obj(timeout=5) == Ping(seq=42)
    # Same stream, new stream and datagrams all still work: the session was not harmed.
    await typed.send_obj(Pong(seq=5))
    assert await typed.receive_obj(timeout=5) == Pong(seq=5)
    other = await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)
    await other.send_obj(Ping(seq=6))
    assert await other.receive_obj(timeout=5) == Ping(seq=6)
    assert session.is_ready and not session.is_closed


async def test_a_stream_ending_inside_a_frame_loses_framing_but_not_the_session(
        servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)
    await typed.send_obj(Ping(seq=1))
    typed.stream.write(encode_frame(1, b'{"seq":2}')[:-3])
    await typed.close()
    assert await typed.receive_obj(timeout=5) == Ping(seq=1)
    with pytest.raises(FramingError, match="ended inside a message"):
        await typed.receive_obj(timeout=5)
    with pytest.raises(FramingError, match="framing was lost"):
        await typed.receive_obj(timeout=5)
    again = await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)
    await again.send_obj(Ping(seq=3))
    assert await again.receive_obj(timeout=5) == Ping(seq=3)


async def test_a_cancelled_receive_loses_no_bytes(servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = await session.create_structured_stream(serializer=JSONSerializer(), registry=REGISTRY)
    with pytest.raises(TimeoutError):
        await typed.receive_obj(timeout=0.05)  # nothing sent yet
    frame = encode_frame(3, JSONSerializer().serialize(ChatMessage(author="p", text="partial")))
    typed.stream.write(frame[:7])  # only the start of a frame comes back
    await typed.stream.drain()
    with pytest.raises(TimeoutError):
        await typed.receive_obj(timeout=0.3)
    typed.stream.write(frame[7:])
    assert await typed.receive_obj(timeout=5) == ChatMessage(author="p", text="partial")


# ---------------------------------------------------------------------------- datagrams


async def test_objects_round_trip_over_datagrams(
        servers: str, client: WebTransportClient, serializer: Serializer) -> None:
    session = await client.connect(servers + _path(serializer))
    typed = await session.create_structured_datagram_transport(serializer=serializer, registry=REGISTRY)
    assert isinstance(typed, StructuredDatagramTransport)
    assert typed.transport is session.datagrams
    assert await _datagram_round_trip(typed, Ping(seq=7)) == Pong(seq=7, note="from server")
    chat = ChatMessage(author="d", text="tiny", attachments=[b"\xff"])
    assert await _datagram_round_trip(typed, chat) == chat


async def test_an_oversize_object_raises_the_transports_datagram_too_large_error(
        servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = await session.create_structured_datagram_transport(serializer=JSONSerializer(), registry=REGISTRY)
    limit = session.datagrams.max_datagram_size
    with pytest.raises(DatagramTooLargeError) as info:
        await typed.send_obj(ChatMessage(author="big", text="d" * (limit + 10)))
    assert info.value.limit == limit and info.value.size > limit
    assert typed.objects_sent == 0
    assert await _datagram_round_trip(typed, Ping(seq=1)) == Ping(seq=1)


async def test_undecodable_datagrams_raise_and_the_next_one_is_read(servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = await session.create_structured_datagram_transport(serializer=JSONSerializer(), registry=REGISTRY)
    with pytest.raises(UnknownMessageTypeError):
        await typed.send_obj(Unregistered(value=3))
    bad = [encode_body(99, b"{}"), encode_body(1, b"not json"), encode_body(1, b'{"seq":1.5}'), b"\x40"]
    expected: list[type[Exception]] = [UnknownMessageTypeError, SerializationError, SerializationError,
                                       SerializationError]
    for payload, error in zip(bad, expected, strict=True):
        for _ in range(5):  # retry: a datagram may be lost
            await session.datagrams.send(payload)
            try:
                await typed.receive_obj(timeout=1.0)
            except error:
                break
            except TimeoutError:
                continue
            raise AssertionError(f"{payload!r} decoded")
        else:
            raise AssertionError(f"no echo of {payload!r}")
    assert await _datagram_round_trip(typed, Ping(seq=2)) == Ping(seq=2)
    assert session.is_ready


async def test_datagram_iteration_ends_when_the_session_closes(servers: str, client: WebTransportClient) -> None:
    session = await client.connect(servers + "/echo")
    typed = await session.create_structured_datagram_transport(serializer=JSONSerializer(), registry=REGISTRY)
    seen: list[Any] = []
    arrived = asyncio.Event()

    async def collect() -> None:
        async for obj in typed:
            seen.append(obj)
            arrived.set()

    task = asyncio.ensure_future(collect())
    for seq in range(10):  # one reader only; datagrams may be lost, so send again if none came back
        await typed.send_obj(Ping(seq=seq))
        try:
            await asyncio.wait_for(arrived.wait(), 1.0)
            break
        except asyncio.TimeoutError:
            continue
    assert seen and isinstance(seen[0], Ping)
    await session.close()
    await asyncio.wait_for(task, 5)
    assert typed.is_closed
