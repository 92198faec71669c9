"""How an address is written in messages: ``host:port``, an IPv6 host in brackets (RFC 3986
§3.2.2), so that ``::1`` and its port cannot run together as ``::1:4433``."""

from __future__ import annotations

__all__ = ["format_address"]


def format_address(host: str, port: int) -> str:
    """``host:port``, or ``[host]:port`` for an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
