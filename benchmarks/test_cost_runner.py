"""``python -m benchmarks cost`` works: each operation runs on each stack, callgrind's total is
read, and a tiny run under valgrind gives a positive cost per operation for every column.

Numbers are not checked against any target (speed is reported, not asserted); what is checked
is that the runner measures what it says: the difference of two runs that differ only in the
number of operations.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile

import pytest

from benchmarks.cost import (
    OPS,
    CostOptions,
    CostRow,
    QuicTally,
    collected_instructions,
    format_pattern_table,
    format_table,
    parse_tally,
    quic_package,
    run_cost,
    run_ops,
)
from benchmarks.stacks import STACKS
from benchmarks.worker import make_certificate

QUIC_STACKS = ("ours-aioquic", "ours-qh3", "raw-aioquic", "raw-qh3")


def test_the_callgrind_total_is_read_from_its_last_line() -> None:
    stderr = "==12== Callgrind, a call-graph generating cache profiler\n==12== Events    : Ir\n" \
             "==12== Collected : 2368760871\n==12==\n==12== I   refs:      2,368,760,871\n"
    assert collected_instructions(stderr) == 2368760871
    with pytest.raises(ValueError, match="no 'Collected : N' line"):
        collected_instructions("valgrind: command not found\n")


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("stack", QUIC_STACKS)
def test_every_operation_runs_and_checks_its_answer_on_every_quic_stack(stack: str, op: str) -> None:
    if STACKS[stack]().unavailable() is not None:
        pytest.fail(f"{stack} cannot run here: {STACKS[stack]().unavailable()}")
    with tempfile.TemporaryDirectory() as directory:
        assert asyncio.run(run_ops(stack, op, 3, make_certificate(directory), warm_up=1)) == 3


def test_a_childs_quic_call_counts_are_read_from_its_last_tally_line() -> None:
    stdout = 'noise\nquic-calls {"receive_datagram": 1, "datagrams_to_send": 2}\n' \
             'quic-calls {"receive_datagram": 7, "datagrams_to_send": 9}\n'
    assert parse_tally(stdout) == {"receive_datagram": 7, "datagrams_to_send": 9}
    with pytest.raises(ValueError, match="no 'quic-calls' line"):
        parse_tally("Traceback (most recent call last):\n")


@pytest.mark.parametrize("stack", QUIC_STACKS)
def test_the_tally_counts_the_quic_library_calls_of_every_stack_and_comes_off_again(stack: str) -> None:
    tally = QuicTally(quic_package(stack))
    original = tally._cls.receive_datagram  # noqa: SLF001 - the class the tally wraps
    tally.install()
    try:
        with tempfile.TemporaryDirectory() as directory:
            asyncio.run(run_ops(stack, "datagram_echo", 5, make_certificate(directory), warm_up=1))
    finally:
        tally.remove()
    # A handshake and six echoes: both ends receive and transmit several times each.
    assert tally.calls["receive_datagram"] >= 12 and tally.calls["datagrams_to_send"] >= 12, tally.calls
    assert tally._cls.receive_datagram is original  # noqa: SLF001
    assert parse_tally(tally.line()) == tally.calls


def test_a_stack_on_no_quic_library_is_named_not_measured() -> None:
    assert [quic_package(stack) for stack in QUIC_STACKS] == ["aioquic", "qh3", "aioquic", "qh3"]
    with pytest.raises(ValueError, match="'websockets' runs on no QUIC library"):
        quic_package("websockets")


def test_the_pattern_table_sets_callgrinds_counts_beside_the_native_ones() -> None:
    rows = [CostRow("ours-qh3", "echo", 1.0, pattern={"receive_datagram": 2.0, "datagrams_to_send": 2.5},
                    native_pattern={"receive_datagram": 2.25, "datagrams_to_send": 3.0}),
            CostRow("raw-qh3", "echo", None, error="boom")]
    table = format_pattern_table(rows).splitlines()
    assert table[0] == "| operation (QUIC calls per op: under callgrind / native) | ours-qh3 | raw-qh3 |"
    assert table[2] == "| 64 B echo on an open stream: datagrams received | 2.00 / 2.25 | error |"
    assert table[3] == "| 64 B echo on an open stream: transmit passes | 2.50 / 3.00 | error |"


def test_an_unknown_operation_is_named() -> None:
    with tempfile.TemporaryDirectory() as directory, pytest.raises(ValueError, match="unknown operation 'nope'"):
        asyncio.run(run_ops("ours-aioquic", "nope", 1, make_certificate(directory), warm_up=0))


def test_the_table_divides_ours_by_raw_and_pure_by_compiled() -> None:
    rows = [CostRow("ours-qh3", "echo", 1200.0), CostRow("ours-qh3 (pure)", "echo", 1500.0),
            CostRow("raw-qh3", "echo", 1000.0), CostRow("ours-qh3", "datagram_echo", None, error="boom"),
            CostRow("ours-qh3 (pure)", "datagram_echo", 10.0), CostRow("raw-qh3", "datagram_echo", 5.0)]
    table = format_table(rows).splitlines()
    assert table[0] == ("| operation (instructions per op) | ours-qh3 | ours-qh3 (pure) | raw-qh3 | "
                        "ours-qh3 / raw-qh3 | ours-qh3 (pure) / ours-qh3 |")
    assert table[2] == "| 64 B echo on an open stream | 1,200 | 1,500 | 1,000 | 1.20x | 1.25x |"
    assert table[3] == "| 64 B datagram echo | error | 10 | 5 | - | - |"


def test_a_tiny_run_under_valgrind_costs_something_per_operation_in_every_column() -> None:
    if shutil.which("valgrind") is None:
        pytest.fail("valgrind is not installed: `bash .ci/browsers.sh` (or apt-get install valgrind) installs it")
    options = CostOptions(stacks=("ours-qh3", "raw-qh3"), ops=("datagram_echo",), small=2, large=12)
    rows = run_cost(options)
    assert [row.column for row in rows] == ["ours-qh3", "ours-qh3 (pure)", "raw-qh3"]
    for row in rows:
        assert row.error is None, row.error
        assert set(row.counts) == {2, 12} and row.counts[12] > row.counts[2] > 10_000_000  # a whole interpreter
        assert row.per_op is not None and 10_000 < row.per_op < 100_000_000
        for pattern in (row.pattern, row.native_pattern):
            assert set(pattern) == set(QuicTally.METHODS)
            # Each echo is a datagram in at each end; the start and the close vary from run to
            # run, so ten operations apart is not exactly twenty.
            assert 1 <= pattern["receive_datagram"] < 20 and 0 <= pattern["datagrams_to_send"] < 20, pattern
