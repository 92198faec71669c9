"""``python -m benchmarks paired`` works: both stacks run every timed operation, in blocks
whose order flips each time, and the table divides the first stack by the second.

Speed is not checked (it is reported, never asserted); what is checked is that the runner
measures what it says it measures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from benchmarks import paired
from benchmarks.__main__ import main
from benchmarks.paired import PairedOptions, PairedRow, format_table, run_pair, run_paired


def test_a_tiny_run_times_every_operation_of_both_stacks() -> None:
    options = PairedOptions(stacks=("ours-aioquic", "raw-aioquic"), ops=("echo", "datagram_echo"),
                            blocks=2, per_block=3, warm_up=1)
    rows = run_paired(options)
    assert [row.op for row in rows] == ["echo", "datagram_echo"]
    for row in rows:
        assert row.samples == {"ours-aioquic": 6, "raw-aioquic": 6}
        assert all(value > 0 for value in (*row.p50_us.values(), *row.cpu_us.values())), row
        p50, cpu = row.ratio("ours-aioquic", "raw-aioquic")
        assert p50 == pytest.approx(row.p50_us["ours-aioquic"] / row.p50_us["raw-aioquic"])
        assert cpu == pytest.approx(row.cpu_us["ours-aioquic"] / row.cpu_us["raw-aioquic"])


class _FakeServed:
    """Stands in for ``rows.Served``: no server, a client that is only a name."""

    def __init__(self, stack: Any, cert: Any) -> None:
        self.name = stack.name

    async def __aenter__(self) -> _FakeServed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def connect(self) -> str:
        return str(self.name)


def test_blocks_alternate_and_flip_their_order_after_each_stacks_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def fake_operation(served: _FakeServed, client: str, op: str) -> Callable[[], Awaitable[None]]:
        async def once() -> None:
            calls.append(client)

        return once

    monkeypatch.setattr(paired, "Served", _FakeServed)
    monkeypatch.setattr(paired, "operation", fake_operation)
    options = PairedOptions(stacks=("ours-qh3", "raw-qh3"), ops=("echo",), blocks=3, per_block=2, warm_up=1)
    row = asyncio.run(run_pair(options, "echo", None))  # type: ignore[arg-type]
    a, b = "ours-qh3", "raw-qh3"
    assert calls == [a, b,  # warm-up, each stack in turn
                     a, a, b, b,  # block 0
                     b, b, a, a,  # block 1: the order flips
                     a, a, b, b]  # block 2
    assert row.samples == {a: 6, b: 6}


@pytest.mark.parametrize(("options", "message"), [
    (PairedOptions(stacks=("ours-qh3", "ours-qh3")), "two different stacks"),
    (PairedOptions(stacks=("ours-qh3",)), "two different stacks"),
    (PairedOptions(stacks=("ours-qh3", "nope")), "unknown stack 'nope'"),
    (PairedOptions(ops=("echo", "nope")), "unknown operation 'nope'"),
    (PairedOptions(blocks=0), "blocks and per_block must be >= 1"),
    (PairedOptions(per_block=0), "blocks and per_block must be >= 1"),
])
def test_bad_options_are_named_before_anything_runs(options: PairedOptions, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_paired(options)


def test_the_command_line_refuses_bad_options_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paired", "--stacks", "ours-qh3,ours-qh3"]) == 2
    assert "two different stacks" in capsys.readouterr().err


def test_the_table_divides_the_first_stack_by_the_second() -> None:
    rows = [PairedRow("stream_echo", {"ours-qh3": 300.0, "raw-qh3": 250.0}, {"ours-qh3": 330.0, "raw-qh3": 300.0},
                      {"ours-qh3": 10, "raw-qh3": 10})]
    table = format_table(rows, ("ours-qh3", "raw-qh3")).splitlines()
    assert table[0].startswith("| operation | ours-qh3 p50 us | raw-qh3 p50 us | p50 ours-qh3 / raw-qh3 |")
    assert table[2] == "| new stream + 64 B echo | 300.0 | 250.0 | 1.20x | 330.0 | 300.0 | 1.10x |"

