"""Where a stream's FIN travels on each backend, and that it always arrives.

A stream written whole and finished before the next transmit (a request, an echo) carries
its FIN on the frame of its last bytes; on qh3 its native sender then needs no FIN-aware
wrapper (``quic_qh3_fin``), which costs a Python call per sender attribute qh3 reads while
building packets. The FIN must still arrive when that frame is lost. A FIN written after the
data left is the wrapper's case; ``test_quic_backends`` covers it.
"""

from __future__ import annotations

import pytest

from pywebtransport._protocol import quic as seam

from .harness import Pair


@pytest.fixture(params=seam.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _sender_type(pair: Pair, side: str, stream_id: int) -> str:
    engine = pair.client if side == "client" else pair.server
    stream = engine.quic._streams.get(stream_id)  # noqa: SLF001 - which sender qh3 builds frames from
    assert stream is not None
    return type(stream.sender).__name__


def test_a_stream_written_whole_keeps_its_fin_on_the_data_frame_when_that_frame_is_lost(backend: str) -> None:
    pair = Pair(backend=backend)
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"ping", end_stream=True)
    if backend == "qh3":
        assert _sender_type(pair, "client", stream_id) == "QuicStreamSender"  # no wrapper: nothing left yet
    assert pair.client.datagrams_to_send(pair.now)  # the packet with the data and the FIN is lost
    pair.run(horizon=5.0)  # loss recovery sends them again
    assert pair.stream_payload("server", stream_id) == (b"ping", True)
    assert pair.client.stream_send_acknowledged(stream_id)


def test_a_fin_written_after_the_data_left_gets_the_fin_aware_sender_on_qh3() -> None:
    pair = Pair(backend="qh3")
    sid = pair.open_session()
    stream_id = pair.client.open_stream(sid, is_unidirectional=False)
    pair.client.send_stream_data(stream_id, b"ping")
    pair.run()
    pair.client.send_stream_data(stream_id, b"", end_stream=True)
    assert _sender_type(pair, "client", stream_id) == "_FinAwareSender"
    pair.run()
    assert pair.stream_payload("server", stream_id) == (b"ping", True)
    assert pair.client.stream_send_acknowledged(stream_id)


def test_an_empty_stream_finished_at_once_gets_the_fin_aware_sender_on_qh3() -> None:
    # No bytes at all (not even a preamble): the FIN goes in a frame of its own.
    pair = Pair(backend="qh3")
    pair.open_session()
    stream_id = pair.client.quic.get_next_available_stream_id(is_unidirectional=False)
    pair.client.quic.send_stream_data(stream_id, b"", end_stream=True)
    assert _sender_type(pair, "client", stream_id) == "_FinAwareSender"
