"""The ``python -m pywebtransport`` command, run as a user would: in a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import pywebtransport
from pywebtransport._wire import NO_EXTENSIONS

pytestmark = pytest.mark.timeout(120)


def run(*args: str, timeout: float = 90, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pywebtransport", *args], capture_output=True, text=True,
                          timeout=timeout, input=stdin)


def test_demo_runs_everything_and_reports_numbers() -> None:
    result = run("demo", "--round-trips", "30", "--bulk-mib", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "_wire implementation: " in out
    assert "bidi echo:     'hello over a bidirectional stream'" in out
    assert "uni reply:     'received 34 bytes: hello over a unidirectional stream'" in out
    assert "datagram echo: 'hello as a datagram'" in out
    assert re.search(r"new stream \+ 64 B echo: median \d+ us, p99 \d+ us", out)
    assert re.search(r"throughput: [\d.]+ MiB/s \(received 2097152 bytes", out)
    assert "the server saw code 0 and reason 'demo done'" in out


def test_demo_json_output_is_parseable() -> None:
    result = run("demo", "--round-trips", "10", "--bulk-mib", "1", "--json")
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout)
    assert numbers["implementation"] in ("cython", "python")
    assert numbers["stream_rtt_us"]["median"] > 0 and numbers["throughput_mib_s"] > 0
    assert numbers["server_saw_close"] == {"code": 0, "reason": "demo done"}


def test_cert_writes_a_browser_acceptable_certificate(tmp_path: Path) -> None:
    result = run("cert", "--out", str(tmp_path), "--days", "7")
    assert result.returncode == 0, result.stderr
    cert_pem = (tmp_path / "cert.pem").read_bytes()
    assert (tmp_path / "key.pem").exists()
    certificate = x509.load_pem_x509_certificate(cert_pem)
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()
    assert f"SHA-256 (serverCertificateHashes): {digest}" in result.stdout
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity.days == 7


@pytest.mark.parametrize("days", ["30", "15", "0", "-3", "ten"])
def test_cert_refuses_a_validity_browsers_reject_as_usage(tmp_path: Path, days: str) -> None:
    result = run("cert", "--out", str(tmp_path), f"--days={days}")
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr and "--days" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "cert.pem").exists()


def test_bad_arguments_exit_2_with_usage() -> None:
    result = run("frobnicate")
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "0", "-1", "soon"])
def test_connect_refuses_a_timeout_that_is_not_finite_seconds_as_usage(timeout: str) -> None:
    # Nothing listens on the port: a timeout that got through would fail with exit 1 instead.
    result = run("connect", "https://127.0.0.1:9/x", "--insecure", f"--timeout={timeout}", "--message", "hi")
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr and "--timeout" in result.stderr and repr(timeout) in result.stderr


@pytest.mark.parametrize(("option", "value"), [("--port", "70000"), ("--port", "65536"), ("--http-port", "65536")])
def test_serve_refuses_a_port_above_65535_as_usage(option: str, value: str) -> None:
    result = run("serve", "--port", "0", "--http-port", "0", option, value, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr and option in result.stderr and "must be at most 65535" in result.stderr


def test_port_options_take_every_port_and_timeout_takes_finite_seconds() -> None:
    from pywebtransport.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve", "--port", "65535", "--http-port", "0"]).port == 65535
    assert parser.parse_args(["connect", "https://h/x", "--timeout", "0.5"]).timeout == 0.5
    assert parser.parse_args(["connect", "https://h/x"]).timeout == 10.0


def test_connect_to_nothing_is_one_clear_error_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = run("connect", f"https://127.0.0.1:{port}/x", "--insecure", "--timeout", "0.5", "--message", "hi")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


class LineReader:
    """Lines of a child's pipe, read by a thread so that a test can wait for one with a timeout."""

    def __init__(self, pipe: object) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        def pump() -> None:
            for line in pipe:  # type: ignore[attr-defined]
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float = 20) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout}s; so far: {self.seen}") from None
        if line is None:
            raise AssertionError(f"the pipe ended; so far: {self.seen}")
        self.seen.append(line)
        return line

    def until(self, needle: str, timeout: float = 30) -> list[str]:
        banner = []
        while needle not in (line := self.next(timeout)):
            banner.append(line)
        return [*banner, line]


@dataclass
class Served:
    url: str
    cert_hash: str
    banner: str


@contextmanager
def serving(*args: str) -> Iterator[Served]:
    """``python -m pywebtransport serve --port 0 ...`` in a subprocess, stopped afterwards."""
    server = subprocess.Popen([sys.executable, "-m", "pywebtransport", "serve", "--port", "0", "--http-port", "0",
                               *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = "\n".join(LineReader(server.stdout).until("Ctrl-C"))
        url = re.search(r"URL: +(\S+)", banner)
        digest = re.search(r"certificate SHA-256: ([0-9a-f]{64})", banner)
        assert url and digest, banner
        yield Served(url.group(1), digest.group(1), banner)
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: the server closes its sessions on the way out
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def echo_server() -> Iterator[Served]:
    with serving() as served:
        yield served


def test_version_prints_the_package_version() -> None:
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"pywebtransport {pywebtransport.__version__}"


def test_demo_with_zero_round_trips_skips_latency_and_succeeds() -> None:
    result = run("demo", "--round-trips", "0", "--bulk-mib", "0", "--json")
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout)
    assert numbers["stream_rtt_us"] is None and numbers["throughput_mib_s"] is None
    assert numbers["server_saw_close"] == {"code": 0, "reason": "demo done"}


def test_demo_refuses_a_negative_count_as_usage() -> None:
    result = run("demo", "--round-trips", "-1")
    assert result.returncode == 2 and "must be at least 0" in result.stderr


def test_demo_shows_progress_on_a_terminal() -> None:
    import pty

    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # read while the child writes, so a full terminal buffer never blocks it
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        child = subprocess.run([sys.executable, "-m", "pywebtransport", "demo", "--round-trips", "20",
                                "--bulk-mib", "1"], stdout=subprocess.PIPE, stderr=follower, text=True, timeout=90)
    finally:
        os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    assert child.returncode == 0
    progress = b"".join(chunks).decode()
    assert "round trips: 40/40" in progress
    assert "sent: 16/16 x 64 KiB" in progress
    assert "round trips:" not in child.stdout  # progress goes to the terminal on stderr only


def test_demo_prints_no_progress_when_piped() -> None:
    result = run("demo", "--round-trips", "5", "--bulk-mib", "1")
    assert result.returncode == 0, result.stderr
    assert "round trips:" not in result.stderr and "\r" not in result.stderr


def test_serve_and_connect_round_trip_with_messages(echo_server: Served) -> None:
    assert f"connect {echo_server.url} --cert-hash {echo_server.cert_hash}" in echo_server.banner
    streams = run("connect", echo_server.url, "--cert-hash", echo_server.cert_hash, "--message", "one",
                  "--message", "two")
    assert streams.returncode == 0, streams.stderr
    assert streams.stdout.splitlines()[1:] == ["one", "two"]
    datagrams = run("connect", echo_server.url, "--insecure", "--datagram", stdin="alpha\nbeta\n")
    assert datagrams.returncode == 0, datagrams.stderr
    assert sorted(datagrams.stdout.splitlines()[1:]) == ["alpha", "beta"]


@pytest.mark.parametrize("mode", [[], ["--datagram"]], ids=["streams", "datagrams"])
def test_connect_answers_each_line_before_the_next_is_written(echo_server: Served, mode: list[str]) -> None:
    client = subprocess.Popen([sys.executable, "-m", "pywebtransport", "connect", echo_server.url, "--cert-hash",
                               echo_server.cert_hash, *mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        assert client.stdin is not None
        out = LineReader(client.stdout)
        assert out.next().startswith(f"connected to {echo_server.url}")
        for word in ("first", "second line", "third"):
            client.stdin.write(word + "\n")
            client.stdin.flush()
            # stdin is still open: a client that waited for EOF would time out here.
            assert out.next() == word
        client.stdin.close()
        assert client.wait(timeout=20) == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


def test_connect_stops_with_an_error_when_the_server_goes_away() -> None:
    with serving() as served:
        client = subprocess.Popen([sys.executable, "-m", "pywebtransport", "connect", served.url, "--cert-hash",
                                   served.cert_hash], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        try:
            assert client.stdin is not None
            out = LineReader(client.stdout)
            assert out.next().startswith("connected to")
            client.stdin.write("still there?\n")
            client.stdin.flush()
            assert out.next() == "still there?"
        except BaseException:
            client.kill()
            client.wait()
            raise
    try:
        status = client.wait(timeout=30)
        assert client.stderr is not None
        error = client.stderr.read()
        assert status == 1, error
        assert error.startswith("error: ") and "closed" in error
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


def test_connect_without_trust_hints_at_cert_hash_and_insecure(echo_server: Served) -> None:
    result = run("connect", echo_server.url, "--message", "hi", "--timeout", "5")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "--cert-hash" in result.stderr and "--insecure" in result.stderr


def test_connect_with_a_wrong_cert_hash_says_so_in_one_line(echo_server: Served) -> None:
    # The engine's own ERROR log of the mismatch came before the error line, saying it twice.
    result = run("connect", echo_server.url, "--cert-hash", "00" * 32, "--message", "hi", "--timeout", "10")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "matches none of the configured server_certificate_hashes" in result.stderr


@pytest.mark.parametrize("bad", ["zz", "abc", "00" * 31, "g" * 64])
def test_connect_with_a_malformed_cert_hash_is_a_usage_error(bad: str) -> None:
    result = run("connect", "https://127.0.0.1:4433/echo", "--cert-hash", bad, "--message", "hi")
    assert result.returncode == 2
    assert "64 hex digits" in result.stderr and "fromhex" not in result.stderr


def test_connect_accepts_a_cert_hash_with_colons(echo_server: Served) -> None:
    digest = echo_server.cert_hash
    colons = ":".join(digest[i:i + 2] for i in range(0, 64, 2)).upper()
    result = run("connect", echo_server.url, "--cert-hash", colons, "--message", "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["x"]


@pytest.mark.parametrize("given", [["--cert", "cert.pem"], ["--key", "key.pem"]], ids=["cert-only", "key-only"])
def test_serve_refuses_cert_without_key_and_key_without_cert(given: list[str]) -> None:
    result = run("serve", "--port", "0", "--http-port", "0", *given, timeout=30)
    assert result.returncode == 2
    assert "--cert and --key go together" in result.stderr


def test_serve_on_ipv6_prints_a_bracketed_url_that_connect_accepts() -> None:
    with serving("--host", "::1") as served:
        assert re.fullmatch(r"https://\[::1\]:\d+/echo", served.url), served.banner
        result = run("connect", served.url, "--cert-hash", served.cert_hash, "--message", "over ipv6")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[1:] == ["over ipv6"]


def _source_copy_without_extensions(tmp_path: Path) -> Path:
    """A checkout-like directory whose ``pywebtransport/`` has no compiled modules."""
    package = Path(pywebtransport.__file__).parent
    shutil.copytree(package, tmp_path / "pywebtransport",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    return tmp_path


def test_cli_from_a_tree_without_extensions_runs_the_compiled_copy(tmp_path: Path) -> None:
    """``python -m pywebtransport`` in a source tree that was never built in place."""
    tree = _source_copy_without_extensions(tmp_path)
    result = subprocess.run([sys.executable, "-m", "pywebtransport", "demo", "--round-trips", "1", "--bulk-mib", "0",
                             "--json"], cwd=tree, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    implementation = json.loads(result.stdout)["implementation"]
    if NO_EXTENSIONS:  # the twins were asked for: no re-run, no warning
        assert implementation == "python" and result.stderr == ""
    else:
        assert implementation == "cython", result.stderr
        assert "has no compiled _wire modules; running the installed copy" in result.stderr


def test_cli_says_loudly_when_it_falls_back_to_the_pure_twins(tmp_path: Path) -> None:
    tree = _source_copy_without_extensions(tmp_path)
    env = {**os.environ, "PYWEBTRANSPORT_CLI_REEXEC": "1"}  # as if no compiled copy could be found
    env.pop("PYWEBTRANSPORT_NO_EXTENSIONS", None)
    result = subprocess.run([sys.executable, "-m", "pywebtransport", "demo", "--round-trips", "1", "--bulk-mib", "0",
                             "--json"], cwd=tree, capture_output=True, text=True, timeout=90, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["implementation"] == "python"
    assert "WARNING: running the PURE-PYTHON _wire twins" in result.stderr


def test_serve_parses_workers_and_defaults_to_one() -> None:
    from pywebtransport.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve"]).workers == 1
    assert parser.parse_args(["serve", "--workers", "3"]).workers == 3


@pytest.mark.parametrize("workers", ["0", "two"])
def test_serve_refuses_a_worker_count_below_one_as_usage(workers: str) -> None:
    result = run("serve", "--port", "0", "--http-port", "0", "--workers", workers, timeout=30)
    assert result.returncode == 2 and "--workers" in result.stderr, result.stderr


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _serve_in_background(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pywebtransport", "serve", "--port", "0", "--http-port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.skipif(sys.platform != "linux", reason="several processes share a UDP port only on Linux")
async def test_serve_with_two_workers_echoes_and_closes_sessions_cleanly_on_sigterm() -> None:
    import asyncio

    from pywebtransport.client import WebTransportClient
    from pywebtransport.config import ClientConfig

    server = _serve_in_background("--workers", "2")
    try:
        lines = LineReader(server.stdout)
        banner = "\n".join(await asyncio.to_thread(lines.until, "Ctrl-C"))
        pids = re.search(r"\(UDP\), 2 workers \(pids (\d+), (\d+)\)$", banner, re.M)
        url = re.search(r"URL: +(\S+)", banner)
        digest = re.search(r"certificate SHA-256: ([0-9a-f]{64})", banner)
        assert pids and url and digest, banner
        workers = {int(pids.group(1)), int(pids.group(2))}
        assert len(workers) == 2 and server.pid not in workers
        result = await asyncio.to_thread(run, "connect", url.group(1), "--cert-hash", digest.group(1),
                                         "--message", "to whichever worker")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[1:] == ["to whichever worker"]
        config = ClientConfig(server_certificate_hashes=[bytes.fromhex(digest.group(1))], connect_timeout=20)
        async with WebTransportClient(config=config) as client:
            sessions = [await client.connect(url.group(1)) for _ in range(4)]
            server.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in sessions)), 30)
            assert {s.close_code for s in sessions} == {0}
        assert await asyncio.wait_for(asyncio.to_thread(server.wait), 30) == 0
        await asyncio.to_thread(lines.until, "SIGTERM: closing the sessions")
        assert all(_gone(pid) for pid in workers)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--workers forks on Linux only")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_the_key_of_another_certificate_says_so_in_one_line(tmp_path: Path, workers: str) -> None:
    # With --workers every worker failed on its own, each with a traceback, and the last line
    # named no cause; the files are now checked once, before any worker starts.
    one = pywebtransport.utils.generate_self_signed_cert("localhost", output_dir=tmp_path / "one")
    two = pywebtransport.utils.generate_self_signed_cert("localhost", output_dir=tmp_path / "two")
    result = run("serve", "--port", "0", "--http-port", "0", "--cert", str(one.cert_path), "--key",
                 str(two.key_path), "--workers", workers, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "does not belong to the certificate" in result.stderr
