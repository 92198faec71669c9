"""The ``python -m pywebtransport`` command, run as a user would: in a subprocess."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

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


def test_cert_refuses_a_validity_browsers_reject(tmp_path: Path) -> None:
    result = run("cert", "--out", str(tmp_path), "--days", "30")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "14" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_exit_2_with_usage() -> None:
    result = run("frobnicate")
    assert result.returncode == 2 and "usage:" in result.stderr


def test_connect_to_nothing_is_one_clear_error_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = run("connect", f"https://127.0.0.1:{port}/x", "--insecure", "--timeout", "0.5", "--message", "hi")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_and_connect_round_trip_over_streams_and_datagrams() -> None:
    port = _free_udp_port()
    server = subprocess.Popen([sys.executable, "-m", "pywebtransport", "serve", "--port", str(port),
                               "--http-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        banner = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            banner.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(banner)
        digest = re.search(r"certificate SHA-256: ([0-9a-f]{64})", text)
        assert digest, text
        url = f"https://127.0.0.1:{port}/echo"
        streams = run("connect", url, "--cert-hash", digest.group(1), "--message", "one", "--message", "two")
        assert streams.returncode == 0, streams.stderr
        assert streams.stdout.splitlines()[1:] == ["one", "two"]
        datagrams = run("connect", url, "--insecure", "--datagram", stdin="alpha\nbeta\n")
        assert datagrams.returncode == 0, datagrams.stderr
        assert datagrams.stdout.splitlines()[1:] == ["alpha", "beta"]
    finally:
        server.terminate()
        server.wait(timeout=10)
