"""``python -m pywebtransport serve``: an echo server plus a page to try it from a browser.

With ``--workers N`` (Linux) a supervisor forks N processes sharing the UDP port
(``pywebtransport.server.workers``); the certificate is made once, before the fork, so that
every worker presents the one whose hash is printed, and worker 1 serves the page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import tempfile
from collections.abc import Sequence

from pywebtransport.cli.echo import echo_session
from pywebtransport.config import ServerConfig
from pywebtransport.connection_config import build_quic_configuration
from pywebtransport.exceptions import ConfigurationError, ServerError
from pywebtransport.server import WebTransportServer
from pywebtransport.server import workers as _workers
from pywebtransport.server._signals import STOP_SIGNALS, on_signals
from pywebtransport.utils import generate_self_signed_cert, load_certificate_hash

__all__ = ["PAGE", "banner", "run_serve", "run_serve_workers", "url_host"]

logger = logging.getLogger(__name__)

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>pywebtransport echo</title></head>
<body><h1>pywebtransport echo</h1><p>Connecting to <code>__URL__</code>...</p><pre id="log"></pre>
<script>
const log = m => document.getElementById("log").textContent += m + "\\n";
const HASH = __HASH__;
(async () => {
  const options = HASH ? {serverCertificateHashes: [{algorithm: "sha-256", value: new Uint8Array(HASH)}]} : {};
  const t = new WebTransport("__URL__", options);
  try { await t.ready; } catch (e) { log("could not connect: " + e); return; }
  log("session ready");
  const s = await t.createBidirectionalStream();
  const w = s.writable.getWriter(); await w.write(new TextEncoder().encode("hello from the browser")); await w.close();
  const r = s.readable.getReader(); let text = "";
  for (;;) { const {value, done} = await r.read(); if (done) break; text += new TextDecoder().decode(value); }
  log("echo: " + text);
  t.close({closeCode: 0, reason: "page done"});
})();
</script></body></html>"""


async def _serve_page(page: bytes, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            found = request.startswith(b"GET / ")
            body = page if found else b"not found\n"
            status = b"200 OK" if found else b"404 Not Found"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def url_host(host: str) -> str:
    """``host`` as it goes in a URL: IPv6 literals in brackets, wildcard addresses as loopback."""
    if host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _check_pair(cert: str | None, key: str | None) -> None:
    if (cert is None) != (key is None):
        raise ConfigurationError("--cert and --key go together (give both, or neither for a fresh self-signed "
                                 "certificate)")


def _certificate(cert: str | None, key: str | None, tmp: str) -> tuple[str, str, bytes]:
    """The certificate and key files to serve, and the certificate's SHA-256 (a fresh
    self-signed one in ``tmp`` when none is given)."""
    if cert is None or key is None:
        if sys.stderr.isatty():
            print("generating a self-signed ECDSA P-256 certificate ...", file=sys.stderr, flush=True)
        generated = generate_self_signed_cert("localhost", output_dir=tmp)
        return str(generated.cert_path), str(generated.key_path), generated.sha256
    return cert, key, load_certificate_hash(cert)


def banner(host: str, port: int, digest: bytes, page_port: int | None, pids: Sequence[int] = ()) -> list[str]:
    """What ``serve`` prints once it listens: the URL, the certificate hash, how to connect;
    with ``pids``, the worker processes; the last line says how to stop it."""
    url = f"https://{url_host(host)}:{port}/echo"
    workers = f", {len(pids)} workers (pids {', '.join(str(p) for p in pids)})" if pids else ""
    array = ", ".join(str(b) for b in digest)
    lines = [f"WebTransport echo server on {url_host(host)}:{port} (UDP){workers}",
             f"  URL:                 {url}",
             f"  certificate SHA-256: {digest.hex()}",
             "  from another terminal:",
             f"    python -m pywebtransport connect {url} --cert-hash {digest.hex()}",
             "  from a page (JavaScript):",
             f'    new WebTransport("{url}", {{serverCertificateHashes: '
             f'[{{algorithm: "sha-256", value: new Uint8Array([{array}])}}]}})']
    if page_port:
        lines.append(f"  try it: open http://127.0.0.1:{page_port}/ in Chrome or Chromium")
    lines.append("  (Ctrl-C to stop)")
    return lines


async def _start_page(server: WebTransportServer, digest: bytes, http_port: int) -> asyncio.Server | None:
    """The test page's HTTP server on ``http_port`` (None for 0: no page)."""
    if not http_port:
        return None
    bound_host, bound_port = server.local_address[:2]
    url = f"https://{url_host(bound_host)}:{bound_port}/echo"
    page = PAGE.replace("__URL__", url).replace("__HASH__", json.dumps(list(digest)))
    return await _serve_page(page.encode(), http_port)


async def _serve(server: WebTransportServer, *, page_server: asyncio.Server | None,
                 signals: tuple[signal.Signals, ...], announce: bytes | None,
                 ready: asyncio.Event | None = None) -> None:
    """Serve until one of ``signals`` (then close every session cleanly) or cancellation;
    with ``announce`` (the certificate's SHA-256), print the banner first."""
    if announce is not None:
        bound_host, bound_port = server.local_address[:2]
        page_port = int(page_server.sockets[0].getsockname()[1]) if page_server is not None else None
        print("\n".join(banner(bound_host, bound_port, announce, page_port)), flush=True)
    closing: list[asyncio.Task[None]] = []

    def close_on(signum: signal.Signals) -> None:
        # SIGTERM (systemd, containers) closes like Ctrl-C: every session gets a
        # clean WT_CLOSE_SESSION before the process ends.
        if not closing:
            if announce is not None:
                print(f"{signum.name}: closing the sessions ...", file=sys.stderr, flush=True)
            logger.info("%s: closing the sessions", signum.name)
            closing.append(asyncio.get_running_loop().create_task(server.close(), name="pywebtransport-serve-close"))

    with on_signals(close_on, signals):
        if ready is not None:
            ready.set()
        try:
            await server.serve_forever()
            await asyncio.gather(*closing)
        finally:
            if page_server is not None:
                page_server.close()


async def run_serve(*, host: str, port: int, cert: str | None, key: str | None, http_port: int,
                    ready: asyncio.Event | None = None) -> None:
    """Serve ``/echo`` (and every other path) until cancelled; ``cert`` and ``key`` go together."""
    _check_pair(cert, key)
    with tempfile.TemporaryDirectory(prefix="pywebtransport-serve-") as tmp:
        certfile, keyfile, digest = _certificate(cert, key, tmp)
        server = WebTransportServer(config=ServerConfig(host=host, port=port, certfile=certfile, keyfile=keyfile),
                                    handler=echo_session)
        async with server:
            page_server = await _start_page(server, digest, http_port)
            await _serve(server, page_server=page_server, signals=(signal.SIGTERM,), announce=digest, ready=ready)


def run_serve_workers(*, host: str, port: int, cert: str | None, key: str | None, http_port: int,
                      workers: int) -> int:
    """``serve --workers N``: N processes on one port (one, with a warning, where that cannot
    be). Returns the exit status: 0 after SIGTERM, 130 after Ctrl-C; ServerError when a worker
    failed."""
    _check_pair(cert, key)
    why = _workers.multiprocess_unavailable()
    if why is not None:
        logger.warning("serving from one process instead of %d workers: %s", workers, why)
        asyncio.run(run_serve(host=host, port=port, cert=cert, key=key, http_port=http_port))
        return 0
    with tempfile.TemporaryDirectory(prefix="pywebtransport-serve-") as tmp:
        certfile, keyfile, digest = _certificate(cert, key, tmp)
        reservation = _workers.reserve_port(host, port)
        try:
            result = _serve_workers(reservation, workers, host, certfile, keyfile, digest, http_port)
        finally:
            reservation.release()
    if not result.clean:
        raise ServerError("; ".join(result.failures))
    return 130 if result.signal is signal.SIGINT else 0


def _serve_workers(reservation: _workers.PortReservation, workers: int, host: str, certfile: str, keyfile: str,
                   digest: bytes, http_port: int) -> _workers.SupervisorResult:
    """Run the supervisor of ``serve --workers N`` on the reserved port (``run_serve_workers``)."""
    shared = reservation.port
    config = ServerConfig(host=host, port=shared, certfile=certfile, keyfile=keyfile, reuse_port=True)
    # Files that cannot serve a handshake fail here, in one line, not in every worker with a
    # traceback each (CertificateError naming the files).
    build_quic_configuration(config)

    async def serve(context: _workers.WorkerContext) -> None:
        server = WebTransportServer(config=config, handler=echo_session)
        async with server:
            # Worker 1 serves the page; it binds before the barrier, so a busy page port
            # fails the start-up rather than a running server.
            page_server = await _start_page(server, digest, http_port if context.info.index == 1 else 0)
            if await context.listening():
                await _serve(server, page_server=page_server, signals=STOP_SIGNALS, announce=None)
            elif page_server is not None:
                page_server.close()

    def worker(context: _workers.WorkerContext) -> int:
        asyncio.run(serve(context))
        return 0

    def announce(pids: list[int]) -> None:
        print("\n".join(banner(host, shared, digest, http_port, pids)), flush=True)

    def stopping(signum: signal.Signals) -> None:
        print(f"{signum.name}: closing the sessions ...", file=sys.stderr, flush=True)

    supervisor = _workers.Supervisor(worker, workers=workers, port=shared,
                                     stop_timeout=config.close_timeout + _workers.STOP_GRACE, on_serving=announce,
                                     on_stop=stopping, reservation=reservation)
    return supervisor.run()
