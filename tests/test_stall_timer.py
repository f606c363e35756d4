"""`StallTimer`: one timer per stream enforces the idle gap per read and the total budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from router.stall import StallTimeout, StallTimer


async def chunks(gaps: list[float]) -> AsyncIterator[bytes]:
    for i, gap in enumerate(gaps):
        await asyncio.sleep(gap)
        yield str(i).encode()


async def read_all(timer: StallTimer) -> list[bytes]:
    out = []
    try:
        while (chunk := await timer.read()) is not None:
            out.append(chunk)
    finally:
        timer.close()
    return out


def test_steady_chunks_outlast_the_idle_gap_in_total() -> None:
    # ten gaps of 0.03 s: 0.3 s in all, three times the 0.1 s idle gap, never one gap
    timer = StallTimer(chunks([0.03] * 10), idle=0.1, deadline=time.monotonic() + 5)
    assert asyncio.run(read_all(timer)) == [str(i).encode() for i in range(10)]


def test_a_gap_longer_than_idle_stops_the_read() -> None:
    timer = StallTimer(chunks([0.01, 0.01, 1.0]), idle=0.1, deadline=time.monotonic() + 5)

    async def run() -> tuple[list[bytes], float]:
        got: list[bytes] = []
        started = time.monotonic()
        with pytest.raises(StallTimeout) as stalled:
            while (chunk := await timer.read()) is not None:
                got.append(chunk)
        timer.close()
        assert not stalled.value.total
        return got, time.monotonic() - started

    got, took = asyncio.run(run())
    assert got == [b"0", b"1"]
    assert 0.1 <= took < 0.6


def test_the_total_budget_ends_a_stream_that_never_stalls() -> None:
    timer = StallTimer(chunks([0.02] * 100), idle=0.5, deadline=time.monotonic() + 0.15)

    async def run() -> StallTimeout:
        with pytest.raises(StallTimeout) as ended:
            await read_all(timer)
        return ended.value

    assert asyncio.run(run()).total


def test_another_cancellation_is_not_mistaken_for_a_stall() -> None:
    async def run() -> None:
        timer = StallTimer(chunks([5.0]), idle=10, deadline=time.monotonic() + 20)
        task = asyncio.create_task(read_all(timer))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
