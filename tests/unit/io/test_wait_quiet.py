"""``wait_quiet``: a closed client's socket is waited for without a task per wait; the wait
ends when the last closing period ends, when the endpoint closes, or at its timeout."""

from __future__ import annotations

import asyncio
import time

from pywebtransport._io.endpoint import UdpEndpoint
from pywebtransport.types import Address
from tests.unit.io.fakes import Factory, FakeConnection, FakeLoop, make_endpoint

PEER: Address = ("127.0.0.1", 50000)
CIDS = (bytes.fromhex("0011223344556677"), bytes.fromhex("8899aabbccddeeff"))


def retire_one(endpoint: UdpEndpoint, cid: bytes) -> None:
    connection = FakeConnection()
    endpoint.register_cid(cid, connection)
    assert endpoint.retire(connection, close_datagrams=(b"\x40close",), until=time.monotonic() + 60,
                           peer=PEER) is not None


async def waiting_task(endpoint: UdpEndpoint, timeout: float) -> asyncio.Task[bool]:
    """``endpoint.wait_quiet(timeout)`` in a task, returned once the task is inside the wait
    (its flag is set in the same step that enters the wait)."""
    entered = asyncio.get_running_loop().create_future()

    async def run() -> bool:
        entered.set_result(None)
        return await endpoint.wait_quiet(timeout)

    task = asyncio.ensure_future(run())
    await asyncio.wait_for(entered, 5.0)
    return task


def end_every_period(loop: FakeLoop) -> None:
    for timer in loop.live_timers():
        loop.fire(timer)


async def test_the_wait_ends_when_the_period_ends_even_if_another_begins_right_after() -> None:
    endpoint, loop, _ = make_endpoint(Factory())
    retire_one(endpoint, CIDS[0])
    waiting = await waiting_task(endpoint, 30.0)
    end_every_period(loop)
    retire_one(endpoint, CIDS[1])  # not quiet again before the waiter runs
    assert await asyncio.wait_for(waiting, 5.0) is True


async def test_closing_the_endpoint_ends_the_wait() -> None:
    endpoint, _, _ = make_endpoint(Factory())
    retire_one(endpoint, CIDS[0])
    waiting = await waiting_task(endpoint, 30.0)
    endpoint.close()
    assert await asyncio.wait_for(waiting, 5.0) is True


async def test_the_wait_times_out_and_a_cancelled_wait_leaves_nothing_behind() -> None:
    endpoint, loop, _ = make_endpoint(Factory())
    retire_one(endpoint, CIDS[0])
    assert await endpoint.wait_quiet(0.0) is False
    cancelled = await waiting_task(endpoint, 30.0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert cancelled.cancelled()
    end_every_period(loop)
    assert await endpoint.wait_quiet(0.0) is True
