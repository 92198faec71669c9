"""``ServerApp.run(workers=N)``: N processes on one UDP port, run as a user would (a script).

Each session asks its worker for its pid, so the tests see which process serves it; the
kernel spreads clients over the workers by address, so clients connect until both workers
have been seen. Everything waits on output lines and session events, never on time.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import pywebtransport
from pywebtransport.client import WebTransportClient
from pywebtransport.config import ClientConfig, ServerConfig
from pywebtransport.exceptions import ServerError
from pywebtransport.server import ServerApp
from pywebtransport.server.workers import describe_exit, multiprocess_unavailable, reserve_port, resolve_port
from pywebtransport.session import WebTransportSession
from pywebtransport.types import CloseCause
from pywebtransport.utils import SelfSignedCertificate

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(multiprocess_unavailable() is not None, reason=str(multiprocess_unavailable())),
]

#: Connections tried before concluding that the kernel never picked one of the workers
#: (with two workers and random client ports, 64 misses in a row have odds of 2**-63).
MAX_CONNECTS = 64

APP = textwrap.dedent("""
    import logging
    import os
    import sys
    import time

    from pywebtransport.config import ServerConfig
    from pywebtransport.exceptions import ServerError
    from pywebtransport.server import ServerApp, workers

    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)
    if os.environ.get("PRETEND_UNAVAILABLE"):
        workers.multiprocess_unavailable = lambda: os.environ["PRETEND_UNAVAILABLE"]
    config = ServerConfig(host="127.0.0.1", port=int(os.environ["PORT"]), certfile=os.environ["CERT"],
                          keyfile=os.environ["KEY"], close_timeout=1.0)
    app = ServerApp(config=config)

    def say(line):
        # One write per line: the workers share stdout, and print() writes the text and the
        # newline separately, so two workers' lines could interleave.
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()

    def index():
        worker = workers.current_worker()
        return 0 if worker is None else worker.index

    @app.route("/pid")
    async def pid(session):
        async for stream in session.incoming_streams():
            await stream.read()
            await stream.write_all(str(os.getpid()).encode(), end_stream=True)

    @app.on_startup
    def startup():
        if str(index()) == os.environ.get("FAIL_WORKER"):
            raise RuntimeError("this worker is told to fail")

    @app.on_ready
    def ready():
        say(f"ready {os.getpid()} {app.local_address[1]} {index()}")

    @app.on_shutdown
    def shutdown():
        say(f"shutdown {os.getpid()}")
        if str(index()) == os.environ.get("HANG_WORKER"):
            time.sleep(3600)

    try:
        app.run(workers=int(os.environ["WORKERS"]), drain_timeout=float(os.environ.get("DRAIN", "0.5")))
    except ServerError as exc:
        print(f"run failed: {exc}", flush=True)
        sys.exit(3)
    print(f"run returned {os.getpid()}", flush=True)
""")


class Output:
    """A child's output lines, collected by a thread; tests wait for a line matching a pattern."""

    def __init__(self, pipe: object) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False

        def pump() -> None:
            for line in pipe:  # type: ignore[attr-defined]
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
            with self._changed:
                self._ended = True
                self._changed.notify_all()

        threading.Thread(target=pump, daemon=True).start()

    def _wait(self, pattern: str, count: int, timeout: float) -> list[re.Match[str]]:
        def found() -> list[re.Match[str]]:
            return [m for line in self.lines if (m := re.search(pattern, line))]

        with self._changed:
            self._changed.wait_for(lambda: len(found()) >= count or self._ended, timeout)
            matches = found()
        if len(matches) < count:
            shown = "\n".join(self.lines)
            raise AssertionError(f"expected {count} lines matching {pattern!r}; output so far:\n{shown}")
        return matches

    async def until(self, pattern: str, *, count: int = 1, timeout: float = 60) -> list[re.Match[str]]:
        return await asyncio.to_thread(self._wait, pattern, count, timeout)

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)


@contextmanager
def app_process(tmp_path: Path, certificate: SelfSignedCertificate, *, workers: int, port: int = 0,
                **env: str) -> Iterator[tuple[subprocess.Popen[str], Output]]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    package_root = str(Path(pywebtransport.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, "WORKERS": str(workers),
                   "PORT": str(port), "CERT": str(certificate.cert_path), "KEY": str(certificate.key_path), **env}
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=environment)
    try:
        yield child, Output(child.stdout)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


async def wait_exit(child: subprocess.Popen[str], timeout: float = 30) -> int:
    return await asyncio.wait_for(asyncio.to_thread(child.wait), timeout)


async def ask_pid(session: WebTransportSession) -> int:
    stream = await session.create_bidirectional_stream()
    await stream.write_all(b"which process are you?", end_stream=True)
    return int(await stream.read())


async def sessions_by_worker(client: WebTransportClient, port: int,
                             pids: set[int]) -> dict[int, list[WebTransportSession]]:
    """Open sessions until each of ``pids`` serves one; the sessions, by the pid serving them."""
    found: dict[int, list[WebTransportSession]] = {}
    for _ in range(MAX_CONNECTS):
        session = await client.connect(f"https://127.0.0.1:{port}/pid")
        found.setdefault(await ask_pid(session), []).append(session)
        if set(found) >= pids:
            break
    return found


async def ready_workers(out: Output, count: int) -> tuple[int, dict[int, int]]:
    """Wait for ``count`` on_ready lines; the shared port and worker index -> pid."""
    lines = await out.until(r"^ready (\d+) (\d+) (\d+)$", count=count)
    ports = {int(m.group(2)) for m in lines}
    assert len(ports) == 1, out.text()
    return ports.pop(), {int(m.group(3)): int(m.group(1)) for m in lines}


def client_config(certificate: SelfSignedCertificate) -> ClientConfig:
    # A short close linger: closing the connections a killed worker left is not waited out.
    return ClientConfig(server_certificate_hashes=[certificate.sha256], connect_timeout=20, close_timeout=1.0)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_two_workers_share_the_port_and_close_gracefully_on_sigterm(
        certificate: SelfSignedCertificate, tmp_path: Path) -> None:
    with app_process(tmp_path, certificate, workers=2) as (child, out):
        port, workers = await ready_workers(out, 2)
        assert sorted(workers) == [1, 2] and child.pid not in workers.values(), out.text()
        async with WebTransportClient(config=client_config(certificate)) as client:
            found = await sessions_by_worker(client, port, set(workers.values()))
            assert set(found) == set(workers.values()), f"only {set(found)} served {sum(map(len, found.values()))}"
            sessions = [s for group in found.values() for s in group]
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in sessions)), 30)
            assert {(s.close_code, s.close_cause) for s in sessions} == {(0, CloseCause.PEER_CLOSE)}
        assert await wait_exit(child) == 0, out.text()
        await out.until(r"^run returned")
    text = out.text()
    assert sorted(int(m) for m in re.findall(r"^shutdown (\d+)$", text, re.M)) == sorted(workers.values())
    assert re.findall(r"^run returned (\d+)$", text, re.M) == [str(child.pid)], text  # the workers never return
    assert all(gone(pid) for pid in workers.values())


async def test_a_killed_worker_stops_the_others_gracefully_and_fails_the_run(
        certificate: SelfSignedCertificate, tmp_path: Path) -> None:
    with app_process(tmp_path, certificate, workers=2) as (child, out):
        port, workers = await ready_workers(out, 2)
        async with WebTransportClient(config=client_config(certificate)) as client:
            found = await sessions_by_worker(client, port, set(workers.values()))
            assert set(found) == set(workers.values())
            victim, survivor = workers[1], workers[2]
            os.kill(victim, signal.SIGKILL)
            survivors = found[survivor]
            await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in survivors)), 30)
            assert {(s.close_code, s.close_cause) for s in survivors} == {(0, CloseCause.PEER_CLOSE)}
            assert await wait_exit(child) == 3, out.text()
    text = out.text()
    assert f"run failed: worker 1 (pid {victim}) exited unexpectedly (killed by SIGKILL) after it was listening" \
        in text, text
    assert f"shutdown {survivor}" in text and f"shutdown {victim}" not in text, text
    assert gone(survivor)


async def test_a_worker_that_fails_to_start_stops_the_run_before_anything_is_announced(
        certificate: SelfSignedCertificate, tmp_path: Path) -> None:
    with app_process(tmp_path, certificate, workers=2, FAIL_WORKER="2") as (child, out):
        assert await wait_exit(child) == 3, out.text()
    text = out.text()
    assert re.search(r"^run failed: worker 2 \(pid \d+\) exited unexpectedly \(exit status 1\) before it was "
                     r"listening$", text, re.M), text
    assert "this worker is told to fail" in text  # its traceback is logged, naming the worker
    assert re.search(r"\[worker 2/2 pid \d+\] worker 2 failed", text), text
    assert not re.search(r"^ready ", text, re.M), text  # the barrier: worker 1 announced nothing


async def test_a_worker_that_does_not_stop_is_killed_at_the_deadline(
        certificate: SelfSignedCertificate, tmp_path: Path) -> None:
    with app_process(tmp_path, certificate, workers=2, HANG_WORKER="1", DRAIN="0.1") as (child, out):
        _, workers = await ready_workers(out, 2)
        child.send_signal(signal.SIGTERM)
        assert await wait_exit(child) == 3, out.text()
    text = out.text()
    assert re.search(rf"^run failed: worker 1 \(pid {workers[1]}\) did not stop within [\d.]+ s; killed$", text,
                     re.M), text
    assert f"shutdown {workers[2]}" in text
    assert gone(workers[1])


async def test_workers_fall_back_to_one_process_where_a_port_cannot_be_shared(
        certificate: SelfSignedCertificate, tmp_path: Path) -> None:
    with app_process(tmp_path, certificate, workers=2, PRETEND_UNAVAILABLE="no sharing here") as (child, out):
        port, workers = await ready_workers(out, 1)
        assert workers == {0: child.pid}  # no worker index: the process itself serves
        async with WebTransportClient(config=client_config(certificate)) as client:
            session = await client.connect(f"https://127.0.0.1:{port}/pid")
            assert await ask_pid(session) == child.pid
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(session.wait_closed(), 30)
        assert await wait_exit(child) == 0
    assert "WARNING serving from one process instead of 2 workers: no sharing here" in out.text()


async def test_a_port_in_use_fails_the_run_before_any_worker_starts(
        certificate: SelfSignedCertificate, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with app_process(tmp_path, certificate, workers=2, port=port) as (child, out):
            assert await wait_exit(child) == 3
    assert f"run failed: cannot listen on 127.0.0.1:{port}" in out.text()


def sockets_on_udp_port(port: int) -> int:
    """How many UDP sockets of this machine are bound to ``port`` (Linux's /proc/net/udp{,6})."""
    count = 0
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        with open(name) as table:
            next(table)
            count += sum(1 for line in table if int(line.split()[1].rsplit(":", 1)[1], 16) == port)
    return count


async def test_the_port_is_held_until_the_workers_listen_and_then_only_they_hold_it(
        certificate: SelfSignedCertificate, tmp_path: Path) -> None:
    """Port 0: the supervisor holds the port it picked from before the fork (no other
    process can take it meanwhile) and lets go of it, in itself and in every worker, once
    all listen: a socket left in the group would get a share of the clients and answer none."""
    with app_process(tmp_path, certificate, workers=2) as (child, out):
        port, workers = await ready_workers(out, 2)
        assert sockets_on_udp_port(port) == 2, out.text()
        child.send_signal(signal.SIGTERM)
        assert await wait_exit(child) == 0, out.text()


def test_a_reserved_port_is_held_until_released_and_only_reuse_port_sockets_join_it() -> None:
    reservation = reserve_port("127.0.0.1", 0)
    port = reservation.port
    assert reservation.held and sockets_on_udp_port(port) == 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # another process without SO_REUSEPORT: refused
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as worker:
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(("127.0.0.1", port))  # a worker joins
        reservation.release()
        reservation.release()  # idempotent
        assert not reservation.held and sockets_on_udp_port(port) == 1  # the worker's alone
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        plain.bind(("127.0.0.1", port))  # free again once the workers are gone


def test_a_port_held_by_another_reuse_port_group_is_not_reserved() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
        with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{port}"):
            reserve_port("127.0.0.1", port)


def test_resolve_port_gives_a_free_port_for_zero_and_keeps_a_given_one() -> None:
    port = resolve_port("127.0.0.1", 0)
    assert 0 < port < 65536
    assert resolve_port("127.0.0.1", port) == port  # the probe left nothing bound


@pytest.mark.parametrize("platform", ["darwin", "win32", "freebsd14"])
def test_only_linux_spreads_a_udp_port_over_processes(platform: str) -> None:
    why = multiprocess_unavailable(platform=platform)
    assert why is not None and "only on Linux" in why and platform in why


def test_exit_codes_are_described_in_words() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exit status 3"


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_run_refuses_a_worker_count_that_is_not_a_positive_int(workers: object) -> None:
    app = ServerApp(config=ServerConfig(port=0))
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        app.run(workers=workers)  # type: ignore[arg-type]
