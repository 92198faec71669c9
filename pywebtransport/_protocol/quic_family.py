"""What aioquic and qh3 (an aioquic fork) implement alike: ``AioquicFamilyMethods``.

Both libraries keep the same private state under the same names (streams, stream-id
counters, the peer's limits, pending datagrams, loss recovery, connection ids, the close
state); the methods here read it through ``self`` once for both backends, which mix this


class in ahead of their own ``QuicConnection``. Every such attribute is listed in
``quic_required.FAMILY_REQUIRED_ATTRIBUTES``, part of each backend's ``REQUIRED_ATTRIBUTES``.
Held here: reporting the end of the connection as soon as it is known and keeping the close
datagrams (RFC 9000 §10.2), giving back the handshake's TLS buffers, stream facts, datagram
loss accounting, the TLS exporter, RTT and connection ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pywebtransport._protocol.quic import (
    PACKET_OVERHEAD,
    ConnectionTerminated,
    DatagramFrameLost,
    DatagramFrameReceived,
    HandshakeCompleted,
    QuicEvent,
    RttSample,
    StreamDataReceived,
    StreamOffsets,
    loss_rtt,
    receiver_final_size,
)
from pywebtransport._protocol.quic_credit import ConnectionCredit
from pywebtransport._protocol.quic_qlog import end_qlog_trace
from pywebtransport._protocol.quic_tls import tls_exporter

__all__ = ["POST_HANDSHAKE_TLS_BUFFER", "SPENT_EPOCH_TLS_BUFFER", "AioquicFamilyMethods"]


#: Capacity of the 1-RTT TLS output buffer after the handshake. Neither library writes to it
#: then: a server's TLS answers any post-handshake message with an alert, a client's takes a
#: NewSessionTicket without answering, and the server's own ticket (~90 bytes, written only
#: when a ticket handler is set, which we never set) goes out with the handshake's last flight.
#: 256 bytes still hold one such ticket. A write past the capacity would raise the library's
#: BufferWriteError out of ``receive_datagram`` (tests/unit/protocol/test_tls_buffers.py).
POST_HANDSHAKE_TLS_BUFFER = 256
#: Capacity of the Initial and Handshake TLS output buffers after the handshake: none. TLS
#: writes no message at these epochs once the handshake is complete, so every connection of a
#: library shares one empty buffer for them (a write would raise, never mix connections' data).
SPENT_EPOCH_TLS_BUFFER = 0

#: aioquic's and qh3's ConnectionTerminated phrase when the idle timer (not the peer) ended it.
_IDLE_PHRASE = "Idle timeout"
#: The connection states (both libraries' QuicConnectionState names) in which QUIC sends
#: nothing but CONNECTION_CLOSE.
_END_STATE_NAMES = frozenset({"CLOSING", "DRAINING", "TERMINATED"})


#: One copy of each frame-epoch set (immutable; a handful per library), shared by connections.
_SHARED_EPOCH_SETS: dict[frozenset[Any], frozenset[Any]] = {}
#: The library's Buffer type -> the empty TLS output buffer its connections share for spent epochs.
_SPENT_EPOCH_BUFFERS: dict[type[Any], Any] = {}


class AioquicFamilyMethods:
    """What aioquic and qh3 (an aioquic fork) implement alike over the same private state:
    written once, mixed into both backend classes ahead of their QuicConnection."""

    # The state these methods read, named as both libraries name it.
    _streams: Any
    _is_client: bool
    _consumed: dict[int, int]
    _handshake_complete: bool
    _exporter_secret: tuple[str, bytes] | None
    _dropped: int
    _events: Any
    _crypto_buffers: Any
    _network_paths: list[Any]
    _spaces: dict[Any, Any]
    #: The backend library's own QuicDeliveryState.ACKED (each library has its own enum).
    delivery_acked: Any
    #: The library's event -> the neutral event (None for those the engine does not use).
    translate_event: Callable[[Any], QuicEvent | None]
    #: The library's varint size function (bytes needed to encode an integer).
    varint_size: Callable[[int], int]
    _quic_logger: Any
    _local_next_stream_id_bidi: int
    _local_next_stream_id_uni: int
    _remote_max_streams_bidi: int
    _remote_max_streams_uni: int
    _remote_max_datagram_frame_size: int | None
    _datagrams_pending: Any
    _max_datagram_size: int
    _remote_max_idle_timeout: Any  # aioquic: float | None; qh3: float
    _loss: Any
    _host_cids: Any
    _local_max_data: Any
    _configuration: Any
    _state: Any
    _close_event: Any
    _close_pending: bool
    _close_at: float | None
    host_cid: bytes
    #: Whether the ConnectionTerminated event was handed out (it is, once, as early as known).
    _termination_reported = False
    #: The datagrams that carried our CONNECTION_CLOSE, kept to answer late packets with.
    _close_datagrams: tuple[bytes, ...] = ()
    #: The library's tls.Epoch.ONE_RTT: the key of the 1-RTT packet number space in ``_spaces``.
    one_rtt_epoch: Any
    #: Whether a delayed ACK leaves with data queued meanwhile (see below); False behaves
    #: as the library alone does, as most peers do (tests use it to play such a peer).
    ack_with_data = True
    #: Whether something ack-eliciting was queued since the last ``datagrams_to_send``.
    _ack_rides = False
    #: A forced ACK left alone (the data queued could not: flow control, congestion window):
    #: no ACK is forced again until a pass sends ack-eliciting packets by itself.
    _ack_alone = False

    # -- acknowledgements. Both libraries send an ACK only once its delay (1 ms) has passed,
    # never earlier in a packet that leaves anyway: a response written within that delay goes
    # without the ACK of the request it answers, and 1 ms later the timer sends an ACK-only
    # packet, which the peer receives and processes too (about 0.4 per request/response
    # exchange on loopback). Whenever data is queued, the pending ACK is made due now, so it
    # rides in the data's packet (RFC 9000 §13.2.1 bounds the delay, not how early an ACK may
    # go). A pass with nothing queued (after a receive) still leaves the ACK delayed, and so
    # does one where the data cannot leave: held by pacing, the ACK keeps its own delay (a
    # timer due now would wake the loop for nothing until the clock moves); blocked by flow
    # control or the congestion window, one ACK goes alone and no more are forced until data
    # flows again (an ACK-only packet per request answered would be worse than the delay).

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue ``data`` on ``stream_id``. A stream the library holds and we may send on (not
        the peer's unidirectional one) takes the bytes straight into its sender: the library's
        own path looks the stream up again through four to six Python calls (the send checks,
        the discarded-stream check), for nothing when the stream is there, since a stream is
        discarded only once it has left ``_streams``. A new stream, or one the library no
        longer holds, goes the library's way, which creates it or raises as it would. Once
        the FIN is written, ``_fin_written`` sees the stream."""
        self._ack_rides = True
        stream = self._streams.get(stream_id)
        if stream is not None and (not stream_id & 2 or bool(stream_id & 1) != self._is_client):
            stream.sender.write(data, end_stream=end_stream)
        else:
            super().send_stream_data(stream_id, data, end_stream)  # type: ignore[misc]
            if not end_stream:
                return
            stream = self._streams.get(stream_id)
        if end_stream and stream is not None:
            self._fin_written(stream)

    def _fin_written(self, stream: Any) -> None:
        """The FIN of ``stream`` (the library's stream object) was just written: a backend
        whose sender needs to know overrides this (qh3)."""

    def send_datagram_frame(self, data: bytes) -> None:
        self._ack_rides = True
        super().send_datagram_frame(data)  # type: ignore[misc]

    @property
    def ack_pending(self) -> bool:
        """Whether a 1-RTT ACK waits for its delay (the library's ``ack_at``) to be sent."""
        space = self._spaces.get(self.one_rtt_epoch)
        return space is not None and space.ack_at is not None

    def _acked_pass(self, now: float) -> list[tuple[bytes, Any]]:
        """The library's ``datagrams_to_send`` with a delayed 1-RTT ACK made due ``now``."""
        self._ack_rides = False
        space: Any = self._spaces.get(self.one_rtt_epoch)
        delayed = None if space is None else space.ack_at
        # Never before the packet it acknowledges arrived: the ACK's delay would be negative.
        if delayed is None or delayed <= now or now < space.largest_received_time:
            return self._pass(now)
        loss = self._loss
        in_flight = loss.bytes_in_flight
        space.ack_at = now
        datagrams = self._pass(now)
        if space.ack_at is not None:  # nothing was built (pacing): the ACK keeps its delay
            space.ack_at = delayed
            self._ack_rides = True  # and rides with the paced data later
        elif loss.bytes_in_flight <= in_flight:  # it left without ack-eliciting company
            self._ack_alone = True
        return datagrams

    def _pass(self, now: float) -> list[tuple[bytes, Any]]:
        """The library's own ``datagrams_to_send``; clears ``_ack_alone`` once data flows."""
        if not self._ack_alone:
            return super().datagrams_to_send(now=now)  # type: ignore[misc, no-any-return]
        in_flight = self._loss.bytes_in_flight
        datagrams: list[tuple[bytes, Any]] = super().datagrams_to_send(now=now)  # type: ignore[misc]
        if self._loss.bytes_in_flight > in_flight:
            self._ack_alone = False
        return datagrams

    # -- closing (RFC 9000 §10.2). Both libraries report the end only when the closing or
    # draining period is over, three PTOs later; until then the application would go on
    # writing to a connection that is gone. The end is reported as soon as it is known
    # instead, and the period is left to whoever routes packets (``closing_deadline``).

    @property
    def is_closing(self) -> bool:
        """Whether QUIC will send nothing more but CONNECTION_CLOSE: a close is pending, or
        the connection is closing, draining or over (the library's _close_event/_state)."""
        return self._close_event is not None or self._state.name in _END_STATE_NAMES

    @property
    def close_pending(self) -> bool:
        """Whether our CONNECTION_CLOSE waits for the next send (the library's _close_pending)."""
        return self._close_pending

    @property
    def closing_deadline(self) -> float | None:
        """When the closing or draining period ends (three PTOs after the close was sent or
        received, as the library computes it in _close_at); None outside those periods."""
        if self._state.name in ("CLOSING", "DRAINING"):
            return self._close_at
        return None

    @property
    def close_datagrams(self) -> tuple[bytes, ...]:
        """The datagrams that carried our CONNECTION_CLOSE (empty before it was sent, and after
        a close by the peer: a draining endpoint sends nothing, RFC 9000 §10.2.2)."""
        return self._close_datagrams

    # -- events and sending, alike on both libraries
    def next_neutral_event(self) -> QuicEvent | None:
        """The next backend-neutral event (the library's PING acks and ALPN events are skipped);
        each backend's ``next_event`` returns it."""
        queue = self._events  # the library's own event deque (QuicConnection._events)
        translate = self.translate_event
        while queue:
            event = translate(queue.popleft())
            kind = type(event)
            if kind is StreamDataReceived or kind is DatagramFrameReceived:  # the per-packet ones, as they are
                return event
            event = self._terminal_event(event)
            if event is not None:
                return event
        return self._early_termination()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        """The library's datagrams; those carrying our CONNECTION_CLOSE are kept (``close_datagrams``),
        and a delayed ACK leaves with data queued since the last call (``_acked_pass``)."""
        was_pending = self._close_pending
        if self._ack_rides and self.ack_with_data and not self._ack_alone:
            datagrams = self._acked_pass(now)
        else:
            datagrams = self._pass(now)
        self._note_close_sent(was_pending, datagrams)
        return datagrams

    def _write_datagram_frame(self, builder: Any, data: bytes, frame_type: Any) -> bool:
        # Library hook: every DATAGRAM frame is written here (RFC 9221 §4, type 0x31 with
        # length). Ours carries a delivery handler, so a packet declared lost counts its datagrams.
        length = len(data)
        buf = builder.start_frame(frame_type, capacity=1 + self.varint_size(length) + length,
                                  handler=self._on_datagram_delivery, handler_args=(data,))
        buf.push_uint_var(length)
        buf.push_bytes(data)
        if self._quic_logger is not None:  # the library's qlog trace, as its own writer does
            builder.quic_logger_frames.append(self._quic_logger.encode_datagram_frame(length=length))
        return True

    def _note_close_sent(self, was_pending: bool, datagrams: list[tuple[bytes, Any]]) -> None:
        """Keep the datagrams of the send that wrote the CONNECTION_CLOSE (RFC 9000 §10.2.1
        allows sending the same packet again to answer late ones)."""
        if was_pending and datagrams:
            self._close_datagrams = tuple(data for data, _ in datagrams)

    def _terminal_event(self, translated: QuicEvent | None) -> QuicEvent | None:
        """``translated`` unless it is the library's late ConnectionTerminated, already reported."""
        kind = type(translated)
        if kind is ConnectionTerminated:
            if self._termination_reported:
                return None
            self._termination_reported = True
        elif kind is HandshakeCompleted:
            self._shrink_tls_buffers()
        return translated

    def _shrink_tls_buffers(self) -> None:
        """Give back the TLS output buffers the handshake needed (three of 16 KiB each, held for
        the connection's life by both libraries): once it is complete the Initial and Handshake
        epochs take no more messages and 1-RTT none either (see POST_HANDSHAKE_TLS_BUFFER)."""
        buffers = self._crypto_buffers
        for epoch, buffer in list(buffers.items()):
            if buffer.tell():  # not flushed to its crypto stream (never at this point): keep it
                continue
            kind = type(buffer)
            if epoch.name == "ONE_RTT":
                buffers[epoch] = kind(capacity=POST_HANDSHAKE_TLS_BUFFER)
            else:
                spent = _SPENT_EPOCH_BUFFERS.get(kind)
                if spent is None:
                    spent = _SPENT_EPOCH_BUFFERS[kind] = kind(capacity=SPENT_EPOCH_TLS_BUFFER)
                buffers[epoch] = spent

    def _early_termination(self) -> ConnectionTerminated | None:
        """The ConnectionTerminated to report now that the event queue is empty, when a close
        is known and was not reported yet (the library's _close_event says why)."""
        close = self._close_event
        if close is None or self._termination_reported:
            return None
        self._termination_reported = True
        return ConnectionTerminated(close.error_code, close.reason_phrase, close.reason_phrase == _IDLE_PHRASE,
                                    by_peer=self._state.name == "DRAINING", application=close.frame_type is None)

    def is_stream_discarded(self, stream_id: int) -> bool:
        """Implemented by each backend: the libraries differ here."""
        raise NotImplementedError

    @property
    def handshake_complete(self) -> bool:
        """Whether the TLS handshake finished (the library's _handshake_complete)."""
        return bool(self._handshake_complete)

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """The TLS exporter's output (RFC 8446 §7.5); RuntimeError before the handshake."""
        if self._exporter_secret is None or not self._handshake_complete:
            raise RuntimeError("keying material can be exported once the TLS handshake is complete")
        return tls_exporter(*self._exporter_secret, label, context, length)

    def forget_stream(self, stream_id: int) -> None:
        """Drop the consumption record of a finished stream."""
        self._consumed.pop(stream_id, None)

    @property
    def consumed_records(self) -> int:
        """How many streams have a consumption record (for leak tests)."""
        return len(self._consumed)

    def send_acknowledged(self, stream_id: int) -> bool:
        """Whether everything sent on ``stream_id``, FIN or reset included, was acknowledged
        (True once aioquic discarded the stream, False for a stream still being written)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return self.is_stream_discarded(stream_id)
        return bool(stream.sender.is_finished)

    def _read_driven_connection_credit(self) -> None:
        """Put ``ConnectionCredit`` in place of the library's MAX_DATA limit (before the
        handshake: the transport parameters read its value)."""
        self._local_max_data = ConnectionCredit(self._local_max_data, self._configuration.max_data)

    def set_held_probe(self, probe: Callable[[], int]) -> None:
        """``probe()`` tells how many bytes that arrived on streams are still held unread:
        MAX_DATA grows only by what was released (see ``quic_credit.py``)."""
        self._local_max_data.held = probe

    def has_stream(self, stream_id: int) -> bool:
        """Whether aioquic still holds state for ``stream_id``."""
        return stream_id in self._streams

    def stream_window(self, stream_id: int) -> int:
        """Receive credit the peer has left on ``stream_id`` (0 for unknown streams)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return max(0, int(stream.max_stream_data_local - stream.receiver.highest_offset))

    def stream_offsets(self, stream_id: int) -> StreamOffsets | None:
        """Where ``stream_id`` stands (see ``StreamOffsets``); None once QUIC dropped its state.

        Read from the library's stream state: the receiver's ``starting_offset()`` (what it
        handed out in order) and its final size once it is finished (``receiver_final_size``,
        set by a RESET_STREAM or a FIN), and the sender's ``highest_offset``, which both
        libraries put in their RESET_STREAM as the final size.
        """
        stream = self._streams.get(stream_id)
        if stream is None:
            return None
        receiver, sender = stream.receiver, stream.sender
        # Our own unidirectional stream has a receiver that is finished from the start.
        ours_only = bool(stream_id & 2) and (not stream_id & 1) == self._configuration.is_client
        final_size = receiver_final_size(receiver) if receiver.is_finished and not ours_only else None
        return StreamOffsets(delivered=int(receiver.starting_offset()), final_size=final_size,
                             written=self._sender_written(sender), sent=int(sender.highest_offset))

    def _sender_written(self, sender: Any) -> int:
        """Implemented by each backend: bytes written to a stream's sender (the libraries differ)."""
        raise NotImplementedError

    def has_accepted_packet(self) -> bool:
        """Whether QUIC has accepted any packet from the peer: one that decrypted and was
        recorded in a packet number space (the library's _spaces, largest_received_packet >= 0;
        in REQUIRED_ATTRIBUTES). Junk shaped like an Initial never gets that far."""
        return any(space.largest_received_packet >= 0 for space in self._spaces.values())

    def peer_address(self) -> Any | None:
        """The peer's address on the current network path (None before there is one). QUIC
        moves it only for an authenticated, non-probing packet from a new address (RFC 9000
        §9.3): a datagram that fails to decrypt, from wherever, never changes it. Read from
        the library's _network_paths (the current path first; in REQUIRED_ATTRIBUTES)."""
        paths = self._network_paths
        return paths[0].addr if paths else None

    def next_stream_id(self, is_unidirectional: bool) -> int:
        """The id our next stream of this kind gets (without opening it)."""
        return self._local_next_stream_id_uni if is_unidirectional else self._local_next_stream_id_bidi

    def can_open_stream(self, is_unidirectional: bool) -> bool:
        """Whether the peer's MAX_STREAMS lets us open one more stream of this kind now."""
        limit = self._remote_max_streams_uni if is_unidirectional else self._remote_max_streams_bidi
        return self.next_stream_id(is_unidirectional) // 4 < limit

    @property
    def remote_max_datagram_frame_size(self) -> int:
        """The peer's max_datagram_frame_size transport parameter (0 before/without it)."""
        return self._remote_max_datagram_frame_size or 0

    @property
    def datagram_path_limit(self) -> int:
        """Room for one DATAGRAM frame in a packet of the configured size."""
        return int(self._max_datagram_size) - PACKET_OVERHEAD

    @property
    def peer_max_idle_timeout(self) -> float | None:
        """The peer's max_idle_timeout transport parameter in seconds (None before/without it)."""
        timeout = self._remote_max_idle_timeout  # aioquic: None before it; qh3: 0.0
        return float(timeout) if timeout else None

    @property
    def pending_datagrams(self) -> int:
        """Datagrams queued in aioquic and not yet put in a packet."""
        return len(self._datagrams_pending)

    @property
    def datagrams_dropped(self) -> int:
        """DATAGRAM frames sent in packets loss recovery declared lost (RFC 9221 §5.2: never
        resent); aioquic itself drops no queued datagram before sending it."""
        return int(self._dropped)

    def _share_frame_epochs(self) -> None:
        """Point this connection's frame table at shared epoch sets.

        Both libraries build, per connection, a table of ~35 frame handlers each with a fresh
        frozenset of the packet epochs it is allowed in (about 7 KiB per connection); the sets
        are immutable and the same for every connection, so one copy of each serves all."""
        handlers = getattr(self, "_QuicConnection__frame_handlers", None)  # the library's own table
        if not isinstance(handlers, dict):
            return
        shared = _SHARED_EPOCH_SETS
        for frame_type, entry in handlers.items():
            if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], frozenset):
                handlers[frame_type] = (entry[0], shared.setdefault(entry[1], entry[1]))

    def _on_datagram_delivery(self, delivery: Any, data: bytes) -> None:
        # Once per datagram: an identity check against the backend's own ACKED member.
        if delivery is not self.delivery_acked:
            self._dropped += 1
            self._events.append(DatagramFrameLost(data))  # next_event passes it up

    def host_connection_ids(self) -> list[bytes]:
        """Every connection id of ours the peer may use now (for the endpoint's routing)."""
        return [self.host_cid, *(entry.cid for entry in self._host_cids)]

    def rtt(self) -> RttSample:
        """RTT and congestion state from aioquic's loss recovery."""
        loss = self._loss
        smoothed, minimum, latest = loss_rtt(loss)
        return RttSample(smoothed=smoothed, minimum=minimum, latest=latest, congestion_window=loss.congestion_window,
                         bytes_in_flight=loss.bytes_in_flight)

    def end_qlog(self) -> None:
        """Write this connection's qlog file now (a no-op without ``qlog_dir``)."""
        end_qlog_trace(self)
