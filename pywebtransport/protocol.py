"""The protocol handler: the sans-I/O HTTP/3 + WebTransport engine, under its public name."""

from __future__ import annotations

from pywebtransport._protocol import EngineConfig, WebTransportEngine
from pywebtransport._protocol import events as events

__all__ = ["EngineConfig", "WebTransportProtocolHandler", "events"]

#: The engine that speaks HTTP/3 and WebTransport for one QUIC connection.
WebTransportProtocolHandler = WebTransportEngine
