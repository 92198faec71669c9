"""Send one message to many sessions without waiting for any of them.

The payload is encoded once and handed to every session without awaiting: a session that
cannot take it now (its datagram queue is full, its stream's send buffer is over the
bound) is skipped and counted as dropped, so one slow receiver never holds back the others,
as websockets' ``broadcast`` does for WebSocket connections.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pywebtransport.exceptions import SessionClosedError, WebTransportError
from pywebtransport.types import Data
from pywebtransport.utils import ensure_bytes

if TYPE_CHECKING:
    from pywebtransport.session.session import WebTransportSession
    from pywebtransport.stream import WebTransportSendStream

__all__ = ["DEFAULT_BROADCAST_MAX_BUFFER", "BroadcastResult", "StreamBroadcaster", "broadcast"]

logger = logging.getLogger(__name__)

#: Bytes a broadcast stream may hold unacknowledged before its session's messages are dropped.
DEFAULT_BROADCAST_MAX_BUFFER = 256 * 1024


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    """What one broadcast did: ``sent`` sessions took the message, ``dropped`` were too slow
    to take it now (it is lost for them), ``failed`` could not take it at all (closed, not
    ready, too large); ``failures`` pairs each failed session with its error."""

    sent: int = 0
    dropped: int = 0
    failed: int = 0
    failures: tuple[tuple[WebTransportSession, Exception], ...] = field(default=(), repr=False)

    @property
    def total(self) -> int:
        """How many sessions the broadcast was addressed to."""
        return self.sent + self.dropped + self.failed


class _Tally:
    """Counts for one broadcast, folded into a BroadcastResult at the end."""

    __slots__ = ("dropped", "failures", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.dropped = 0
        self.failures: list[tuple[WebTransportSession, Exception]] = []

    def fail(self, session: WebTransportSession, exc: Exception) -> None:
        self.failures.append((session, exc))
        logger.debug("broadcast to session %d failed: %s", session.session_id, exc)

    def result(self) -> BroadcastResult:
        return BroadcastResult(sent=self.sent, dropped=self.dropped, failed=len(self.failures),
                               failures=tuple(self.failures))


def broadcast(sessions: Iterable[WebTransportSession], data: Data) -> BroadcastResult:
    """Send ``data`` as one datagram to every session in ``sessions``, without awaiting.

    A session whose connection's datagram queue is full drops it (counted in ``dropped``);
    one that is closed, not ready or cannot fit the datagram counts in ``failed``. Datagrams
    are unreliable anyway: a receiver that does not read loses them on its own side.
    """
    payload = ensure_bytes(data)
    tally = _Tally()
    for session in sessions:
        try:
            sent = session.datagrams.send_nowait(payload)
        except (WebTransportError, ValueError) as exc:
            tally.fail(session, exc)
            continue
        if sent:
            tally.sent += 1
        else:
            tally.dropped += 1
    return tally.result()


class StreamBroadcaster:
    """Reliable broadcast: one unidirectional stream per session, opened on first use.

    Each message is written whole or not at all: when a session's stream holds more than
    ``max_buffer`` bytes not yet acknowledged (the receiver is slow or stopped reading), the
    message is dropped for that session and counted, and the others are not held back. Send
    self-delimiting messages (length-prefixed, newline-terminated) so a receiver can tell
    where each starts even when some were dropped. ``close()`` (or leaving ``async with``)
    ends every stream with FIN.
    """

    def __init__(self, *, max_buffer: int = DEFAULT_BROADCAST_MAX_BUFFER) -> None:
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 0:
            raise ValueError(f"max_buffer must be an int >= 0, got {max_buffer!r}")
        self._max_buffer = max_buffer
        self._streams: dict[WebTransportSession, WebTransportSendStream] = {}
        #: Opens under way per session (one token each), so that close() and discard() can
        #: tell send() not to keep a stream that arrives after them.
        self._opening: dict[WebTransportSession, set[object]] = {}
        self._closed = False

    @property
    def max_buffer(self) -> int:
        return self._max_buffer

    @property
    def stream_count(self) -> int:
        """Sessions that have a broadcast stream now."""
        return len(self._streams)

    def stream_for(self, session: WebTransportSession) -> WebTransportSendStream | None:
        """The broadcast stream of ``session``, if one was opened."""
        return self._streams.get(session)

    async def send(self, sessions: Iterable[WebTransportSession], data: Data) -> BroadcastResult:
        """Write ``data`` to every session's broadcast stream that has room for it.

        Opening a session's stream never waits: without stream credit right now the message
        is dropped for that session and the stream is opened on a later send. A closed
        session, or a stream the receiver stopped, counts in ``failed`` (and is forgotten);
        so do the sessions it had not reached yet when ``close()`` was called meanwhile.
        """
        if self._closed:
            raise RuntimeError("this StreamBroadcaster is closed")
        payload = ensure_bytes(data)
        tally = _Tally()
        for session in list(sessions):
            if self._closed:  # close() ran while an earlier session's stream was being opened
                tally.fail(session, RuntimeError("the StreamBroadcaster was closed during this send"))
                continue
            stream = self._streams.get(session)
            if stream is None:
                stream = await self._open(session, tally)
                if stream is None:
                    continue
            if stream.write_buffer_size > self._max_buffer:
                tally.dropped += 1
                continue
            try:
                stream.write(payload)
            except WebTransportError as exc:
                self._streams.pop(session, None)
                tally.fail(session, exc)
                continue
            tally.sent += 1
        self._forget_closed()
        return tally.result()

    async def _open(self, session: WebTransportSession, tally: _Tally) -> WebTransportSendStream | None:
        """Open and register ``session``'s broadcast stream, or count why not and return None.

        Opening may suspend: a stream that arrives after close() or discard(session) is
        finished at once (FIN, nothing written) instead of being registered, where nothing
        would ever finish it.
        """
        if session.is_closed:
            tally.fail(session, _closed(session))
            return None
        token = object()
        self._opening.setdefault(session, set()).add(token)
        try:
            stream = await session.create_unidirectional_stream(timeout=0)
        except TimeoutError:  # no stream credit from the peer right now
            tally.dropped += 1
            return None
        except WebTransportError as exc:
            tally.fail(session, exc)
            return None
        finally:
            abandoned = self._settle_open(session, token)
        if abandoned:
            await _finish(stream)
            what = "closed" if self._closed else f"told to discard session {session.session_id}"
            tally.fail(session, RuntimeError(f"the StreamBroadcaster was {what} while its stream was opened"))
            return None
        current = self._streams.get(session)
        if current is not None:  # a concurrent send opened one meanwhile: keep a single stream
            await _finish(stream)
            return current
        self._streams[session] = stream
        return stream

    def _settle_open(self, session: WebTransportSession, token: object) -> bool:
        """Forget one open under way; whether close() or discard(session) abandoned it meanwhile."""
        tokens = self._opening.get(session)
        if tokens is None or token not in tokens:
            return True
        tokens.discard(token)
        if not tokens:
            del self._opening[session]
        return False

    def _forget_closed(self) -> None:
        for session in [s for s in self._streams if s.is_closed]:
            del self._streams[session]

    async def discard(self, session: WebTransportSession) -> None:
        """Stop broadcasting to ``session``: its stream is finished (FIN) and forgotten; one
        that a send() is opening now is finished as soon as it opens."""
        self._opening.pop(session, None)
        stream = self._streams.pop(session, None)
        if stream is not None:
            await _finish(stream)

    async def close(self) -> None:
        """Finish every broadcast stream (FIN after what was written); idempotent. A stream
        that a send() under way is opening now is finished as soon as it opens, and that
        send() fails the sessions it has not reached yet."""
        self._closed = True
        self._opening.clear()
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            await _finish(stream)

    async def __aenter__(self) -> StreamBroadcaster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _finish(stream: WebTransportSendStream) -> None:
    """FIN after what was written; a stream whose session already closed is left as it is."""
    try:
        await stream.close()
    except WebTransportError as exc:
        logger.debug("broadcast stream %d could not be finished: %s", stream.stream_id, exc)


def _closed(session: WebTransportSession) -> WebTransportError:
    return SessionClosedError(f"session {session.session_id} is closed", error_code=session.close_code,
                              reason=session.close_reason or "")
