"""A WebTransport echo server and a page to try it from your own Chrome.

    python examples/browser/server.py            # then open http://127.0.0.1:8080/

It makes a fresh certificate that browsers accept with ``serverCertificateHashes``
(ECDSA P-256, valid 10 days), serves the page over plain HTTP on 127.0.0.1 (a secure
context) and the WebTransport endpoint over QUIC on 127.0.0.1:4433.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import tempfile
from pathlib import Path

from pywebtransport import ServerConfig, WebTransportServer
from pywebtransport.cli.echo import echo_session
from pywebtransport.utils import generate_self_signed_cert

PAGE = (Path(__file__).parent / "index.html").read_text()


async def serve_page(page: bytes, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: "
                     + str(len(page)).encode() + b"\r\nConnection: close\r\n\r\n" + page)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=4433, help="WebTransport (UDP) port")
    parser.add_argument("--http-port", type=int, default=8080, help="port of the page (TCP)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    cert = generate_self_signed_cert("localhost", output_dir=tempfile.mkdtemp(prefix="pwt-example-"))
    config = ServerConfig(host="127.0.0.1", port=args.port, certfile=str(cert.cert_path), keyfile=str(cert.key_path))
    server = WebTransportServer(config=config)
    server.add_route("/echo", echo_session)
    async with server:
        url = f"https://127.0.0.1:{server.local_address[1]}/echo"
        page = PAGE.replace("__URL__", url).replace("__HASH__", json.dumps(list(cert.sha256)))
        http = await serve_page(page.encode(), args.http_port)
        print(f"WebTransport endpoint: {url}")
        print(f"certificate SHA-256:   {cert.sha256_hex}")
        page_port = http.sockets[0].getsockname()[1]
        print(f"open http://127.0.0.1:{page_port}/ in Chrome (Ctrl-C to stop)")
        try:
            await server.serve_forever()
        finally:
            http.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
