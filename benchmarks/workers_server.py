"""The server of the ``workers`` benchmark: ``python -m benchmarks.workers_server``.

The benchmark app (``benchmarks.stacks.base.serve_stream``) as a ``ServerApp`` run with
``run(workers=N)``. Limits are raised so that a burst of connects is measured, not refused
or abandoned: ``max_connections`` and ``max_concurrent_handshakes`` per worker are far above
any burst, and ``connect_timeout`` (after which a server abandons a handshake, or a
connection whose SETTINGS did not come) is ``--connect-timeout``, as long as the clients wait.
Warnings (one per closed connection under overload) are not logged; errors are.
Each worker prints ``ready PID PORT`` once every worker listens. A session on ``/bench-pid``
first gets the pid of the worker serving it on a unidirectional stream, so a client can
tell which worker it reached.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from benchmarks.stacks.base import DatagramCounter, RelayHub
from benchmarks.stacks.ours import serve_session_streams

__all__ = ["PID_PATH", "PATH", "main"]

PATH = "/bench"
PID_PATH = "/bench-pid"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers_server")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--backend", default=None, help="QUIC backend (default: the library's)")
    parser.add_argument("--connect-timeout", type=float, default=60.0, help="seconds a handshake may take")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)

    from pywebtransport.config import ServerConfig
    from pywebtransport.server import ServerApp

    extra: dict[str, Any] = {} if args.backend is None else {"quic_backend": args.backend}
    config = ServerConfig(host="127.0.0.1", port=0, certfile=args.cert, keyfile=args.key, max_connections=100_000,
                          max_concurrent_handshakes=100_000, connect_timeout=args.connect_timeout,
                          keep_alive_interval=None, close_timeout=1.0, **extra)
    app = ServerApp(config=config)
    hub = RelayHub()

    async def handler(session: Any) -> None:
        if session.path == PID_PATH:
            stream = await session.create_unidirectional_stream()
            await stream.write_all(str(os.getpid()).encode(), end_stream=True)
        counter = DatagramCounter()
        await serve_session_streams(session, counter, hub, set())

    app.add_route(PATH, handler)
    app.add_route(PID_PATH, handler)

    @app.on_ready
    def ready() -> None:
        sys.stdout.write(f"ready {os.getpid()} {app.local_address[1]}\n")  # one write: workers share stdout
        sys.stdout.flush()

    app.run(workers=args.workers, drain_timeout=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
