"""StructuredStream: typed objects over one bidirectional WebTransport stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

from pywebtransport.exceptions import StreamClosedError, TimeoutError
from pywebtransport.messaging._registry import TypeRegistry, serialize
from pywebtransport.messaging.exceptions import FramingError, MessagingError
from pywebtransport.messaging.framing import (
    DEFAULT_MAX_MESSAGE_SIZE,
    FrameDecoder,
    check_max_message_size,
    encode_frame,
)
from pywebtransport.messaging.serializers import Serializer

if TYPE_CHECKING:
    from pywebtransport.stream import WebTransportStream
    from pywebtransport.types import StreamId

__all__ = ["StructuredStream"]

_READ_CHUNK: Final = 1 << 16
_EOF: Final = object()


class StructuredStream:
    """Sends and receives registered objects as length-prefixed, type-tagged frames.

    ``registry`` maps type ids to classes and must be the same on both peers; the
    serializer turns each object into the frame's payload (see
    :mod:`pywebtransport.messaging.framing` for the layout). Messages larger than
    ``max_message_size`` bytes are refused on sending and skipped on receiving
    (:class:`MessageTooLargeError`).

    Errors about one message (:class:`UnknownMessageTypeError`, :class:`SerializationError`,
    :class:`MessageTooLargeError`) consume exactly that message: the next ``receive_obj()``
    reads the following one, and the session is never affected. Only a
    :class:`FramingError` (the peer ended the stream inside a frame) leaves the read side
    unusable. Reads are buffered here, so cancelling ``receive_obj()`` loses nothing.
    """

    def __init__(self, *, stream: WebTransportStream, serializer: Serializer, registry: dict[int, type[Any]],
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._stream = stream
        self._serializer = serializer
        self._registry = TypeRegistry(registry)
        self._max_message_size = check_max_message_size(max_message_size)
        self._decoder = FrameDecoder(max_message_size=max_message_size)
        self._read_lock = asyncio.Lock()
        self._broken: FramingError | None = None
        #: The next message (or its error), decoded but not yet handed to a caller.
        self._pending: _Pending | None = None
        self.messages_sent = 0
        self.messages_received = 0

    # ------------------------------------------------------------------ properties

    @property
    def stream(self) -> WebTransportStream:
        """The underlying bidirectional stream."""
        return self._stream

    @property
    def stream_id(self) -> StreamId:
        return self._stream.stream_id

    @property
    def serializer(self) -> Serializer:
        return self._serializer

    @property
    def registry(self) -> dict[int, type[Any]]:
        """A copy of the type registry."""
        return self._registry.as_dict()

    @property
    def max_message_size(self) -> int:
        return self._max_message_size

    @property
    def is_closed(self) -> bool:
        """True when the underlying stream is closed in both directions."""
        return self._stream.is_closed

    # ------------------------------------------------------------------ sending

    async def send_obj(self, obj: Any) -> None:
        """Send one object, then wait for the stream's backpressure (``drain``).

        UnknownMessageTypeError if its class is not registered, SerializationError if the
        serializer fails, MessageTooLargeError over ``max_message_size``: nothing is sent
        in those cases. A frame is written in one piece, so concurrent senders never
        interleave.
        """
        type_id = self._registry.type_id_for(obj)
        frame = encode_frame(type_id, serialize(self._serializer, obj), max_message_size=self._max_message_size)
        self._stream.write(frame)
        self.messages_sent += 1
        await self._stream.drain()

    # ------------------------------------------------------------------ receiving

    async def receive_obj(self, *, timeout: float | None = None) -> Any:
        """The next object from the peer.

        StreamClosedError once the peer has finished the stream and every message was
        read; TimeoutError after ``timeout`` seconds (nothing is lost: call again). With
        ``timeout <= 0`` it waits for nothing: a message already received whole is
        returned, else TimeoutError at once (as ``datagrams.receive(timeout=0)``).
        """
        try:
            if timeout is None:
                obj = await self._receive()
            elif timeout > 0:
                obj = await asyncio.wait_for(self._receive(), timeout)
            else:
                obj = await self._receive_without_waiting()
        except asyncio.TimeoutError:
            raise TimeoutError(f"stream {self.stream_id}: no message within {timeout}s") from None
        if obj is _EOF:
            raise StreamClosedError(f"stream {self.stream_id}: the peer finished sending; no more messages")
        return obj

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        """Objects until the peer finishes the stream; errors propagate to the loop."""
        while True:
            obj = await self._receive()
            if obj is _EOF:
                return
            yield obj

    async def _receive_without_waiting(self) -> Any:
        """What ``_receive()`` gets done before it would first wait (for the peer's bytes, or
        for another reader); asyncio.TimeoutError if that is not a whole message.

        ``asyncio.wait_for(coro, 0)`` cannot do this: it cancels the coroutine before its
        first step, so even a message received whole was never returned. The helper task
        leaves what it decodes in the pending slot and this task takes it from there, so a
        message decoded as this task is being cancelled stays for the next receive.
        """
        decoding = asyncio.ensure_future(self._decode_next())
        try:
            # Ready callbacks run in the order they were scheduled: the task's first step runs
            # before this task resumes, and it decodes a frame that is buffered whole without
            # suspending (a free lock is taken and buffered bytes are read at once).
            await asyncio.sleep(0)
        finally:
            if not decoding.done():
                decoding.cancel()  # it waits: no whole message yet (the decoder keeps its bytes)
            decoding.add_done_callback(_retrieve)  # no "exception never retrieved" if we are cancelled
        if not decoding.done():
            await asyncio.wait((decoding,))  # let it unwind, which frees the read lock for the next call
        if decoding.cancelled():
            raise asyncio.TimeoutError
        decoding.result()  # the errors that are not about one message (framing lost, stream reset)
        if self._pending is None:  # another reader took it first: it was the next message for them
            raise asyncio.TimeoutError
        return self._take_pending()

    async def _receive(self) -> Any:
        """The next object (_EOF at the end); an error about one message is raised in its place."""
        await self._decode_next()
        return self._take_pending()

    async def _decode_next(self) -> None:
        """Fill the pending slot with the next message, or its error (unless it holds one
        already): a message decoded here is never lost to a cancellation of the caller."""
        async with self._read_lock:
            if self._pending is not None:
                return
            if self._broken is not None:
                raise FramingError(f"stream {self.stream_id}: message framing was lost earlier ({self._broken})")
            decoder = self._decoder
            while True:
                try:
                    frame = decoder.next_frame()  # errors here have consumed their frame
                    if frame is not None:
                        self.messages_received += 1
                        self._pending = _Pending(self._registry.decode(frame, self._serializer))
                        return
                except MessagingError as exc:  # about this message only: raised in its turn
                    self._pending = _Pending(None, exc)
                    return
                # Ask for no more than the current frame needs: one frame buffered at most,
                # so the peer's credit grows only as fast as messages are taken.
                chunk = await self._stream.read(min(decoder.bytes_needed(), _READ_CHUNK))
                if not chunk:
                    if decoder.in_frame:
                        self._broken = FramingError(f"stream {self.stream_id} ended inside a message "
                                                    f"({decoder.buffered} bytes of an incomplete frame)")
                        raise self._broken
                    self._pending = _Pending(_EOF)
                    return
                decoder.feed(chunk)

    def _take_pending(self) -> Any:
        """Empty the pending slot: its object, or its error raised."""
        pending = self._pending
        assert pending is not None
        self._pending = None
        if pending.error is not None:
            raise pending.error
        return pending.obj

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        """Finish the sending side (FIN): the peer's iteration ends after the last message.
        Receiving goes on until the peer finishes too."""
        await self._stream.close()

    async def __aenter__(self) -> StructuredStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (f"<StructuredStream stream={self.stream_id} types={len(self._registry.as_dict())} "
                f"sent={self.messages_sent} received={self.messages_received}>")


class _Pending:
    """A decoded message waiting for its receiver, or the error that stands in its place."""

    __slots__ = ("error", "obj")

    def __init__(self, obj: Any, error: MessagingError | None = None) -> None:
        self.obj = obj
        self.error = error


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a finished task's exception as seen (its caller may have gone)."""
    if not task.cancelled():
        task.exception()
