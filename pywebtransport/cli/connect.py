"""``python -m pywebtransport connect URL``: send lines, print the replies."""

from __future__ import annotations

import asyncio
import sys

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig

__all__ = ["run_connect"]


async def run_connect(*, url: str, insecure: bool, cert_hash: str | None, datagram: bool,
                      messages: list[str] | None, timeout: float) -> None:
    """Send each message (or each stdin line) on its own bidirectional stream, or as a
    datagram, and print each reply."""
    if cert_hash:
        config = ClientConfig(server_certificate_hashes=[bytes.fromhex(cert_hash.replace(":", ""))],
                              connect_timeout=timeout)
    else:
        config = ClientConfig(verify_mode=not insecure, connect_timeout=timeout)
    lines = messages if messages is not None else [line.rstrip("\n") for line in sys.stdin]
    async with WebTransportClient(config=config) as client:
        session = await client.connect(url)
        print(f"connected to {url} (session {session.session_id})", flush=True)
        for line in lines:
            if datagram:
                await session.datagrams.send(line.encode())
                reply = await session.datagrams.receive(timeout=timeout)
            else:
                stream = await session.create_bidirectional_stream()
                await stream.write_all(line.encode(), end_stream=True)
                reply = await asyncio.wait_for(stream.read(), timeout)
            print(reply.decode(errors="replace"), flush=True)
        await session.close(reason="done")
