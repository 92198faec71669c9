"""Ending a stream from our side: ``abort()`` and ``stop_receiving()`` either do what they say
or change nothing, whatever state the stream is in, and ``async with stream:`` left by an
exception always lets that exception through.

Each test waits on the library's own signals (reads, ``wait_closed()``, the stream's state),
never on a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import StreamClosedError, StreamResetError
from pywebtransport.session import WebTransportSession
from pywebtransport.stream import StreamType, WebTransportReceiveStream, WebTransportStream
from pywebtransport.types import StreamState

from .conftest import eventually, running_server

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0  #: bounds a hang only


@asynccontextmanager
async def streams_pair(server_config: ServerConfig, client_config: ClientConfig
                       ) -> AsyncIterator[tuple[WebTransportSession, WebTransportSession, asyncio.Queue[StreamType]]]:
    """A client session, the server's side of it, and a queue of the streams the server gets."""
    incoming: asyncio.Queue[StreamType] = asyncio.Queue()
    served: asyncio.Future[WebTransportSession] = asyncio.get_running_loop().create_future()

    async def handler(session: WebTransportSession) -> None:
        served.set_result(session)
        async for stream in session.incoming_streams():
            await incoming.put(stream)

    async with (running_server(server_config, {"/s": handler}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/s")
        yield session, await asyncio.wait_for(served, WAIT), incoming


async def next_stream(incoming: asyncio.Queue[StreamType]) -> StreamType:
    return await asyncio.wait_for(incoming.get(), WAIT)


async def bidi_the_peer_has_read(session: WebTransportSession, incoming: asyncio.Queue[StreamType]
                                 ) -> tuple[WebTransportStream, WebTransportStream]:
    """A bidirectional stream whose first bytes the peer has read: (ours, the peer's)."""
    stream = await session.create_bidirectional_stream()
    stream.write(b"hi")
    await stream.drain()
    peer = await next_stream(incoming)
    assert isinstance(peer, WebTransportStream)
    assert await asyncio.wait_for(peer.readexactly(2), WAIT) == b"hi"
    return stream, peer


# ---------------------------------------------------------------------- an out-of-range code


@pytest.mark.parametrize("bad_code", [2**32, -1])
@pytest.mark.parametrize("unidirectional", [False, True], ids=["bidi", "uni"])
async def test_abort_with_an_out_of_range_code_changes_nothing_and_a_later_abort_resets(
        server_config: ServerConfig, client_config: ClientConfig, bad_code: int, unidirectional: bool) -> None:
    async with streams_pair(server_config, client_config) as (session, _, incoming):
        stream = await (session.create_unidirectional_stream() if unidirectional
                        else session.create_bidirectional_stream())
        stream.write(b"hi")
        await stream.drain()
        peer = await next_stream(incoming)
        assert isinstance(peer, (WebTransportStream, WebTransportReceiveStream))
        assert await asyncio.wait_for(peer.readexactly(2), WAIT) == b"hi"
        before = stream.state
        with pytest.raises(ValueError, match="code must be in"):
            stream.abort(bad_code)
        assert stream.state is before  # not RESET_SENT: no RESET_STREAM went out
        stream.write(b"!")  # still writable
        assert await asyncio.wait_for(peer.readexactly(1), WAIT) == b"!"
        stream.abort(7)
        assert stream.state in (StreamState.RESET_SENT, StreamState.CLOSED)
        with pytest.raises(StreamResetError) as info:
            await asyncio.wait_for(peer.read(), WAIT)
        assert info.value.error_code == 7


# ---------------------------------------------------------------------- sending already over


async def test_abort_on_a_bidirectional_stream_finished_both_ways_is_a_no_op(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, _, incoming):
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"q", end_stream=True)
        peer = await next_stream(incoming)
        assert isinstance(peer, WebTransportStream)
        assert await asyncio.wait_for(peer.read(), WAIT) == b"q"
        await peer.write_all(b"r", end_stream=True)
        assert await asyncio.wait_for(stream.read(), WAIT) == b"r"
        await asyncio.wait_for(stream.wait_closed(), WAIT)
        stream.abort(1)
        stream.stop_receiving(1)
        assert stream.state is StreamState.CLOSED


async def test_abort_on_a_unidirectional_stream_right_after_its_fin_is_a_no_op(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, _, incoming):
        stream = await session.create_unidirectional_stream()
        await stream.write_all(b"x", end_stream=True)
        stream.abort(1)
        assert stream.state is StreamState.CLOSED
        peer = await next_stream(incoming)
        assert isinstance(peer, WebTransportReceiveStream)
        assert await asyncio.wait_for(peer.read(), WAIT) == b"x"  # the data and FIN, not a reset


async def test_abort_after_our_fin_while_bytes_wait_for_session_credit_resets_the_stream(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    # After our FIN the stream still holds what the session's credit did not let out yet:
    # abort() abandons it with a reset, and the peer never gets the rest.
    config = server_config.replace(initial_max_data=1000, flow_control_auto_extend=False)
    async with streams_pair(config, client_config) as (session, _, incoming):
        stream = await session.create_unidirectional_stream()
        stream.write(b"w" * 5000)  # 1000 bytes of session credit: most of it waits
        await stream.close()  # our FIN, queued behind the bytes that wait
        # The peer has the stream (its header came with the first bytes) before the reset: a
        # reset that overtakes the header leaves the peer nothing to tie it to (no
        # RESET_STREAM_AT in either QUIC library, docs/protocol.md).
        peer = await next_stream(incoming)
        assert isinstance(peer, WebTransportReceiveStream)
        stream.abort(5)
        assert stream.state in (StreamState.RESET_SENT, StreamState.CLOSED)
        with pytest.raises(StreamResetError) as reset:
            await asyncio.wait_for(peer.read(), WAIT)  # waits past the 1000 bytes for the end
        assert reset.value.error_code == 5


async def test_abort_after_our_fin_with_the_peers_fin_unread_is_a_no_op(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, _, incoming):
        stream = await session.create_bidirectional_stream()
        await stream.write_all(b"q", end_stream=True)
        peer = await next_stream(incoming)
        assert isinstance(peer, WebTransportStream)
        await peer.close()
        await eventually(lambda: stream.at_eof)  # the peer's FIN arrived; nobody read the EOF
        assert stream.state is StreamState.HALF_CLOSED_LOCAL
        stream.abort(1)
        stream.stop_receiving(1)  # the peer's FIN came: nothing left to stop
        assert stream.state is StreamState.CLOSED


# ---------------------------------------------------------------------- async with, left by an exception


async def test_leaving_async_with_by_an_exception_after_both_fins_raises_that_exception(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, _, incoming):
        with pytest.raises(KeyError, match="the application's own error"):
            async with await session.create_bidirectional_stream() as stream:
                await stream.write_all(b"q", end_stream=True)
                peer = await next_stream(incoming)
                assert isinstance(peer, WebTransportStream)
                assert await asyncio.wait_for(peer.read(), WAIT) == b"q"
                await peer.write_all(b"r", end_stream=True)
                assert await asyncio.wait_for(stream.read(), WAIT) == b"r"
                await asyncio.wait_for(stream.wait_closed(), WAIT)
                raise KeyError("the application's own error")


async def test_leaving_async_with_by_an_exception_with_the_peers_fin_unread_raises_that_exception(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, _, incoming):
        with pytest.raises(KeyError, match="the application's own error"):
            async with await session.create_bidirectional_stream() as stream:
                await stream.write_all(b"q", end_stream=True)
                peer = await next_stream(incoming)
                assert isinstance(peer, WebTransportStream)
                await peer.close()
                await eventually(lambda: stream.at_eof)  # the peer's FIN arrived; nobody read the EOF
                raise KeyError("the application's own error")


async def test_leaving_async_with_a_unidirectional_stream_by_an_exception_after_fin_raises_that_exception(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, _, _incoming):
        with pytest.raises(KeyError, match="the application's own error"):
            async with await session.create_unidirectional_stream() as stream:
                await stream.write_all(b"x", end_stream=True)
                raise KeyError("the application's own error")


async def test_leaving_async_with_an_open_stream_by_an_exception_resets_it_with_code_0(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, _, incoming):
        with pytest.raises(KeyError):
            async with await session.create_bidirectional_stream() as stream:
                stream.write(b"hi")
                await stream.drain()
                peer = await next_stream(incoming)
                assert isinstance(peer, WebTransportStream)
                assert await asyncio.wait_for(peer.readexactly(2), WAIT) == b"hi"
                raise KeyError("out")
        with pytest.raises(StreamResetError) as info:
            await asyncio.wait_for(peer.read(), WAIT)
        assert info.value.error_code == 0


# ---------------------------------------------------------------------- the peer's answer to our STOP_SENDING


async def test_the_peers_reset_answering_our_stop_sending_changes_neither_the_read_error_nor_the_error_count(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, served, incoming):
        stream, peer = await bidi_the_peer_has_read(session, incoming)
        peer.stop_receiving(77)
        with pytest.raises(StreamClosedError, match="receiving was stopped"):
            await peer.read()
        # The client's QUIC stack answers STOP_SENDING with RESET_STREAM(77) (RFC 9000 §3.5)
        # as it takes it in, before the stream hears of it; anything the client sends after
        # that reaches the server after the reset.
        await eventually(lambda: stream.state is StreamState.HALF_CLOSED_LOCAL)
        marker = await session.create_unidirectional_stream()
        await marker.write_all(b"after", end_stream=True)
        after = await next_stream(incoming)
        assert isinstance(after, WebTransportReceiveStream)
        assert await asyncio.wait_for(after.read(), WAIT) == b"after"

        with pytest.raises(StreamClosedError, match="receiving was stopped") as info:
            await peer.read()
        assert not isinstance(info.value, StreamResetError)
        assert peer.state is StreamState.HALF_CLOSED_REMOTE  # not RESET_RECEIVED
        assert served.stats.stream_errors == 0


async def test_a_peer_reset_of_a_stream_being_read_is_still_a_stream_error(
        server_config: ServerConfig, client_config: ClientConfig) -> None:
    async with streams_pair(server_config, client_config) as (session, served, incoming):
        stream, peer = await bidi_the_peer_has_read(session, incoming)
        stream.abort(5)
        with pytest.raises(StreamResetError) as info:
            await asyncio.wait_for(peer.read(), WAIT)
        assert info.value.error_code == 5
        assert peer.state is StreamState.RESET_RECEIVED
        assert served.stats.stream_errors == 1
