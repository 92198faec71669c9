"""The ``pywebtransport`` command: demo, serve, connect, cert."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["build_parser", "main", "package_version", "parse_cert_hash"]


def package_version() -> str:
    """``pywebtransport.__version__``, or the installed distribution's version without it."""
    import pywebtransport

    version = getattr(pywebtransport, "__version__", None)
    if isinstance(version, str) and version:
        return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("pywebtransport")
    except PackageNotFoundError:
        return "unknown"


def parse_cert_hash(text: str) -> bytes:
    """A SHA-256 given as 64 hex digits (colons and spaces allowed) -> its 32 bytes."""
    digits = text.replace(":", "").replace(" ", "").strip()
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise argparse.ArgumentTypeError(
            f"expected the certificate's SHA-256 as 64 hex digits (as `serve` and `cert` print it), got {shown!r} "
            f"({len(digits)} characters)")
    return bytes.fromhex(digits)


def _count(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    """A number of seconds > 0 and finite: ``nan`` and ``inf`` are usage errors, not timeouts."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pywebtransport", description="WebTransport over HTTP/3 for asyncio.")
    parser.add_argument("--version", action="version", version=f"pywebtransport {package_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="server and client in one process over 127.0.0.1, measured")
    demo.add_argument("--round-trips", type=_count(0), default=200,
                      help="latency samples per kind (default 200; 0 skips the latency figures)")
    demo.add_argument("--bulk-mib", type=_count(0), default=16,
                      help="MiB sent for the throughput figure (default 16; 0 skips it)")
    demo.add_argument("--json", action="store_true", help="print the numbers as JSON")

    serve = commands.add_parser("serve", help="an echo server, with a page to try it from a browser")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; ::1 for IPv6)")
    serve.add_argument("--port", type=_count(0, 65535), default=4433, help="UDP port (default 4433; 0: any free port)")
    serve.add_argument("--cert", help="certificate PEM (with --key; default: a fresh self-signed one)")
    serve.add_argument("--key", help="private key PEM of --cert")
    serve.add_argument("--http-port", type=_count(0, 65535), default=8080, help="port of the test page (0: no page)")
    serve.add_argument("--workers", type=_count(1), default=1,
                       help="processes sharing the UDP port, spread by client address (Linux; default 1)")

    connect = commands.add_parser(
        "connect", help="send lines to a server and print the replies as they come",
        description="Read stdin line by line (or take --message), send each line, print each reply as it "
                    "arrives. Streams: one bidirectional stream per line. --datagram: one datagram per line.")
    connect.add_argument("url", help="https://host:port/path (IPv6: https://[::1]:port/path)")
    trust = connect.add_mutually_exclusive_group()
    trust.add_argument("--insecure", action="store_true", help="do not verify the certificate (development)")
    trust.add_argument("--cert-hash", type=parse_cert_hash, metavar="HEX",
                       help="pin the server certificate by its SHA-256 (64 hex digits, as `serve` prints it)")
    connect.add_argument("--datagram", action="store_true", help="send datagrams instead of streams")
    connect.add_argument("--message", action="append", help="a message to send (repeatable; default: stdin lines)")
    connect.add_argument("--timeout", type=_seconds, default=10.0,
                         help="seconds to wait for the session and each reply (default 10)")

    cert = commands.add_parser("cert", help="write a certificate and key browsers accept by hash")
    cert.add_argument("--out", default=".", help="directory for cert.pem and key.pem")
    cert.add_argument("--host", default="localhost")
    cert.add_argument("--days", type=_count(1), default=10, help="validity, at most 14 (browser rule)")
    return parser


def _cert(out: str, host: str, days: int) -> None:
    from pywebtransport.utils import generate_self_signed_cert

    if sys.stderr.isatty():
        print(f"generating an ECDSA P-256 certificate for {host} ({days} days) ...", file=sys.stderr, flush=True)
    generated = generate_self_signed_cert(host, output_dir=Path(out), validity_days=days)
    print(f"wrote {generated.cert_path} and {generated.key_path}")
    print(f"SHA-256 (serverCertificateHashes): {generated.sha256_hex}")
    print(f"as JavaScript: {generated.js_hash_array()}")
    print(f"SPKI SHA-256 (Chromium --ignore-certificate-errors-spki-list): {generated.spki_sha256_base64}")


def _run(args: argparse.Namespace) -> int | None:
    """Run the command; an exit status, or None for 0."""
    if args.command == "demo":
        from pywebtransport.cli.demo import run_demo

        asyncio.run(run_demo(round_trips=args.round_trips, bulk_mib=args.bulk_mib, as_json=args.json))
    elif args.command == "serve" and args.workers > 1:
        from pywebtransport.cli.serve import run_serve_workers

        return run_serve_workers(host=args.host, port=args.port, cert=args.cert, key=args.key,
                                 http_port=args.http_port, workers=args.workers)
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
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 error, 2 usage, 130 interrupted)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.command == "serve" and (args.cert is None) != (args.key is None):
        parser.error("serve: --cert and --key go together (give both, or neither for a fresh self-signed "
                     "certificate)")
    if args.command == "cert":
        from pywebtransport.utils import MAX_HASH_PINNED_VALIDITY_DAYS

        if not 1 <= args.days <= MAX_HASH_PINNED_VALIDITY_DAYS:
            parser.error(f"cert: --days must be 1 to {MAX_HASH_PINNED_VALIDITY_DAYS} for browsers to accept the "
                         f"certificate by its hash, got {args.days}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # aioquic logs every failed handshake as a warning; the error line below says it once.
        logging.getLogger("quic").setLevel(logging.ERROR)
    if args.command in ("demo", "serve", "connect"):
        from pywebtransport.cli.compiled import prefer_compiled

        status = prefer_compiled(arguments)
        if status is not None:
            return status
    try:
        status = _run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line, a traceback only when asked
        if args.debug:
            traceback.print_exc()
        message = str(exc) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0 if status is None else status
