"""qh3's stream sender once the FIN is written: it counts as finished only when the FIN is.

qh3 1.x's native sender calls itself finished once the data up to the FIN offset is
acknowledged, FIN sent or not; qh3 then discards the stream and the FIN never goes out.
``_FinAwareSender`` (installed by ``Qh3Connection.send_stream_data``) waits for the
acknowledgement of a frame that carried the FIN, or of the reset that replaced it.
"""

from __future__ import annotations

from typing import Any

from qh3.quic.packet_builder import QuicDeliveryState

from pywebtransport._protocol.quic import sender_pending

__all__ = ["fin_needs_own_frame"]

#: The FIN bit of a STREAM frame's type (RFC 9000 §19.8).
_STREAM_FIN_BIT = 0x01


def fin_needs_own_frame(sender: Any) -> bool:
    """Whether the FIN just written to qh3's native ``sender`` needs ``_FinAwareSender``.

    Not when none of the stream's bytes has left yet and some are waiting (a request or a
    response written whole, then finished, before the next transmit: the common case).
    Every frame that reaches the FIN offset is then built after the FIN was written, so qh3
    sets the FIN bit on it (and on its retransmissions), and no copy without the FIN exists
    whose acknowledgement could finish the sender early. Otherwise the FIN may leave alone
    or after a FIN-less copy of the last bytes, which is the case the wrapper is for.
    """
    if type(sender) is _FinAwareSender:
        return False
    return bool(sender.highest_offset) or not sender_pending(sender)


class _FinStop(int):
    """The end offset of a STREAM frame that carried the FIN, as its delivery handler sees it."""

    __slots__ = ()


class _FinAwareSender:
    """qh3's native stream sender, once the application has written the FIN.

    qh3 1.x's ``QuicStreamSender.on_data_delivery`` has no ``fin`` argument (aioquic's has): it
    calls the sender finished as soon as the data up to the FIN offset is acknowledged, even
    when the FIN was written after that data left and has not been sent yet. qh3 then
    discards the stream and the FIN is never sent: the peer waits for the end of the stream
    forever (a browser page echoing 100 streams hung on one of them). This wrapper marks the
    frames that carry the FIN (their end offset is a ``_FinStop``, which only the delivery
    handler reads) and reports the sender finished once one of them, or the reset that
    replaced them, is acknowledged. Streams get it only when their FIN is written, so the
    common sending path stays on the native object.
    """

    __slots__ = ("_fin_acked", "_native", "_reset_acked")

    def __init__(self, native: Any) -> None:
        self._native = native
        self._fin_acked = False
        self._reset_acked = False

    @property
    def is_finished(self) -> bool:
        return bool(self._native.is_finished) and (self._fin_acked or self._reset_acked)

    @property
    def buffer_is_empty(self) -> bool:
        return bool(self._native.buffer_is_empty)

    @property
    def highest_offset(self) -> int:
        return int(self._native.highest_offset)

    @property
    def next_offset(self) -> int:
        return int(self._native.next_offset)

    @property
    def reset_pending(self) -> bool:
        return bool(self._native.reset_pending)

    @property
    def _pending(self) -> list[tuple[int, int]]:  # read by quic.sender_unsent
        return sender_pending(self._native)

    def prepare_stream_frame(self, flight_space: int, max_offset: int) -> Any:
        result = self._native.prepare_stream_frame(flight_space, max_offset)
        if result is not None and result[1] & _STREAM_FIN_BIT:
            data, frame_type, offset, stop, previous_highest, overhead = result
            return data, frame_type, offset, _FinStop(stop), previous_highest, overhead
        return result

    def on_data_delivery(self, delivery: int, start: int, stop: int) -> None:
        self._native.on_data_delivery(delivery, start, int(stop))
        if type(stop) is _FinStop and delivery == QuicDeliveryState.ACKED:
            self._fin_acked = True

    def on_reset_delivery(self, delivery: int) -> None:
        self._native.on_reset_delivery(delivery)
        if delivery == QuicDeliveryState.ACKED:
            self._reset_acked = True

    def get_frame(self, max_size: int, max_offset: int | None = None) -> Any:
        return self._native.get_frame(max_size, max_offset)

    def get_reset_frame(self) -> Any:
        return self._native.get_reset_frame()

    def reset(self, error_code: int) -> None:
        self._native.reset(error_code)

    def write(self, data: bytes, end_stream: bool = False) -> None:
        self._native.write(data, end_stream)

