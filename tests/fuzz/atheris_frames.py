"""Coverage-guided fuzzing of the _wire parsers with atheris; run by hand, not by pytest.

    pip install atheris
    python tests/fuzz/atheris_frames.py -atheris_runs=200000          # both implementations
    python tests/fuzz/atheris_frames.py -max_total_time=600 corpus/    # keep a corpus

The hypothesis suite next to it (``test_fuzz_parsers.py``) checks the same properties on
every CI run; this harness is for long runs that follow coverage into rare paths. The pure
twins are instrumented, so coverage guidance comes from them; the compiled modules run on
the same input, so a crash or a disagreement in either is reported. Any exception that is
not a ``WireError`` subclass, or a buffer above its bound, is a finding.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import atheris

from pywebtransport._wire import load_implementation
from pywebtransport.exceptions import WireError

HEADER_SLACK = 16
MAX_SIZES = (1, 7, 64, 300, 1 << 16)


def _implementations() -> list[SimpleNamespace]:
    found = [load_implementation("python")]
    try:
        found.append(load_implementation("cython"))
    except ImportError as exc:
        print(f"compiled modules unavailable ({exc}); fuzzing the pure twins only", file=sys.stderr)
    return found


# The pure twins are imported here, inside the block, so that atheris instruments them.
with atheris.instrument_imports(include=["pywebtransport._wire"]):
    IMPLEMENTATIONS = _implementations()


def _cuts(fdp: atheris.FuzzedDataProvider, data: bytes) -> list[bytes]:
    pieces: list[bytes] = []
    pos = 0
    for _ in range(fdp.ConsumeIntInRange(0, 16)):
        size = fdp.ConsumeIntInRange(0, 64)
        pieces.append(data[pos : pos + size])
        pos += size
    pieces.append(data[pos:])
    return pieces


def _run_frames(wire: SimpleNamespace, max_size: int, pieces: list[bytes]) -> object:
    parser = wire.frames.FrameParser(max_frame_size=max_size)
    out: list[tuple[int, bytes]] = []
    try:
        for piece in pieces:
            out.extend(parser.feed(piece))
            assert parser.buffered <= max_size + HEADER_SLACK, parser.buffered
    except WireError as exc:
        return type(exc).__name__
    # DATA comes out per feed; join it so that results compare across implementations.
    joined: list[tuple[int, bytes]] = []
    for frame_type, payload in out:
        if frame_type == 0 and joined and joined[-1][0] == 0:
            joined[-1] = (0, joined[-1][1] + payload)
        elif frame_type != 0 or payload:
            joined.append((frame_type, bytes(payload)))
    return joined


def _run_capsules(wire: SimpleNamespace, max_size: int, pieces: list[bytes]) -> object:
    parser = wire.capsules.CapsuleParser(max_capsule_size=max_size)
    out: list[tuple[int, object]] = []
    try:
        for piece in pieces:
            out.extend(parser.feed(piece))
            assert parser.buffered <= max_size + HEADER_SLACK, parser.buffered
    except WireError as exc:
        return type(exc).__name__
    return out


def _run_one_shot(wire: SimpleNamespace, data: bytes) -> object:
    results: list[object] = [wire.frames.read_uni_stream_header(data), wire.frames.read_bidi_stream_header(data)]
    for decode in (wire.frames.decode_settings, wire.datagrams.decode_datagram):
        try:
            results.append(decode(data))
        except WireError as exc:
            results.append(type(exc).__name__)
    return results


def test_one_input(raw: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(raw)
    max_size = MAX_SIZES[fdp.ConsumeIntInRange(0, len(MAX_SIZES) - 1)]
    cut_seed = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 48))
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    pieces = _cuts(atheris.FuzzedDataProvider(cut_seed), data)
    results = [
        (_run_frames(w, max_size, pieces), _run_capsules(w, max_size, pieces), _run_one_shot(w, data))
        for w in IMPLEMENTATIONS
    ]
    if len(results) == 2 and results[0] != results[1]:
        raise AssertionError(f"compiled and pure disagree on {data!r} cut as {pieces!r}:\n"
                             f"  pure:     {results[0]!r}\n  compiled: {results[1]!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
