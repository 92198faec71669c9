"""``python -m pywebtransport connect URL``: send lines as they are typed, print replies as they come."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig
from pywebtransport.exceptions import CertificateError, ClientError, HandshakeError
from pywebtransport.session import WebTransportSession

__all__ = ["run_connect"]

_TRUST_HINT = ("the server's certificate is not trusted here: pin it with --cert-hash HEX (the SHA-256 that "
               "`python -m pywebtransport serve` prints) or skip verification with --insecure (development only)")


async def _stdin_lines(stream: TextIO) -> AsyncIterator[str]:
    """Lines of ``stream`` as they are typed; a daemon thread reads so the event loop never blocks."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        try:
            while line := stream.readline():
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):  # stdin closed under us: treat as its end
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="pywebtransport-connect-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line.rstrip("\r\n")


async def _given_lines(messages: Sequence[str]) -> AsyncIterator[str]:
    for message in messages:
        yield message


async def _while_open(session: WebTransportSession, lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """``lines`` until they end; ClientError as soon as the server closes the session meanwhile."""
    closed = asyncio.ensure_future(session.wait_closed())
    try:
        while True:
            following = asyncio.ensure_future(lines.__anext__())
            await asyncio.wait({following, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                reason = f", reason {session.close_reason!r}" if session.close_reason else ""
                raise ClientError(f"the server closed the session (code {session.close_code}{reason})")
            try:
                line = following.result()
            except StopAsyncIteration:
                return
            yield line
    finally:
        closed.cancel()


def _say(text: str) -> None:
    print(text, flush=True)


async def _over_streams(session: WebTransportSession, lines: AsyncIterator[str], timeout: float) -> None:
    async for line in lines:
        stream = await session.create_bidirectional_stream(timeout=timeout)
        await stream.write_all(line.encode(), end_stream=True)
        reply = await asyncio.wait_for(stream.read(), timeout)
        _say(reply.decode(errors="replace"))


async def _over_datagrams(session: WebTransportSession, lines: AsyncIterator[str], timeout: float) -> None:
    sent = 0
    received = 0
    caught_up = asyncio.Event()
    caught_up.set()

    async def receive() -> None:
        nonlocal received
        async for payload in session.datagrams:
            received += 1
            _say(payload.decode(errors="replace"))
            if received >= sent:
                caught_up.set()

    receiver = asyncio.create_task(receive(), name="pywebtransport-connect-datagrams")
    try:
        async for line in lines:
            caught_up.clear()
            sent += 1
            if not await session.datagrams.send(line.encode()):
                print(f"warning: datagram {sent} was dropped (local queue full)", file=sys.stderr, flush=True)
        if received < sent:
            try:
                await asyncio.wait_for(caught_up.wait(), timeout)
            except asyncio.TimeoutError:
                raise ClientError(f"no reply to {sent - received} of {sent} datagrams within {timeout:g}s "
                                  "(datagrams are unreliable; try streams)") from None
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)


async def run_connect(*, url: str, insecure: bool, cert_hash: bytes | str | None, datagram: bool,
                      messages: Sequence[str] | None, timeout: float, stdin: TextIO | None = None) -> None:
    """Send each message, or each line of ``stdin`` as soon as it is read, and print each reply.

    Streams: one bidirectional stream per line, its reply printed before the next line is sent.
    Datagrams: one datagram per line; replies are printed whenever they arrive.
    """
    if isinstance(cert_hash, str):
        cert_hash = bytes.fromhex(cert_hash.replace(":", ""))
    if cert_hash is not None:
        config = ClientConfig(server_certificate_hashes=[cert_hash], connect_timeout=timeout)
    else:
        config = ClientConfig(verify_mode=not insecure, connect_timeout=timeout)
    async with WebTransportClient(config=config) as client:
        try:
            session = await client.connect(url)
        except (HandshakeError, CertificateError) as exc:
            if cert_hash is None and not insecure and "certificate" in str(exc).lower():
                raise ClientError(f"{exc}; {_TRUST_HINT}") from exc
            raise
        _say(f"connected to {url} (session {session.session_id})")
        source = _given_lines(messages) if messages is not None else _stdin_lines(stdin or sys.stdin)
        lines = _while_open(session, source)
        if datagram:
            await _over_datagrams(session, lines, timeout)
        else:
            await _over_streams(session, lines, timeout)
        await session.close(reason="done")
