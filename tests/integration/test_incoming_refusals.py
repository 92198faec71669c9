"""A session whose incoming stream queue is full turns further streams away quietly: each is
counted, one warning names the limit, no traceback is logged, and the streams refused are
left in no table (issue: one ERROR with a traceback per stream, found by fuzzing)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.session import WebTransportSession
from tests.integration.conftest import eventually, running_server

QUEUE = 4
EXTRA = 12


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidi"])
async def test_streams_past_a_full_incoming_queue_are_refused_without_a_traceback(
        bidirectional: bool, server_config: ServerConfig, client_config: ClientConfig,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pywebtransport")
    arrived: asyncio.Future[WebTransportSession] = asyncio.get_running_loop().create_future()

    async def never_accepts(session: WebTransportSession) -> None:
        arrived.set_result(session)
        await session.wait_closed()

    async with (running_server(server_config.replace(max_incoming_streams_queue=QUEUE),
                               {"/full": never_accepts}) as (_, base),
                WebTransportClient(config=client_config) as client):
        session = await client.connect(f"{base}/full")
        for _ in range(QUEUE + EXTRA):  # each stream whole, FIN included
            if bidirectional:
                stream = await session.create_bidirectional_stream()
            else:
                stream = await session.create_unidirectional_stream()  # type: ignore[assignment]
            await stream.write_all(b"x" * 100, end_stream=True)
        server_session = await asyncio.wait_for(arrived, 10)
        await eventually(lambda: server_session.stats.stream_errors == EXTRA)
        assert not server_session.is_closed  # still there for the streams it queued
        await session.close()
    ours = [r for r in caplog.records if r.name.startswith("pywebtransport")]
    assert not [r for r in ours if r.levelno >= logging.ERROR or r.exc_info], \
        [r.getMessage() for r in ours if r.levelno >= logging.ERROR]
    refusals = [r for r in ours if "max_incoming_streams_queue" in r.getMessage()]
    assert len(refusals) == EXTRA
    assert [r.levelno for r in refusals].count(logging.WARNING) == 1
    assert "1 refused so far" in refusals[0].getMessage()
