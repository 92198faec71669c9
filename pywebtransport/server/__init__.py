"""Server side: WebTransportServer (and the routing ServerApp built on it)."""

from __future__ import annotations

from pywebtransport.server.server import RequestDecider, SessionHandler, WebTransportServer

__all__ = ["RequestDecider", "SessionHandler", "WebTransportServer"]
