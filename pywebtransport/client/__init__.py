"""Client side: WebTransportClient and reconnecting sessions."""

from __future__ import annotations

from pywebtransport.client.client import WebTransportClient
from pywebtransport.client.reconnect import (
    OnConnect,
    ReconnectingClient,
    ReconnectPolicy,
    SessionEnd,
    backoff_delay,
    classify_session_end,
    is_retryable_error,
)

__all__ = [
    "OnConnect",
    "ReconnectPolicy",
    "ReconnectingClient",
    "SessionEnd",
    "WebTransportClient",
    "backoff_delay",
    "classify_session_end",
    "is_retryable_error",
]
