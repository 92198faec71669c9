"""The session calls the application makes: open (client), accept or reject (server),
close and drain a session, send GOAWAY, and grant session credit by hand."""

from __future__ import annotations

from collections.abc import Sequence

from pywebtransport import constants as c
from pywebtransport._protocol.headers import build_connect_request, build_response, decode_header_list
from pywebtransport._protocol.requests import RequestStreams
from pywebtransport._protocol.session import Session
from pywebtransport._protocol.streams import StreamKind, StreamRecord
from pywebtransport._wire import capsules, frames
from pywebtransport.exceptions import LocalProtocolError, SessionError
from pywebtransport.types import CloseCause, SessionState

__all__ = ["SessionApi"]


class SessionApi(RequestStreams):
    """Opening, answering and ending sessions (the CONNECT side is ``RequestStreams``)."""

    def _advance_clock(self, now: float | None) -> None:
        """Bring the engine's clock to ``now`` before a call that records a time.

        The clock otherwise moves only with packets, timers and transmits, so a call made
        after a quiet second would stamp the session with the time of the last packet. The
        caller reads the clock (the engine never does); None keeps the engine's time, and
        the clock never goes back.
        """
        if now is not None and now > self._now:
            self._now = now

    def open_session(self, *, authority: str, path: str, origin: str | None = None,
                     headers: dict[str, str] | None = None, protocol: str = "webtransport",
                     protocols: Sequence[str] = (), now: float | None = None) -> int:
        """Client: send an extended CONNECT; returns the session id (its stream id).

        The request waits inside the engine until the server's SETTINGS arrived, as RFC 9220
        §3 requires; the outcome is a SessionEstablished or SessionRejected event.
        ``protocols`` is the subprotocol offer (WT-Available-Protocols, draft-15 §3.3).
        ``now`` is the current time, the session's ``created_at`` (see ``_advance_clock``).
        """
        self._advance_clock(now)
        self._check_usable()
        if not self.is_client:
            raise LocalProtocolError("only a client opens sessions")
        if self._h3.goaway_received is not None:
            raise SessionError("the server sent GOAWAY: it accepts no new sessions on this connection")
        session_id = self.quic.get_next_available_stream_id(is_unidirectional=False)
        request = build_connect_request(authority=authority, path=path, origin=origin, protocol=protocol,
                                        extra=headers, available_protocols=list(protocols) if protocols else None)
        session = Session(host=self, session_id=session_id, path=path, authority=authority,
                          headers=decode_header_list(request), created_at=self._now,
                          available_protocols=tuple(protocols))
        self._add_session(session)
        self._streams.add(StreamRecord(session_id, StreamKind.CONNECT, is_unidirectional=False, local=True,
                                       session_id=session_id,
                                       parser=frames.FrameParser(max_frame_size=self.config.max_header_block_size)))
        self.quic.send_stream_data(session_id, b"")  # reserve the id: the next session gets the next one
        if self._h3.peer is None:
            self._awaiting_settings.append(session_id)
        else:
            self._send_connect(session)
        return session_id

    def accept_session(self, session_id: int, *, headers: dict[str, str] | None = None,
                       protocol: str | None = None, now: float | None = None) -> None:
        """Server: answer a SessionRequested with 200 and make the session usable; ``protocol``
        (one of the client's ``available_protocols``) is answered as WT-Protocol (draft-15 §3.3).
        ``now`` is the current time, the session's ``ready_at``."""
        self._advance_clock(now)
        session = self._require_session(session_id)
        if self.is_client or session.state is not SessionState.CONNECTING:
            raise LocalProtocolError(f"session {session_id} is {session.state.value}; only a requested session "
                                     "can be accepted")
        if protocol is not None and protocol not in session.available_protocols:
            raise LocalProtocolError(f"subprotocol {protocol!r} was not offered by the client "
                                     f"(offered: {list(session.available_protocols)})")
        session.protocol = protocol
        self._h3.send_headers(session_id, build_response(200, draft02=session.draft02, extra=headers,
                                                         protocol=protocol))
        self._establish(session, {":status": "200"})

    def reject_session(self, session_id: int, status_code: int = 404,
                       headers: dict[str, str] | None = None, *, now: float | None = None) -> None:
        """Server: answer a SessionRequested with a non-2xx status and forget it; ``now`` is
        the current time, the session's ``closed_at``."""
        self._advance_clock(now)
        if not 300 <= status_code <= 599:
            raise ValueError(f"a rejection needs a 3xx-5xx status, got {status_code}")
        session = self._require_session(session_id)
        if self.is_client or session.state is not SessionState.CONNECTING:
            raise LocalProtocolError(f"session {session_id} is {session.state.value}; it cannot be rejected")
        self._h3.send_headers(session_id, build_response(status_code, draft02=False, extra=headers), end_stream=True)
        session.local_fin_sent = True
        session.reject(status_code, {}, f"rejected with {status_code}", notify=False)

    def close_session(self, session_id: int, error_code: int = 0, reason: str = "", *,
                      now: float | None = None) -> None:
        """Send WT_CLOSE_SESSION with code and reason, then FIN (draft §6); resets streams.
        ``now`` is the current time, the session's ``closed_at``."""
        self._advance_clock(now)
        session = self._sessions.get(session_id)
        if session is None or session.is_closed:
            return
        if session.state is SessionState.CONNECTING and not self.is_client:
            self.reject_session(session_id, 403)
            return
        if session_id in self._awaiting_settings:
            # A client request not sent yet (it waits for the peer's SETTINGS, RFC 9220 §3):
            # a capsule on its stream would come before HEADERS, a connection error that takes
            # every other session along (RFC 9114 §4.1). The request is cancelled (§4.1.1).
            self._awaiting_settings.remove(session_id)
            session.local_fin_sent = True
            self.abort_stream(session_id, c.H3_REQUEST_CANCELLED)
            session.end(error_code, reason, CloseCause.LOCAL_CLOSE)
            return
        session.close_locally(error_code, reason)

    def send_goaway(self) -> None:
        """Announce a graceful shutdown (RFC 9114 §5.2): no new request or session will be
        processed; established sessions carry on. A server names the first request stream id
        it will not process; a client sends 0 (it accepts no pushes)."""
        if self._closed:
            return
        # A client accepts no pushes (0); a server names the first request it will not process,
        # stream 0 when it saw none.
        nothing_seen = self.is_client or self._highest_peer_bidi < 0
        self._h3.send_goaway(0 if nothing_seen else self._highest_peer_bidi + 4)

    def drain_session(self, session_id: int) -> None:
        """Send WT_DRAIN_SESSION: ask the peer to wind the session down."""
        self._require_open(session_id).send_capsules([capsules.encode_drain_session()])

    def grant_data_credit(self, session_id: int, max_data: int) -> None:
        """Raise the session's WT_MAX_DATA by hand (ignored unless it grows or without flow control)."""
        session = self._require_open(session_id)
        if session.flow is not None:
            session.send_capsules(session.flow.grant_data(max_data))

    def grant_streams_credit(self, session_id: int, max_streams: int, is_unidirectional: bool) -> None:
        """Raise the session's WT_MAX_STREAMS of one kind by hand (ignored unless it grows)."""
        session = self._require_open(session_id)
        if session.flow is not None:
            session.send_capsules(session.flow.grant_streams(max_streams, is_unidirectional))
