"""pywebtransport: WebTransport over HTTP/3 and QUIC for asyncio.

The public names most programs need are importable from here; everything else lives in
the module named for it (``pywebtransport.session``, ``pywebtransport.config``, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pywebtransport._version import __version__

if TYPE_CHECKING:
    from pywebtransport.broadcast import BroadcastResult, StreamBroadcaster, broadcast
    from pywebtransport.client import ReconnectingClient, ReconnectPolicy, SessionEnd, WebTransportClient
    from pywebtransport.config import ClientConfig, ServerConfig
    from pywebtransport.connection import WebTransportConnection
    from pywebtransport.datagram import WebTransportDatagramTransport
    from pywebtransport.events import Event, EventEmitter, EventType
    from pywebtransport.exceptions import (
        ConnectionClosedError,
        ConnectionRefusedError,
        DatagramTooLargeError,
        SessionClosedError,
        SessionRejectedError,
        StreamResetError,
        TimeoutError,
        WebTransportError,
    )
    from pywebtransport.protocol import WebTransportProtocolHandler
    from pywebtransport.server import WebTransportServer
    from pywebtransport.session import SessionDiagnostics, SessionStatistics, SessionStats, WebTransportSession
    from pywebtransport.stream import WebTransportReceiveStream, WebTransportSendStream, WebTransportStream
    from pywebtransport.types import (
        CloseCause,
        ConnectionId,
        ConnectionState,
        Data,
        Headers,
        SessionId,
        SessionState,
        StreamId,
    )

#: Where each public name lives; imported on first use so that ``import pywebtransport._wire``
#: (or the CLI's ``--help``) does not pay for the whole asyncio layer.
_LAZY = {
    "WebTransportClient": "pywebtransport.client",
    "ClientConfig": "pywebtransport.config",
    "ServerConfig": "pywebtransport.config",
    "WebTransportConnection": "pywebtransport.connection",
    "WebTransportDatagramTransport": "pywebtransport.datagram",
    "Event": "pywebtransport.events",
    "EventEmitter": "pywebtransport.events",
    "EventType": "pywebtransport.events",
    "ConnectionClosedError": "pywebtransport.exceptions",
    "DatagramTooLargeError": "pywebtransport.exceptions",
    "SessionClosedError": "pywebtransport.exceptions",
    "SessionRejectedError": "pywebtransport.exceptions",
    "StreamResetError": "pywebtransport.exceptions",
    "TimeoutError": "pywebtransport.exceptions",
    "WebTransportError": "pywebtransport.exceptions",
    "WebTransportProtocolHandler": "pywebtransport.protocol",
    "WebTransportServer": "pywebtransport.server",
    "SessionDiagnostics": "pywebtransport.session",
    "SessionStats": "pywebtransport.session",
    "WebTransportSession": "pywebtransport.session",
    "WebTransportReceiveStream": "pywebtransport.stream",
    "WebTransportSendStream": "pywebtransport.stream",
    "WebTransportStream": "pywebtransport.stream",
    "ConnectionId": "pywebtransport.types",
    "ConnectionState": "pywebtransport.types",
    "Data": "pywebtransport.types",
    "Headers": "pywebtransport.types",
    "SessionId": "pywebtransport.types",
    "SessionState": "pywebtransport.types",
    "StreamId": "pywebtransport.types",
    "ReconnectPolicy": "pywebtransport.client",
    "ReconnectingClient": "pywebtransport.client",
    "SessionEnd": "pywebtransport.client",
    "BroadcastResult": "pywebtransport.broadcast",
    "StreamBroadcaster": "pywebtransport.broadcast",
    "broadcast": "pywebtransport.broadcast",
    "ConnectionRefusedError": "pywebtransport.exceptions",
    "SessionStatistics": "pywebtransport.session",
    "CloseCause": "pywebtransport.types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pywebtransport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BroadcastResult",
    "ClientConfig",
    "CloseCause",
    "ConnectionClosedError",
    "ConnectionId",
    "ConnectionRefusedError",
    "ConnectionState",
    "Data",
    "DatagramTooLargeError",
    "Event",
    "EventEmitter",
    "EventType",
    "Headers",
    "ReconnectPolicy",
    "ReconnectingClient",
    "ServerConfig",
    "SessionClosedError",
    "SessionDiagnostics",
    "SessionEnd",
    "SessionId",
    "SessionRejectedError",
    "SessionState",
    "SessionStatistics",
    "SessionStats",
    "StreamBroadcaster",
    "StreamId",
    "StreamResetError",
    "TimeoutError",
    "WebTransportClient",
    "WebTransportConnection",
    "WebTransportDatagramTransport",
    "WebTransportError",
    "WebTransportProtocolHandler",
    "WebTransportReceiveStream",
    "WebTransportSendStream",
    "WebTransportServer",
    "WebTransportSession",
    "WebTransportStream",
    "__version__",
    "broadcast",
]
