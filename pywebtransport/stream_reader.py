"""The receiving side of a WebTransport stream (internal): a buffer bounded by the QUIC
stream window and the asyncio-stream reading API (``read``, ``readexactly``, ``readuntil``,
``readline``, ``async for``). Credit goes back to the peer only as the application reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator

from pywebtransport._waiters import Waiters
from pywebtransport.exceptions import SessionClosedError, StreamClosedError, StreamResetError, TimeoutError
from pywebtransport.stream_base import StreamBase

__all__ = ["ReceiveSide"]

logger = logging.getLogger(__name__)

_DEFAULT_LIMIT = 1 << 16  # readuntil's default, as asyncio.StreamReader's
#: A partial read leaving more than this of a chunk moves the chunk into a bytearray.
_CUT_IN_PLACE = 4096
#: Chunks shorter than this, arriving while others wait unread, are copied onto the last
#: buffered one instead of kept as objects of their own: a peer sending 1-2 byte STREAM
#: frames would otherwise make each byte of the window cost ~20 in memory. Longer chunks
#: (a full packet's frame is ~1.2 KiB) cost little over their bytes and are never copied.
_GATHER_BELOW = 512


class ReceiveSide(StreamBase):
    """Buffered reading, bounded by the QUIC stream window."""

    #: After the peer's RESET_STREAM with WT_SESSION_GONE, the timer that ends reading if the
    #: session's close has not come within ``close_timeout`` (set then only).
    _gone_read_timer: asyncio.TimerHandle | None = None

    def _init_receive(self) -> None:
        self._recv_done = False
        self._session_gone = False
        #: Unread bytes in arrival order; a bytearray is one we own (readuntil's, a cut large
        #: chunk, or small chunks gathered together), so more bytes may be appended to it.
        self._chunks: deque[bytes | bytearray] = deque()
        self._buffered = 0
        #: Buffered bytes (from the front) whose credit already went back: readuntil returns it
        #: for what it holds while it waits, or a line longer than half the window would stall.
        self._credited = 0
        #: Bytes ever taken off the front of the buffer: a readuntil() that waited while
        #: another task read moves where it resumes its search back by as much.
        self._taken = 0
        self._eof = False
        self._error: BaseException | None = None
        self._readers = Waiters()

    # -- fed by the session
    def deliver_data(self, data: bytes, end_stream: bool) -> None:
        if data:
            if len(data) < _GATHER_BELOW and self._chunks:  # a short chunk while others wait unread
                self._gather(data)
            else:  # kept as it came: no copy (the reader keeps up, or a long chunk)
                self._chunks.append(data)
            self._buffered += len(data)
            self.bytes_received += len(data)
        if end_stream:
            self._eof = True
        self._wake()

    def _gather(self, data: bytes) -> None:
        """Append a short chunk to the last buffered one (copying it into a bytearray of ours
        once), so a window cut into tiny frames costs about its bytes, not an object each."""
        chunks = self._chunks
        tail = chunks[-1]
        if isinstance(tail, bytearray):  # ours (no event carries one): grows in place
            tail += data
        elif len(tail) < _GATHER_BELOW:
            gathered = bytearray(tail)
            gathered += data
            chunks[-1] = gathered
        else:
            chunks.append(data)

    def _on_reset(self, error_code: int | None) -> None:
        if self._recv_done:
            # Reading was over already: after our STOP_SENDING this is the peer's QUIC stack
            # answering it (RFC 9000 §3.5), which changes neither the error nor the state.
            return
        self._port.stream_failed(self._stream_id)
        self._reset_received = True
        self._error = StreamResetError(f"stream {self._stream_id} was reset by the peer", error_code=error_code)
        self._discard_buffer()
        self._finish_receiving()

    def _on_session_gone(self) -> None:
        """The peer reset the stream with WT_SESSION_GONE: its session is closing, and the
        close capsule may arrive after the reset; reading follows the session-end rule."""
        if not self._recv_done:  # it cut reading short
            self._port.stream_failed(self._stream_id)
        self._reset_received = True
        self._session_gone = True
        self._discard_buffer()
        closed = self._port.closed_error(f"stream {self._stream_id}: the session closed")
        if closed is not None:
            self._error = closed
            self._finish_receiving()
        elif self._gone_read_timer is None and not self._recv_done:
            # Readers wait for the session's end, which this stream still receives, but not for
            # good: a peer that never closes the session must not hold a reader (or a
            # serve_streams() handler slot) forever.
            self._gone_read_timer = asyncio.get_running_loop().call_later(self._port.config.close_timeout,
                                                                          self._read_gone_without_close)

    def _read_gone_without_close(self) -> None:
        """The peer's WT_SESSION_GONE reset was not followed by its session's close within
        ``close_timeout``: reading ends as after any other reset (StreamResetError, no
        application code); nothing waits on a close that may never come."""
        self._gone_read_timer = None
        if self._recv_done or self._port.is_closed:
            return
        logger.info("stream %d: RESET_STREAM with WT_SESSION_GONE and no session close within %.1fs; "
                    "treating it as reset", self._stream_id, self._port.config.close_timeout)
        self._session_gone = False  # a plain reset now: a later session close does not re-word it
        self._error = StreamResetError(f"stream {self._stream_id} was reset by the peer (WT_SESSION_GONE) "
                                       f"and its session did not close", error_code=None)
        self._finish_receiving()

    def _on_session_closed(self) -> None:
        if self._gone_read_timer is not None:  # the close came: reading follows it
            self._gone_read_timer.cancel()
            self._gone_read_timer = None
        if (not self._recv_done and self._error is None) or self._session_gone:
            self._error = (self._port.closed_error(f"stream {self._stream_id}: the session closed")
                           or StreamClosedError(f"stream {self._stream_id}: the session closed"))
        self._wake()
        super()._on_session_closed()

    def _finish_receiving(self) -> None:
        self._recv_done = True
        self._wake()
        self._check_closed()

    def _discard_buffer(self) -> None:
        if self._buffered > self._credited:
            self._port.stream_consume(self._stream_id, self._buffered - self._credited)
        self._chunks.clear()
        self._buffered = 0
        self._credited = 0

    def _credit_held(self) -> None:
        """Give the peer credit for every buffered byte now (readuntil, before it waits for
        more): the window then reaches one window past what is held, so a separator up to
        ``limit`` bytes away can always arrive; what is held stays bounded by ``limit``."""
        if self._buffered > self._credited:
            self._port.stream_consume(self._stream_id, self._buffered - self._credited)
            self._credited = self._buffered

    def _wake(self) -> None:
        self._readers.wake()

    async def _wait_readable(self, have: int = 0) -> None:
        """Wait until more bytes arrived than the ``have`` buffered now (any data, by default),
        EOF or an error; honours the configured read timeout. Arrivals are what count: bytes
        another task takes meanwhile neither end the wait nor prolong it."""
        end = self._taken + have  # the buffer's end as the wait starts, counted from the stream's start
        while self._taken + self._buffered <= end and not self._eof and self._error is None:
            if self._recv_done:
                raise StreamClosedError(f"stream {self._stream_id} is closed for reading")
            timeout = self._port.config.read_timeout
            try:
                await self._readers.wait(timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"stream {self._stream_id}: no data within {timeout}s") from None

    def _take(self, n: int) -> bytes:
        """Up to n buffered bytes (all with n < 0), returning their credit to the peer."""
        if n < 0 or n >= self._buffered:
            data = b"".join(self._chunks)
            self._chunks.clear()
        else:
            parts = []
            need = n
            while need:
                chunk = self._chunks[0]
                if len(chunk) <= need:
                    parts.append(self._chunks.popleft())
                    need -= len(chunk)
                elif isinstance(chunk, bytearray):  # cut in place off the front: O(need)
                    parts.append(bytes(chunk[:need]))
                    del chunk[:need]
                    need = 0
                elif len(chunk) - need > _CUT_IN_PLACE:
                    # A large chunk (QUIC hands over everything contiguous at once when a gap
                    # fills: up to a window) read in small pieces: slicing would copy the rest
                    # every time, quadratic in the chunk. One copy into a bytearray instead.
                    head = bytearray(chunk)
                    parts.append(bytes(head[:need]))
                    del head[:need]
                    self._chunks[0] = head
                    need = 0
                else:
                    parts.append(chunk[:need])
                    self._chunks[0] = chunk[need:]
                    need = 0
            data = b"".join(parts)
        self._buffered -= len(data)
        self._taken += len(data)
        owed = len(data)
        if self._credited:  # readuntil gave some of it back already
            already = min(self._credited, owed)
            self._credited -= already
            owed -= already
        if owed:
            self._port.stream_consume(self._stream_id, owed)
        if self._eof and not self._chunks and not self._recv_done:
            self._finish_receiving()
        return data

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- public reading API
    @property
    def at_eof(self) -> bool:
        """True once the peer's FIN arrived and every byte was read."""
        return self._eof and not self._chunks

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF). ``b""`` means EOF.

        Cancel-safe, as every read here: bytes are taken from the buffer only when the call
        returns them, so a read cancelled or timed out while it waits loses nothing and the
        next read gets them. Until EOF, what arrives is held (its credit given back, so the
        peer can go on sending) and returned whole at the end."""
        if n == 0:
            return b""
        if n < 0:
            while not self._eof:
                self._raise_error()
                self._credit_held()
                await self._wait_readable(self._buffered)
            return self._take(-1) if self._chunks else self._at_eof_empty()
        await self._wait_readable_or_eof()
        return self._take(n)

    def _at_eof_empty(self) -> bytes:
        """EOF with nothing buffered: receiving is over."""
        if not self._recv_done:
            self._finish_receiving()
        return b""

    async def _wait_readable_or_eof(self) -> None:
        """Until something is buffered, or EOF (receiving is then finished); the error that
        ended the stream, if any, is raised. Bytes another task took while this one waited
        are no reason to return: an empty read means EOF."""
        while not self._chunks:
            if self._eof:
                if not self._recv_done:
                    self._finish_receiving()
                return
            self._raise_error()
            await self._wait_readable()

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; asyncio.IncompleteReadError if EOF comes first.

        Takes nothing until all ``n`` bytes are there (as asyncio.StreamReader does), so a
        cancelled or timed-out call loses nothing, and tasks reading at once each get whole
        reads, never pieces of each other's. While it waits the bytes it holds get their
        credit back, so ``n`` may exceed the stream window."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        while self._buffered < n:
            if self._eof:
                raise asyncio.IncompleteReadError(self._take(-1) if self._chunks else self._at_eof_empty(), n)
            self._raise_error()
            self._credit_held()
            await self._wait_readable(self._buffered)
        return self._take(n)

    async def readuntil(self, separator: bytes = b"\n", *, limit: int = _DEFAULT_LIMIT) -> bytes:
        """Read through ``separator`` (included). asyncio.LimitOverrunError when more than
        ``limit`` bytes come before it (the separator not counted, as asyncio's), the bytes
        staying buffered; asyncio.IncompleteReadError at EOF without it.

        Linear in the bytes that arrive, however they are cut: the buffered bytes are kept in
        one growing buffer, each search starts where the last one ended, and a partial line
        waits for more bytes (not merely for any)."""
        if not separator:
            raise ValueError("separator should be at least one-byte string")
        searched = 0  # a separator cannot start before searched - len(separator) + 1
        while True:
            chunks = self._chunks
            if len(chunks) > 1:  # into one growable buffer: every byte is copied once
                head = chunks.popleft()
                merged = head if isinstance(head, bytearray) else bytearray(head)
                while chunks:
                    merged += chunks.popleft()
                chunks.append(merged)
            buffer = chunks[0] if chunks else b""
            index = buffer.find(separator, max(0, searched - len(separator) + 1))
            if index >= 0:
                if index > limit:  # the line before the separator is longer than the limit (as asyncio)
                    raise asyncio.LimitOverrunError("separator found but chunk exceeds the limit", index)
                return self._take(index + len(separator))
            searched = len(buffer)
            if searched - len(separator) + 1 > limit:  # no separator can end a line within the limit now
                raise asyncio.LimitOverrunError("separator not found and chunk exceeds the limit", searched)
            if self._eof:
                rest = self._take(-1)
                raise asyncio.IncompleteReadError(rest, None)
            self._raise_error()
            self._credit_held()
            taken = self._taken
            await self._wait_readable(searched)
            # Another task may have read from the front meanwhile (concurrent readers are
            # allowed): the bytes searched so far moved forward by as much, or a separator
            # now before ``searched`` would be skipped and two lines returned as one.
            searched = max(0, searched - (self._taken - taken))

    async def readline(self) -> bytes:
        """A line including ``\\n``; at EOF the remaining bytes (possibly empty).

        As ``asyncio.StreamReader.readline``: a line longer than the limit (64 KiB) raises
        ValueError and is dropped (its bytes up to and with its ``\\n`` when that arrived,
        else everything buffered; the rest of it then reads as a line of its own), so the next
        call reads on instead of failing on the same bytes for good."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            buffered = self._chunks[0] if self._chunks else b""
            ends_line = buffered[exc.consumed:exc.consumed + 1] == b"\n"
            self._take(exc.consumed + 1 if ends_line else -1)  # dropped: its credit goes back
            raise ValueError(exc.args[0]) from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        # The session-end rule (see WebTransportSession): a clean close ends iteration quietly.
        while True:
            try:
                chunk = await self.read(_DEFAULT_LIMIT)
            except SessionClosedError:
                if self._port.ended_cleanly():
                    return
                raise
            if not chunk:
                return
            yield chunk

    def stop_receiving(self, error_code: int = 0) -> None:
        """Send STOP_SENDING with ``error_code``; buffered data is discarded. Nothing is sent
        once the peer ended its sending (FIN or reset): there is nothing left to stop."""
        if self._recv_done:
            return
        if not (self._eof or self._reset_received):
            self._port.stream_stop(self._stream_id, error_code)
        self._error = StreamClosedError(f"stream {self._stream_id}: receiving was stopped")
        self._discard_buffer()
        self._finish_receiving()
