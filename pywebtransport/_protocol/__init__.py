"""Sans-I/O HTTP/3 + WebTransport engine: bytes and time in, events out."""

from __future__ import annotations

from pywebtransport._protocol import events
from pywebtransport._protocol.engine import EngineConfig, WebTransportEngine
from pywebtransport._protocol.quic import BackpressuredQuicConnection, QuicCore, create_quic_connection

__all__ = ["BackpressuredQuicConnection", "EngineConfig", "QuicCore", "WebTransportEngine", "create_quic_connection",
           "events"]
