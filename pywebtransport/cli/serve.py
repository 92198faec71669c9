"""``python -m pywebtransport serve``: an echo server plus a page to try it from a browser."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile

from pywebtransport.cli.echo import echo_session
from pywebtransport.config import ServerConfig
from pywebtransport.exceptions import ConfigurationError
from pywebtransport.server import WebTransportServer
from pywebtransport.server._signals import on_signals
from pywebtransport.utils import generate_self_signed_cert, load_certificate_hash

__all__ = ["PAGE", "run_serve", "url_host"]

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


async def run_serve(*, host: str, port: int, cert: str | None, key: str | None, http_port: int,
                    ready: asyncio.Event | None = None) -> None:
    """Serve ``/echo`` (and every other path) until cancelled; ``cert`` and ``key`` go together."""
    if (cert is None) != (key is None):
        raise ConfigurationError("--cert and --key go together (give both, or neither for a fresh self-signed "
                                 "certificate)")
    with tempfile.TemporaryDirectory(prefix="pywebtransport-serve-") as tmp:
        if cert is None or key is None:
            if sys.stderr.isatty():
                print("generating a self-signed ECDSA P-256 certificate ...", file=sys.stderr, flush=True)
            generated = generate_self_signed_cert("localhost", output_dir=tmp)
            cert, key = str(generated.cert_path), str(generated.key_path)
            digest = generated.sha256
        else:
            digest = load_certificate_hash(cert)
        server = WebTransportServer(config=ServerConfig(host=host, port=port, certfile=cert, keyfile=key),
                                    handler=echo_session)
        async with server:
            bound_host, bound_port = server.local_address[:2]
            url = f"https://{url_host(bound_host)}:{bound_port}/echo"
            print(f"WebTransport echo server on {url_host(bound_host)}:{bound_port} (UDP)", flush=True)
            print(f"  URL:                 {url}")
            print(f"  certificate SHA-256: {digest.hex()}")
            print("  from another terminal:")
            print(f"    python -m pywebtransport connect {url} --cert-hash {digest.hex()}")
            print("  from a page (JavaScript):")
            array = ", ".join(str(b) for b in digest)
            print(f'    new WebTransport("{url}", {{serverCertificateHashes: '
                  f'[{{algorithm: "sha-256", value: new Uint8Array([{array}])}}]}})')
            page_server = None
            if http_port:
                page = PAGE.replace("__URL__", url).replace("__HASH__", json.dumps(list(digest)))
                page_server = await _serve_page(page.encode(), http_port)
                page_port = page_server.sockets[0].getsockname()[1]
                print(f"  try it: open http://127.0.0.1:{page_port}/ in Chrome or Chromium")
            print("  (Ctrl-C to stop)", flush=True)
            closing: list[asyncio.Task[None]] = []

            def close_on(signum: signal.Signals) -> None:
                # SIGTERM (systemd, containers) closes like Ctrl-C: every session gets a
                # clean WT_CLOSE_SESSION before the process ends.
                if not closing:
                    print(f"{signum.name}: closing the sessions ...", file=sys.stderr, flush=True)
                    closing.append(asyncio.get_running_loop().create_task(server.close(),
                                                                          name="pywebtransport-serve-close"))

            with on_signals(close_on, (signal.SIGTERM,)):
                if ready is not None:
                    ready.set()
                try:
                    await server.serve_forever()
                    await asyncio.gather(*closing)
                finally:
                    if page_server is not None:
                        page_server.close()
