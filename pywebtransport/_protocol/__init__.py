"""Sans-I/O HTTP/3 + WebTransport engine: bytes and time in, events out."""

from __future__ import annotations

from pywebtransport._protocol import events
from pywebtransport._protocol.engine import EngineConfig, WebTransportEngine
from pywebtransport._protocol.quic import BackpressuredQuicConnection

__all__ = ["BackpressuredQuicConnection", "EngineConfig", "WebTransportEngine", "events"]
