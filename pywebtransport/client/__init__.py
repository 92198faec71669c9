"""Client side: WebTransportClient."""

from __future__ import annotations

from pywebtransport.client.client import WebTransportClient

__all__ = ["WebTransportClient"]
