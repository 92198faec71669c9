"""What this project needs from aioquic's QuicConnection beyond its public API.

aioquic grants stream credit when data *arrives* (doubling the window each time), so a
slow reader cannot hold a fast writer back and memory grows without bound. Here stream
credit is granted as the application *consumes* data instead, which makes QUIC stream flow
control real backpressure. Datagram and send-buffer sizes are read in one place too, so
that the rest of the engine never touches aioquic's private state.
"""

from __future__ import annotations

from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicFrameType

__all__ = ["PACKET_OVERHEAD", "BackpressuredQuicConnection"]

#: Bytes a 1-RTT packet spends outside its frames in the worst case: first byte,
#: a 20-byte destination connection id, a 4-byte packet number and the 16-byte AEAD tag.
PACKET_OVERHEAD = 1 + 20 + 4 + 16

_MAX_STREAM_DATA_FRAME_CAPACITY = 1 + 8 + 8


class BackpressuredQuicConnection(QuicConnection):
    """A QuicConnection whose stream receive windows follow the application's reads."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._consumed: dict[int, int] = {}

    def consume_stream_data(self, stream_id: int, amount: int) -> None:
        """The application has read ``amount`` more bytes of ``stream_id``."""
        if amount > 0:
            self._consumed[stream_id] = self._consumed.get(stream_id, 0) + amount

    def forget_stream(self, stream_id: int) -> None:
        """Drop the consumption record of a finished stream."""
        self._consumed.pop(stream_id, None)

    def send_buffered(self, stream_id: int) -> int:
        """Bytes written to ``stream_id`` that the peer has not acknowledged yet."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        sender = stream.sender
        return sender._buffer_stop - sender._buffer_start

    def stream_window(self, stream_id: int) -> int:
        """Receive credit the peer has left on ``stream_id`` (0 for unknown streams)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return max(0, stream.max_stream_data_local - stream.receiver.highest_offset)

    def can_open_stream(self, is_unidirectional: bool) -> bool:
        """Whether the peer's MAX_STREAMS lets us open one more stream of this kind now."""
        if is_unidirectional:
            limit = self._remote_max_streams_uni
            next_id = self._local_next_stream_id_uni
        else:
            limit = self._remote_max_streams_bidi
            next_id = self._local_next_stream_id_bidi
        return next_id // 4 < limit

    @property
    def remote_max_datagram_frame_size(self) -> int:
        """The peer's max_datagram_frame_size transport parameter (0 before/without it)."""
        return self._remote_max_datagram_frame_size or 0

    @property
    def datagram_path_limit(self) -> int:
        """Room for one DATAGRAM frame in a packet of the configured size."""
        return self._max_datagram_size - PACKET_OVERHEAD

    @property
    def pending_datagrams(self) -> int:
        """Datagrams queued in aioquic and not yet put in a packet."""
        return len(self._datagrams_pending)

    # aioquic hook: called for every stream when a packet is built.
    def _write_stream_limits(self, builder, space, stream) -> None:  # type: ignore[no-untyped-def]
        if not stream.max_stream_data_local:
            return
        window = self._configuration.max_stream_data
        wanted = self._consumed.get(stream.stream_id, 0) + window
        # Grant more once half of the window has been consumed (RFC 9000 §4.2 advice).
        if wanted - stream.max_stream_data_local >= window // 2:
            stream.max_stream_data_local = wanted
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            buf = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=_MAX_STREAM_DATA_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            buf.push_uint_var(stream.stream_id)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local
