"""The ``pywebtransport`` command: demo, serve, connect, cert."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from pywebtransport import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pywebtransport", description="WebTransport over HTTP/3 for asyncio.")
    parser.add_argument("--version", action="version", version=f"pywebtransport {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="server and client in one process over 127.0.0.1, measured")
    demo.add_argument("--round-trips", type=int, default=200, help="latency samples (default 200)")
    demo.add_argument("--bulk-mib", type=int, default=16, help="MiB sent for the throughput figure (default 16)")
    demo.add_argument("--json", action="store_true", help="print the numbers as JSON")

    serve = commands.add_parser("serve", help="an echo server, with a page to try it from a browser")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4433)
    serve.add_argument("--cert", help="certificate PEM (default: a fresh self-signed one)")
    serve.add_argument("--key", help="private key PEM")
    serve.add_argument("--http-port", type=int, default=8080, help="port of the test page (0: no page)")

    connect = commands.add_parser("connect", help="send lines to a server and print the replies")
    connect.add_argument("url", help="https://host:port/path")
    trust = connect.add_mutually_exclusive_group()
    trust.add_argument("--insecure", action="store_true", help="do not verify the certificate (development)")
    trust.add_argument("--cert-hash", help="pin the server certificate by its SHA-256 (hex)")
    connect.add_argument("--datagram", action="store_true", help="send datagrams instead of streams")
    connect.add_argument("--message", action="append", help="a message to send (repeatable; default: stdin lines)")
    connect.add_argument("--timeout", type=float, default=10.0)

    cert = commands.add_parser("cert", help="write a certificate and key browsers accept by hash")
    cert.add_argument("--out", default=".", help="directory for cert.pem and key.pem")
    cert.add_argument("--host", default="localhost")
    cert.add_argument("--days", type=int, default=10, help="validity, at most 14 (browser rule)")
    return parser


def _cert(out: str, host: str, days: int) -> None:
    from pywebtransport.utils import generate_self_signed_cert

    generated = generate_self_signed_cert(host, output_dir=Path(out), validity_days=days)
    print(f"wrote {generated.cert_path} and {generated.key_path}")
    print(f"SHA-256 (serverCertificateHashes): {generated.sha256_hex}")
    print(f"as JavaScript: {generated.js_hash_array()}")
    print(f"SPKI SHA-256 (Chromium --ignore-certificate-errors-spki-list): {generated.spki_sha256_base64}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 error, 2 usage)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            from pywebtransport.cli.demo import run_demo

            asyncio.run(run_demo(round_trips=args.round_trips, bulk_mib=args.bulk_mib, as_json=args.json))
        elif args.command == "serve":
            from pywebtransport.cli.serve import run_serve

            asyncio.run(run_serve(host=args.host, port=args.port, cert=args.cert, key=args.key,
                                  http_port=args.http_port))
        elif args.command == "connect":
            from pywebtransport.cli.connect import run_connect

            asyncio.run(run_connect(url=args.url, insecure=args.insecure, cert_hash=args.cert_hash,
                                    datagram=args.datagram, messages=args.message, timeout=args.timeout))
        elif args.command == "cert":
            _cert(args.out, args.host, args.days)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line, a traceback only when asked
        if args.debug:
            traceback.print_exc()
        message = str(exc) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0
