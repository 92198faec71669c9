"""A stream's reading, once we stopped it, against a recording port: the peer's RESET_STREAM
that answers our STOP_SENDING (RFC 9000 §3.5) changes neither what reads raise nor the
stream's state, and is not reported as a stream error; a reset of a stream still being read
is."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pywebtransport._protocol import events as ev
from pywebtransport._wire import error_codes
from pywebtransport.exceptions import StreamClosedError, StreamResetError
from pywebtransport.stream import WebTransportReceiveStream, WebTransportStream
from pywebtransport.types import StreamState

STREAM_ID = 3


class RecordingPort:
    """The SessionPort members a stream uses here, recording STOP_SENDING and stream errors."""

    session_id = 0
    is_closed = False

    def __init__(self) -> None:
        self.config = SimpleNamespace(read_timeout=None)
        self.stopped: list[int] = []
        self.failed: list[int] = []

    def stream_consume(self, stream_id: int, amount: int) -> None:
        pass

    def stream_stop(self, stream_id: int, error_code: int) -> None:
        self.stopped.append(error_code)

    def stream_failed(self, stream_id: int) -> None:
        self.failed.append(stream_id)

    def stream_finished(self, stream_id: int) -> None:
        pass

    def closed_error(self, message: str) -> None:
        return None


def reset(stream: WebTransportStream | WebTransportReceiveStream, code: int) -> None:
    stream.handle_event(ev.StreamReset(0, STREAM_ID, code, error_codes.app_code_to_http(code)))


@pytest.mark.parametrize("kind", [WebTransportReceiveStream, WebTransportStream])
async def test_the_reset_answering_our_stop_sending_changes_nothing(kind: type[Any]) -> None:
    port = RecordingPort()
    session: Any = port
    stream = kind(session=session, stream_id=STREAM_ID)
    stream.handle_event(ev.StreamDataReceived(0, STREAM_ID, b"unread", False))
    stream.stop_receiving(77)
    assert port.stopped == [77]
    state = stream.state
    reset(stream, 77)
    assert stream.state is state and stream.state is not StreamState.RESET_RECEIVED
    with pytest.raises(StreamClosedError, match="receiving was stopped") as info:
        await stream.read()
    assert not isinstance(info.value, StreamResetError)
    assert port.failed == []


@pytest.mark.parametrize("kind", [WebTransportReceiveStream, WebTransportStream])
async def test_a_reset_of_a_stream_being_read_fails_reads_and_is_reported(kind: type[Any]) -> None:
    port = RecordingPort()
    session: Any = port
    stream = kind(session=session, stream_id=STREAM_ID)
    reset(stream, 77)
    with pytest.raises(StreamResetError) as info:
        await stream.read()
    assert info.value.error_code == 77
    assert port.failed == [STREAM_ID]


async def test_stop_receiving_after_the_peers_fin_sends_no_stop_sending() -> None:
    port = RecordingPort()
    session: Any = port
    stream = WebTransportReceiveStream(session=session, stream_id=STREAM_ID)
    stream.handle_event(ev.StreamDataReceived(0, STREAM_ID, b"", True))
    stream.stop_receiving(5)
    assert port.stopped == []  # the peer's sending is over: nothing to stop
    assert stream.state is StreamState.CLOSED
