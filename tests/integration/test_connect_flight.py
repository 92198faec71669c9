"""How many flights a connect takes: the client asks for its session before the handshake
ends, so the CONNECT leaves with its Finished (in the same datagram) and the server answers
it in its next flight.

Read from the server's qlog (``quic_log_dir``), which both QUIC backends write, so the test
sees datagrams and packets as they crossed the wire.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig

from .conftest import running_server
from .peers import SessionQueue

pytestmark = pytest.mark.timeout(60)


def _events(directory: Path) -> list[dict[str, Any]]:
    names = [name for name in os.listdir(directory) if name.endswith(".qlog")]
    assert len(names) == 1, names
    with open(directory / names[0]) as qlog:
        return list(json.load(qlog)["traces"][0]["events"])


def _datagrams(events: list[dict[str, Any]], direction: str) -> list[list[dict[str, Any]]]:
    """The packets of each datagram received (``direction`` "received") or sent, in order."""
    datagrams: list[list[dict[str, Any]]] = []
    for event in events:
        name = event["name"]
        if name == f"transport:datagrams_{direction}":
            datagrams.append([])
        elif name == f"transport:packet_{direction}" and datagrams:
            datagrams[-1].append(event["data"])
    return datagrams


def _stream_frames(packet: dict[str, Any], stream_id: int) -> list[dict[str, Any]]:
    return [f for f in packet.get("frames", []) if f.get("frame_type") == "stream" and f.get("stream_id") == stream_id]


def _connect_in_the_finished_flight(events: list[dict[str, Any]], session_id: int) -> bool:
    """Whether the CONNECT arrived in the same datagram as the client's Finished (a handshake
    packet with CRYPTO) and the 200 left in the server's HANDSHAKE_DONE packet."""
    received = _datagrams(events, "received")
    first = next(d for d in received if any(_stream_frames(p, session_id) for p in d))
    with_finished = any(p["header"]["packet_type"] == "handshake"
                        and any(f["frame_type"] == "crypto" for f in p["frames"]) for p in first)
    sent = [p for d in _datagrams(events, "sent") for p in d]
    done = next(p for p in sent if any(f["frame_type"] == "handshake_done" for f in p["frames"]))
    return with_finished and bool(_stream_frames(done, session_id))


async def test_the_connect_request_leaves_with_the_clients_finished_and_is_answered_in_one_flight(
        server_config: ServerConfig, client_config: ClientConfig, tmp_path: Path) -> None:
    """Before, the client sent its CONNECT a loop pass after the handshake: always a datagram
    of its own, answered in a packet after HANDSHAKE_DONE. Now it leaves with the Finished
    whenever the server's 0.5-RTT SETTINGS were read in the same pass as its Finished, which
    on loopback is nearly always (a datagram still in flight when the client wakes is the
    exception), so most of five connects must show it. (On aioquic the old order often
    managed it too, by how the loop ran the waiting task; on qh3 it never did.)"""
    results = []
    for attempt in range(5):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        queue = SessionQueue()
        async with running_server(server_config.replace(quic_log_dir=str(directory)),
                                  {"/s": queue.handler}) as (_, base), \
                WebTransportClient(config=client_config) as client:
            session = await client.connect(f"{base}/s")
            await session.close()
            await client.wait_closed()
        results.append(_connect_in_the_finished_flight(_events(directory), session.session_id))
    assert sum(results) >= 3, results
