"""pywebtransport: WebTransport over HTTP/3 and QUIC for asyncio."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
