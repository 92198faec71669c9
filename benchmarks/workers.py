"""``python -m benchmarks workers``: one server in 1 and in 2 processes, measured in one run.

For each QUIC backend and worker count the runner starts the benchmark server with
``ServerApp.run(workers=N)`` (``benchmarks.workers_server``) and measures, with the same
load processes (``benchmarks.workers_load``, two by default, so that the clients are not
held to one core):

- concurrent connects: ``connects`` connects started at once (spread over the load
  processes), each timed from its start to its session being ready; p50, p99 (a connect
  that failed counts as slower than any that completed), the share that completed, and
  handshakes per second (completed connects over the span from the first start to the
  last completion), and the CPU time per connect of the server's workers (from /proc) and
  of the load processes: together with the number of cores, they bound how fast a burst
  can complete at all;
- aggregate bulk: ``bulk_connections`` sessions, each uploading ``bulk_bytes`` on one
  stream at the same time; MiB/s over the span, and how many sessions each worker served
  (the kernel spreads them by client address, so the split varies).

The configurations are interleaved round by round; with several rounds each number is the
median. The server's limits are raised (``max_concurrent_handshakes``, and its
``connect_timeout`` to the clients' ``connect_timeout``) so that a burst is measured rather
than refused or abandoned. Clients and server share the machine: on a machine with few
cores the load processes compete with the workers, which the ratios include.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

__all__ = ["P99_TARGET_S", "WorkersOptions", "backend_unavailable", "cpu_bound", "format_table", "run_workers"]

ROOT = Path(__file__).resolve().parent.parent
#: The issue's bar: 1,000 concurrent connects complete with p99 under this with 2 workers.
P99_TARGET_S = 1.0
TARGET_CONNECTS = 1000
_STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class WorkersOptions:
    """What to run: backends, worker counts, the size of each workload, rounds, output."""

    backends: tuple[str, ...] = ("aioquic", "qh3")
    workers: tuple[int, ...] = (1, 2)
    connects: int = TARGET_CONNECTS
    load_processes: int = 2
    bulk_connections: int = 8
    bulk_bytes: int = 8 << 20
    connect_timeout: float = 120.0
    rounds: int = 1
    quick: bool = False
    json_path: str | None = None

    def quickened(self) -> WorkersOptions:
        """The smoke-test size: a few connects and small uploads."""
        return replace(self, connects=min(self.connects, 20), bulk_connections=2, bulk_bytes=256 << 10, quick=True)


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or None."""
    try:
        from pywebtransport.config import ClientConfig

        ClientConfig(quic_backend=backend)
    except Exception as exc:
        return f"backend not available ({type(exc).__name__}: {exc})"
    return None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Lines:
    """A child's stdout lines, read by a thread, so that the runner can wait with a deadline."""

    def __init__(self, pipe: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            for line in pipe:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float) -> str:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output within {timeout:g} s") from None
        if line is None:
            raise RuntimeError("the process ended early")
        return line


class _Server:
    """The benchmark server in ``workers`` processes, started and stopped around one measurement."""

    def __init__(self, backend: str, workers: int, cert: Any, connect_timeout: float) -> None:
        command = [sys.executable, "-m", "benchmarks.workers_server", "--workers", str(workers), "--cert",
                   str(cert.cert_path), "--key", str(cert.key_path), "--backend", backend,
                   "--connect-timeout", str(connect_timeout)]
        self.process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        lines = _Lines(self.process.stdout)
        self.pids: list[int] = []
        ports = set()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        try:
            while len(self.pids) < workers:
                words = lines.next(max(0.1, deadline - time.monotonic())).split()
                if len(words) == 3 and words[0] == "ready":
                    self.pids.append(int(words[1]))
                    ports.add(int(words[2]))
        except BaseException:
            self.close()
            raise
        self.port = ports.pop()

    def cpu_seconds(self) -> float | None:
        """CPU time the workers used so far (user + system, from /proc), or None without /proc."""
        total = 0.0
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return total

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _load(mode: str, shares: list[list[str]], port: int, cert: Any, backend: str,
          timeout: float) -> list[dict[str, Any]]:
    """Run one load process per share at once (released together); their JSON results."""
    processes = []
    try:
        for extra in shares:
            command = [sys.executable, "-m", "benchmarks.workers_load", mode, "--port", str(port), "--cert-hash",
                       cert.sha256.hex(), "--backend", backend, "--timeout", str(timeout), *extra]
            process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True)
            assert process.stdout is not None
            processes.append((process, _Lines(process.stdout)))
        for _, lines in processes:
            if (line := lines.next(_STARTUP_TIMEOUT)) != "ready":
                raise RuntimeError(f"a load process said {line!r} instead of ready")
        for process, _ in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process, lines in processes:
            results.append(json.loads(lines.next(timeout + 300)))
            process.wait(timeout=60)
        return results
    finally:
        for process, _ in processes:
            if process.poll() is None:
                process.kill()
            process.wait()


def _split(total: int, parts: int) -> list[int]:
    """``total`` in at most ``parts`` near-equal positive shares."""
    shares = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    return [share for share in shares if share]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))]


def _measure_connects(server: _Server, cert: Any, backend: str, options: WorkersOptions) -> dict[str, Any]:
    shares = [["--count", str(n)] for n in _split(options.connects, options.load_processes)]
    cpu_before = server.cpu_seconds()
    results = _load("connect", shares, server.port, cert, backend, options.connect_timeout)
    cpu_after = server.cpu_seconds()
    latencies = [x for r in results for x in r["latencies"]]
    errors: dict[str, int] = {}
    for r in results:
        for key, count in r["errors"].items():
            errors[key] = errors.get(key, 0) + count
    attempted = sum(r["count"] for r in results)
    everything = latencies + [float("inf")] * (attempted - len(latencies))  # a failure is slower than any success
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    p99 = _percentile(everything, 0.99)
    # CPU per attempted connect, both ends: what bounds a burst on a machine with few cores.
    server_cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / attempted * 1e3
    return {"attempted": attempted, "completed": len(latencies), "completed_pct": 100.0 * len(latencies) / attempted,
            "p50_ms": _finite(_percentile(everything, 0.5) * 1e3), "p99_ms": _finite(p99 * 1e3),
            "handshakes_per_s": len(latencies) / span if span > 0 and latencies else 0.0, "seconds": span,
            "server_cpu_ms_per_connect": server_cpu,
            "client_cpu_ms_per_connect": sum(r["cpu"] for r in results) / attempted * 1e3, "errors": errors}


def _measure_bulk(server: _Server, cert: Any, backend: str, options: WorkersOptions) -> dict[str, Any]:
    shares = [["--connections", str(n), "--bytes", str(options.bulk_bytes)]
              for n in _split(options.bulk_connections, options.load_processes)]
    results = _load("bulk", shares, server.port, cert, backend, options.connect_timeout)
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    total = sum(r["bytes"] for r in results)
    pids = [pid for r in results for pid in r["pids"]]
    return {"connections": len(pids), "bytes": total, "mib_s": total / (1 << 20) / span, "seconds": span,
            "sessions_per_worker": sorted((pids.count(pid) for pid in server.pids), reverse=True)}


def _finite(value: float) -> float | None:
    return None if value == float("inf") else value


def _one(backend: str, workers: int, cert: Any, options: WorkersOptions) -> dict[str, Any]:
    server = _Server(backend, workers, cert, options.connect_timeout)
    try:
        return {"server_pids": server.pids, "connect": _measure_connects(server, cert, backend, options),
                "bulk": _measure_bulk(server, cert, backend, options)}
    finally:
        server.close()


#: The numbers of one configuration: (section, key, label, unit).
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("connect", "p50_ms", "concurrent connects p50", "ms"),
    ("connect", "p99_ms", "concurrent connects p99", "ms"),
    ("connect", "completed_pct", "concurrent connects completed", "%"),
    ("connect", "handshakes_per_s", "handshakes/s (concurrent)", "1/s"),
    ("connect", "server_cpu_ms_per_connect", "server CPU per connect (all workers)", "ms"),
    ("connect", "client_cpu_ms_per_connect", "client CPU per connect", "ms"),
    ("bulk", "mib_s", "aggregate bulk upload", "MiB/s"),
)
_HIGHER_IS_BETTER = {"completed_pct", "handshakes_per_s", "mib_s"}


def _median_result(rounds: list[dict[str, Any] | str]) -> dict[str, Any]:
    """One configuration over its rounds: the median of each number, connect errors summed,
    each round's pids and bulk split kept."""
    done = [r for r in rounds if not isinstance(r, str)]
    failures = [r for r in rounds if isinstance(r, str)]
    if not done:
        return {"na": failures[0] if failures else "not run"}
    merged: dict[str, Any] = {"rounds": len(done), "failed_rounds": failures,
                              "server_pids": [r["server_pids"] for r in done]}
    for section in ("connect", "bulk"):
        merged[section] = {}
        for key in done[0][section]:
            values = [r[section][key] for r in done]
            if key in ("p50_ms", "p99_ms"):  # None: more failed than the percentile allows, slower than any
                middle = statistics.median(float("inf") if v is None else v for v in values)
                merged[section][key] = _finite(middle)
            elif key == "errors":
                errors: dict[str, int] = {}
                for value in values:
                    for error, count in value.items():
                        errors[error] = errors.get(error, 0) + count
                merged[section][key] = errors
            elif key == "sessions_per_worker":
                merged[section][key] = values[0] if len(values) == 1 else values
            elif all(isinstance(v, (int, float)) for v in values):
                merged[section][key] = statistics.median(values)
            else:
                merged[section][key] = None  # no /proc to read the CPU time from
    merged["connect"]["failed_connects"] = sum(r["connect"]["attempted"] - r["connect"]["completed"] for r in done)
    return merged


def _column(backend: str, workers: int) -> str:
    return f"{backend} x{workers}"


def format_table(report: dict[str, Any]) -> str:
    """The results as a Markdown table: one column per backend and worker count, then the
    ratio of the most workers to one worker per backend (above 1 = better)."""
    results = report["results"]
    columns = [c for c in results]
    ratio_pairs = []
    for backend in report["settings"]["backends"]:
        counts = sorted(report["settings"]["workers"])
        if len(counts) > 1:
            ratio_pairs.append((backend, _column(backend, counts[-1]), _column(backend, counts[0])))
    headers = ["row", "unit", *columns, *(f"{backend} x{report['settings']['workers'][-1]} / x1"
                                          for backend, _, _ in ratio_pairs)]
    lines = ["| " + " | ".join(headers) + " |", "|---|---|" + "---:|" * (len(headers) - 2)]
    for section, key, label, unit in ROWS:
        cells = []
        for column in columns:
            cells.append(_cell(_value(results[column], section, key)))
        for _, many, one in ratio_pairs:
            a, b = _value(results[many], section, key), _value(results[one], section, key)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
                cells.append(f"{(a / b if key in _HIGHER_IS_BETTER else b / a):.2f}x")
            else:
                cells.append("-")
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    split = [_split_cell(_value(results[c], "bulk", "sessions_per_worker")) for c in columns]
    lines.append("| bulk sessions per worker | n | " + " | ".join(split) + " |" + " |" * len(ratio_pairs))
    return "\n".join(lines)


def _split_cell(split: list[int] | list[list[int]] | None) -> str:
    """Bulk sessions per worker: ``5 / 3``, or one such per round separated by commas."""
    if not split:
        return "-"
    if isinstance(split[0], list):
        return ", ".join(" / ".join(str(n) for n in one) for one in split if isinstance(one, list))
    return " / ".join(str(n) for n in split)


def _value(result: dict[str, Any], section: str, key: str) -> Any:
    if "na" in result:
        return None
    return result[section].get(key)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list):
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def run_workers(options: WorkersOptions) -> dict[str, Any]:
    """Measure every backend at every worker count, interleaved by round; print and return the report."""
    from benchmarks.wire import machine_info
    from benchmarks.worker import make_certificate
    from pywebtransport import _wire
    from pywebtransport.server.workers import multiprocess_unavailable

    if options.quick:
        options = options.quickened()
    started = time.perf_counter()
    machine = machine_info()
    machine["load_average_at_start"] = _load_average()
    print(f"workers benchmark over UDP loopback: {machine['cores']} cores, Python {machine['python']}, "
          f"_wire {_wire.IMPLEMENTATION}, {options.connects} concurrent connects and {options.bulk_connections} x "
          f"{options.bulk_bytes >> 10} KiB uploads from {options.load_processes} load processes, "
          f"{options.rounds} round(s){', --quick: a smoke run, not a measurement' if options.quick else ''}")
    why_single = multiprocess_unavailable()
    if why_single is not None:
        print(f"WARNING: {why_single}: every worker count below runs one process")
    outcomes: dict[str, list[dict[str, Any] | str]] = {}
    skipped: dict[str, str] = {}
    for backend in options.backends:
        why = backend_unavailable(backend)
        for workers in options.workers:
            outcomes[_column(backend, workers)] = []
            if why is not None:
                skipped[_column(backend, workers)] = why
    with tempfile.TemporaryDirectory(prefix="pywebtransport-bench-workers-") as tmp:
        cert = make_certificate(tmp)
        for r in range(options.rounds):
            order = list(options.workers) if r % 2 == 0 else list(reversed(options.workers))
            for backend in options.backends:
                for workers in order:
                    column = _column(backend, workers)
                    if column in skipped:
                        continue
                    try:
                        outcome: dict[str, Any] | str = _one(backend, workers, cert, options)
                    except Exception as exc:
                        outcome = f"failed: {type(exc).__name__}: {exc}"
                    outcomes[column].append(outcome)
                    print(f"  round {r + 1} {column}: {'ok' if not isinstance(outcome, str) else outcome}",
                          file=sys.stderr, flush=True)
    results: dict[str, dict[str, Any]] = {
        column: ({"na": skipped[column]} if column in skipped else _median_result(rounds))
        for column, rounds in outcomes.items()}
    report: dict[str, Any] = {
        "suite": "workers", "machine": machine, "implementation": _wire.IMPLEMENTATION,
        "multiprocess_unavailable": why_single,
        "settings": {"backends": list(options.backends), "workers": list(options.workers),
                     "connects": options.connects, "load_processes": options.load_processes,
                     "bulk_connections": options.bulk_connections, "bulk_bytes": options.bulk_bytes,
                     "connect_timeout_s": options.connect_timeout, "rounds": options.rounds, "quick": options.quick,
                     "server": "ServerApp.run(workers=N), max_concurrent_handshakes=100000 per worker, "
                               "connect_timeout as the clients'"},
        "results": results, "targets": _targets(results, options)}
    print()
    print(format_table(report))
    for column, result in results.items():
        if "na" in result:
            print(f"  n/a {column}: {result['na']}")
        elif result["connect"]["errors"]:
            print(f"  {column}: {result['connect']['failed_connects']} connects failed over {result['rounds']} "
                  f"round(s): {json.dumps(result['connect']['errors'])[:300]}")
    for target in report["targets"]:
        print(f"  target: {target['text']}")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average_at_end"] = _load_average()
    print(f"load average at start {machine['load_average_at_start']}, at end {_load_average()}")
    print(f"\nfinished in {report['seconds']} s")
    if options.json_path:
        Path(options.json_path).write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {options.json_path}")
    return report


def _load_average() -> list[float] | None:
    """The 1/5/15-minute load averages: on a shared machine they say how noisy a run was."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _targets(results: dict[str, Any], options: WorkersOptions) -> list[dict[str, Any]]:
    """The issue's bar per backend: 1,000 concurrent connects, p99 under 1 s with 2 workers."""
    targets = []
    for backend in options.backends:
        result = results.get(_column(backend, 2))
        if result is None or "na" in result:
            continue
        connect = result["connect"]
        p99 = connect["p99_ms"]
        met: bool | None = p99 is not None and p99 / 1e3 < P99_TARGET_S and connect["completed_pct"] == 100.0
        verdict = "met" if met else "NOT met"
        if options.connects != TARGET_CONNECTS:  # the bar is about 1,000 at once; fewer say nothing about it
            met, verdict = None, f"not judged (measured with {options.connects} connects)"
        shown = "n/a (more than 1% failed)" if p99 is None else f"{p99 / 1e3:.2f} s"
        bound = cpu_bound(connect, options.connects)
        targets.append({"backend": backend, "p99_s": None if p99 is None else p99 / 1e3,
                        "completed_pct": connect["completed_pct"], "met": met, "cpu_bound": bound,
                        "text": f"{backend}: 1,000 concurrent connects with 2 workers, p99 < {P99_TARGET_S:g} s: "
                                f"p99 {shown}, {connect['completed_pct']:.1f}% completed, {verdict}"
                                + ("" if bound is None else f"; {bound['text']}")})
    return targets


def cpu_bound(connect: dict[str, Any], connects: int, cores: int | None = None) -> dict[str, Any] | None:
    """How soon a burst could complete at all on this machine's cores, from the CPU that the
    server's workers and the load processes spent per connect: the last connect cannot finish
    before all of it has run. ``server_only_s`` is the bound if the clients ran elsewhere."""
    server, client = connect.get("server_cpu_ms_per_connect"), connect.get("client_cpu_ms_per_connect")
    cores = cores or os.cpu_count() or 1
    if not isinstance(server, (int, float)) or not isinstance(client, (int, float)):
        return None
    both_s = (server + client) * connects / cores / 1e3
    server_s = server * connects / cores / 1e3
    return {"cores": cores, "both_s": both_s, "server_only_s": server_s,
            "text": f"CPU bound on {cores} cores: {both_s:.2f} s for server and clients together "
                    f"({server:.2f} + {client:.2f} ms per connect), {server_s:.2f} s for the server alone"}
