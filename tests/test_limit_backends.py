"""The in-process rate-limit backend's concurrency leases: released, or expired on their own."""

from __future__ import annotations

import asyncio

from router.limits.backends import MemoryBackend
from router.limits.policies import CONCURRENT, Limit

ONE = (Limit(CONCURRENT, "p:key", 1, 0, 0),)


def test_a_lease_holds_the_slot_until_finished() -> None:
    async def run() -> None:
        backend = MemoryBackend()
        assert (await backend.acquire(ONE, "a", 0, 60_000)).admitted
        assert not (await backend.acquire(ONE, "b", 0, 60_000)).admitted
        await backend.finish(ONE, "a", 0, None, 0)
        assert (await backend.acquire(ONE, "b", 0, 60_000)).admitted

    asyncio.run(run())


def test_an_expired_lease_frees_its_slot_even_when_a_longer_one_came_later() -> None:
    async def run() -> None:
        backend = MemoryBackend()
        assert (await backend.acquire(ONE, "long", 0, 60_000)).admitted
        await backend.finish(ONE, "long", 0, None, 0)
        # a short lease taken after a long one: its expiry must still be noticed
        assert (await backend.acquire(ONE, "short", 0, 30)).admitted
        assert not (await backend.acquire(ONE, "other", 0, 60_000)).admitted
        await asyncio.sleep(0.06)
        verdict = await backend.acquire(ONE, "other", 0, 60_000)
        assert verdict.admitted
        assert verdict.used == (1,)

    asyncio.run(run())
