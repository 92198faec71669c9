"""The echo service the CLI's demo and serve commands run."""

from __future__ import annotations

import asyncio

from pywebtransport.session import WebTransportSession
from pywebtransport.stream import WebTransportReceiveStream, WebTransportStream

__all__ = ["echo_session"]


async def echo_session(session: WebTransportSession) -> None:
    """Echo bidirectional streams in place; answer a unidirectional stream on a new one with
    ``received N bytes`` (and its text when short); echo datagrams."""

    async def bidi(stream: WebTransportStream) -> None:
        async for chunk in stream:
            stream.write(chunk)
            await stream.drain()
        await stream.close()

    async def uni(stream: WebTransportReceiveStream) -> None:
        total = 0
        head = b""
        async for chunk in stream:
            if total < 256:
                head += chunk[: 256 - total]
            total += len(chunk)
        reply = await session.create_unidirectional_stream()
        text = f"received {total} bytes" + (f": {head.decode(errors='replace')}" if total <= 256 else "")
        await reply.write_all(text.encode(), end_stream=True)

    async def datagrams() -> None:
        async for payload in session.datagrams:
            await session.datagrams.send(payload)

    tasks = [asyncio.ensure_future(datagrams())]
    try:
        async for stream in session.incoming_streams():
            job = bidi(stream) if isinstance(stream, WebTransportStream) else uni(stream)  # type: ignore[arg-type]
            tasks.append(asyncio.ensure_future(job))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
