"""Wire benchmarks: the compiled ``_wire`` modules against their pure-Python twins.

Every workload is defined once here and used twice: by ``python -m benchmarks wire`` (an
in-process timer with no pytest) and by the pytest-benchmark suite in
``test_bench_wire.py``. A workload is built for one implementation and returns a callable
doing ``ops`` operations per call, so both harnesses report nanoseconds per operation.

The inputs are deterministic (seeded) so that runs and machines compare.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from pywebtransport import constants as c

__all__ = [
    "TARGETS",
    "WORKLOADS",
    "Measurement",
    "Workload",
    "build_capsule_chunk",
    "build_frame_chunk",
    "implementations",
    "machine_info",
    "measure",
    "run_wire",
]

CHUNK_SIZE = 64 * 1024
VARINT_COUNT = 10_000

#: The issue's acceptance bar: compiled at least this many times faster than pure.
TARGETS: dict[str, float] = {
    "varint decode (Reader loop)": 8.0,
    "varint decode (decode_varint)": 8.0,
    "frame parse 64 KiB": 8.0,
    "capsule parse 64 KiB": 8.0,
}


@dataclass(frozen=True)
class Workload:
    """One operation to time: ``build(impl)`` returns ``(callable, ops per call)``."""

    name: str
    unit: str
    build: Callable[[SimpleNamespace], tuple[Callable[[], object], int]]


@dataclass
class Measurement:
    """ns per operation of one workload on each implementation (None when not run)."""

    name: str
    unit: str
    ns: dict[str, float | None] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """pure / compiled: how many times faster the compiled module is."""
        pure, compiled = self.ns.get("python"), self.ns.get("cython")
        if not pure or not compiled:
            return None
        return pure / compiled

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        target = TARGETS.get(self.name)
        return {
            "operation": self.name,
            "unit": self.unit,
            "pure_ns_per_op": _round(self.ns.get("python")),
            "compiled_ns_per_op": _round(self.ns.get("cython")),
            "ratio": None if ratio is None else round(ratio, 2),
            "target_ratio": target,
            "target_met": None if ratio is None or target is None else ratio >= target,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ---------------------------------------------------------------------------- inputs

def _varint_values(rng: random.Random, count: int) -> list[int]:
    """A mix of all four varint lengths, weighted toward the short ones as on the wire."""
    bounds = ((0x3F, 5), (0x3FFF, 3), (0x3FFFFFFF, 1), (c.VARINT_MAX, 1))
    population = [bound for bound, weight in bounds for _ in range(weight)]
    return [rng.randint(0, rng.choice(population)) for _ in range(count)]


def _grease(rng: random.Random) -> int:
    """A reserved 0x1f * N + 0x21 code point (RFC 9114 §7.2.8, RFC 9297 §3.2)."""
    return 0x1F * rng.randint(0, 0x3FFFFFFF) + 0x21


def build_frame_chunk(encode_frame: Callable[[int, bytes], bytes], size: int = CHUNK_SIZE,
                      seed: int = 1) -> tuple[bytes, int]:
    """About ``size`` bytes of whole HEADERS/DATA/SETTINGS/GOAWAY and grease frames.

    Sizes follow what a request stream and a control stream carry: DATA up to a packet's
    worth, small HEADERS blocks, a SETTINGS frame now and then, reserved frames. Returns
    the bytes and the number of frames in them.
    """
    rng = random.Random(seed)
    parts: list[bytes] = []
    total = frames = 0
    while total < size:
        kind = rng.random()
        if kind < 0.55:
            frame = encode_frame(c.FRAME_DATA, rng.randbytes(rng.randint(1, 1400)))
        elif kind < 0.80:
            frame = encode_frame(c.FRAME_HEADERS, rng.randbytes(rng.randint(16, 200)))
        elif kind < 0.88:
            settings = {0x01: 65536, 0x06: 16384, 0x07: 100, 0x33: 1, 0x2B603742: 1,
                        _grease(rng): rng.randint(0, 1 << 30)}
            payload = b"".join(_varint_bytes(k) + _varint_bytes(v) for k, v in settings.items())
            frame = encode_frame(c.FRAME_SETTINGS, payload)
        elif kind < 0.90:
            frame = encode_frame(c.FRAME_GOAWAY, _varint_bytes(rng.randrange(0, 1 << 20, 4)))
        else:
            frame = encode_frame(_grease(rng), rng.randbytes(rng.randint(0, 64)))
        parts.append(frame)
        total += len(frame)
        frames += 1
    return b"".join(parts), frames


def build_capsule_chunk(encode_capsule: Callable[[int, bytes], bytes], size: int = CHUNK_SIZE,
                        seed: int = 2) -> tuple[bytes, int]:
    """About ``size`` bytes of DATAGRAM, flow-control, DRAIN and grease capsules.

    Grease capsules carry 19-56 random bytes, as Chromium's do. Returns the bytes and the
    number of capsules in them.
    """
    rng = random.Random(seed)
    varint_types = (c.WT_CAPSULE_MAX_DATA, c.WT_CAPSULE_MAX_STREAMS_BIDI, c.WT_CAPSULE_MAX_STREAMS_UNI,
                    c.WT_CAPSULE_DATA_BLOCKED, c.WT_CAPSULE_STREAMS_BLOCKED_BIDI,
                    c.WT_CAPSULE_STREAMS_BLOCKED_UNI)
    parts: list[bytes] = []
    total = capsules = 0
    while total < size:
        kind = rng.random()
        if kind < 0.45:
            capsule = encode_capsule(c.CAPSULE_DATAGRAM, rng.randbytes(rng.randint(1, 1200)))
        elif kind < 0.80:
            capsule = encode_capsule(rng.choice(varint_types), _varint_bytes(rng.randint(0, 1 << 40)))
        elif kind < 0.85:
            capsule = encode_capsule(c.WT_CAPSULE_DRAIN_SESSION, b"")
        else:
            capsule = encode_capsule(_grease(rng), rng.randbytes(rng.randint(19, 56)))
        parts.append(capsule)
        total += len(capsule)
        capsules += 1
    return b"".join(parts), capsules


def _varint_bytes(value: int) -> bytes:
    # Local encoder for building inputs, so that inputs never depend on the code under test.
    if value <= 0x3F:
        return value.to_bytes(1, "big")
    if value <= 0x3FFF:
        return (value | 0x4000).to_bytes(2, "big")
    if value <= 0x3FFFFFFF:
        return (value | 0x80000000).to_bytes(4, "big")
    return (value | 0xC000000000000000).to_bytes(8, "big")


def _encode_tlv(kind: int, payload: bytes) -> bytes:
    return _varint_bytes(kind) + _varint_bytes(len(payload)) + payload


# ---------------------------------------------------------------------------- workloads

def _varint_encode(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    values = _varint_values(random.Random(3), 1000)
    encode = w.buffer.encode_varint

    def run() -> None:
        for value in values:
            encode(value)

    return run, len(values)


def _varint_reader(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    data = b"".join(_varint_bytes(v) for v in _varint_values(random.Random(4), VARINT_COUNT))
    reader_cls = w.buffer.Reader
    count = VARINT_COUNT

    def run() -> None:
        pull = reader_cls(data).pull_varint
        for _ in range(count):
            pull()

    return run, count


def _varint_decode(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    data = b"".join(_varint_bytes(v) for v in _varint_values(random.Random(5), VARINT_COUNT))
    decode = w.buffer.decode_varint
    count = VARINT_COUNT

    def run() -> None:
        offset = 0
        for _ in range(count):
            _, offset = decode(data, offset)

    return run, count


def _frame_parse(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    chunk, _ = build_frame_chunk(_encode_tlv)
    parser = w.frames.FrameParser()
    feed = parser.feed
    # Every chunk ends on a frame boundary, so one parser can take it again and again.
    return (lambda: feed(chunk)), 1


def _frame_encode(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    rng = random.Random(6)
    headers = [rng.randbytes(rng.randint(16, 200)) for _ in range(50)]
    data_lengths = [rng.randint(1, 1400) for _ in range(50)]
    encode_frame = w.frames.encode_frame
    encode_header = w.frames.encode_frame_header
    headers_type, data_type = c.FRAME_HEADERS, c.FRAME_DATA

    def run() -> None:
        for payload in headers:
            encode_frame(headers_type, payload)
        for length in data_lengths:
            encode_header(data_type, length)

    return run, len(headers) + len(data_lengths)


def _settings_roundtrip(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    settings = {0x01: 65536, 0x06: 16384, 0x07: 100, 0x08: 1, 0x33: 1, 0xFFD277: 1, 0x2B603742: 1,
                0xC671706A: 100, 0x14E9CD29: 100, 0x2C7CF000: 1, 0x2B61: 1 << 20, 0x2B64: 100, 0x2B65: 100}
    encode, decode = w.frames.encode_settings, w.frames.decode_settings

    def run() -> None:
        decode(encode(settings))

    return run, 1


def _capsule_parse(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    chunk, _ = build_capsule_chunk(_encode_tlv)
    feed = w.capsules.CapsuleParser().feed
    return (lambda: feed(chunk)), 1


def _datagram_encode(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    rng = random.Random(7)
    items = [(rng.randrange(0, 1 << 16, 4), rng.randbytes(rng.randint(1, 1200))) for _ in range(500)]
    encode = w.datagrams.encode_datagram

    def run() -> None:
        for session_id, payload in items:
            encode(session_id, payload)

    return run, len(items)


def _datagram_decode(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    rng = random.Random(8)
    wire = [_varint_bytes(rng.randrange(0, 1 << 14)) + rng.randbytes(rng.randint(1, 1200)) for _ in range(500)]
    decode = w.datagrams.decode_datagram

    def run() -> None:
        for data in wire:
            decode(data)

    return run, len(wire)


def _ring(w: SimpleNamespace) -> tuple[Callable[[], object], int]:
    rng = random.Random(9)
    payloads = [rng.randbytes(rng.randint(1, 1200)) for _ in range(1000)]
    # A reader slower than the network: 8 pushes for every 6 pops, so the ring fills up
    # and drops the oldest entries, then the rest is drained. Small bounds make it overflow.
    ring = w.datagrams.DatagramRing(max_count=128, max_bytes=64 * 1024)
    push, pop = ring.push, ring.pop

    def run() -> int:
        pops = 0
        for i, payload in enumerate(payloads, 1):
            push(payload)
            if i % 8 == 0:
                for _ in range(6):
                    pop()
                pops += 6
        while pop() is not None:
            pops += 1
        return pops + 1  # the final pop that found the ring empty

    # The ring ends empty, so every call does the same pushes and pops: count them once.
    return run, len(payloads) + run()


#: Every wire workload, in report order. Names are the operation column of the report.
WORKLOADS: tuple[Workload, ...] = (
    Workload("varint encode", "per varint", _varint_encode),
    Workload("varint decode (Reader loop)", "per varint", _varint_reader),
    Workload("varint decode (decode_varint)", "per varint", _varint_decode),
    Workload("frame parse 64 KiB", "per 64 KiB feed", _frame_parse),
    Workload("frame encode", "per frame", _frame_encode),
    Workload("SETTINGS encode+decode", "per round trip", _settings_roundtrip),
    Workload("capsule parse 64 KiB", "per 64 KiB feed", _capsule_parse),
    Workload("datagram encode", "per datagram", _datagram_encode),
    Workload("datagram decode", "per datagram", _datagram_decode),
    Workload("DatagramRing push/pop", "per push or pop", _ring),
)


# ---------------------------------------------------------------------------- timing

def measure(fn: Callable[[], object], ops: int, *, repeats: int, min_time_ns: int) -> float:
    """Best-of-``repeats`` nanoseconds per operation.

    The loop count is calibrated first (doubling until one repeat takes ``min_time_ns``),
    so fast and slow operations are both timed over a span the clock resolves well. The
    garbage collector is off while timing, as in ``timeit``.
    """
    loops = 1
    while True:
        elapsed = _time_loops(fn, loops)
        if elapsed >= min_time_ns or loops >= 1 << 24:
            break
        # Aim straight for the target once there is a usable reading, else double.
        loops = loops * 2 if elapsed < 1000 else max(loops * 2, int(loops * min_time_ns / elapsed * 1.1))
    best = elapsed
    for _ in range(repeats - 1):
        best = min(best, _time_loops(fn, loops))
    return best / (loops * ops)


def _time_loops(fn: Callable[[], object], loops: int) -> int:
    enabled = gc.isenabled()
    gc.disable()
    try:
        clock = time.perf_counter_ns
        start = clock()
        for _ in range(loops):
            fn()
        return clock() - start
    finally:
        if enabled:
            gc.enable()


def implementations() -> dict[str, SimpleNamespace | str]:
    """Each implementation's module namespace, or why it could not be loaded."""
    from pywebtransport._wire import load_implementation

    found: dict[str, SimpleNamespace | str] = {}
    for kind in ("python", "cython"):
        try:
            found[kind] = load_implementation(kind)
        except ImportError as exc:
            found[kind] = str(exc)
    return found


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    from pywebtransport._wire import IMPLEMENTATION

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "IMPLEMENTATION": IMPLEMENTATION,
    }


def run_wire(*, quick: bool = False, only: str | None = None,
             progress: Callable[[str], None] | None = None) -> tuple[list[Measurement], dict[str, Any]]:
    """Time every workload on both implementations; returns rows and run settings.

    ``quick`` trades precision for time (a smoke run: ~1-2 s); ``only`` keeps the
    workloads whose name contains that text.
    """
    repeats, min_time_ns = (3, 5_000_000) if quick else (7, 100_000_000)
    impls = implementations()
    rows: list[Measurement] = []
    for workload in WORKLOADS:
        if only and only.lower() not in workload.name.lower():
            continue
        row = Measurement(workload.name, workload.unit)
        for kind, impl in impls.items():
            if isinstance(impl, str):
                row.ns[kind] = None
                continue
            fn, ops = workload.build(impl)
            row.ns[kind] = measure(fn, ops, repeats=repeats, min_time_ns=min_time_ns)
        rows.append(row)
        if progress is not None:
            progress(workload.name)
    settings = {
        "repeats": repeats,
        "min_time_per_repeat_ms": min_time_ns / 1e6,
        "statistic": "best of repeats, ns per operation",
        "missing": {kind: why for kind, why in impls.items() if isinstance(why, str)},
        "argv": sys.argv[1:],
    }
    return rows, settings
