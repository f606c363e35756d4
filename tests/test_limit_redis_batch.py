"""Script calls made while one is on its way to Redis go together, in one round trip, each
with its own answer; a call whose caller left before its batch went is not sent."""

from __future__ import annotations

import asyncio
import uuid

import pytest

redis = pytest.importorskip("redis")

from router.limits.policies import CONCURRENT, REQUESTS, Limit, window_limit  # noqa: E402
from router.limits.redis_backend import RedisBackend  # noqa: E402

URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")


def _clean(prefix: str) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def test_concurrent_admissions_share_round_trips_and_count_exactly() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    limits = (
        window_limit(REQUESTS, "p:key:a", 150, 60_000, 0),
        Limit(CONCURRENT, "p:key:a:c", 1_000, 0, 0),
    )

    async def main() -> tuple[list[bool], int, int]:
        backend = RedisBackend(URL, prefix, 2.0)
        try:
            members = [backend.new_member() for _ in range(200)]
            verdicts = await asyncio.gather(
                *(backend.acquire(limits, m, 1, 30_000) for m in members)
            )
            admitted = [v.admitted for v in verdicts]
            sent = backend.batcher.round_trips
            await asyncio.gather(
                *(
                    backend.finish(limits, m, 1, None, v.at)
                    for m, v in zip(members, verdicts, strict=True)
                    if v.admitted
                )
            )
            held = await backend.client.zcard(f"{prefix}:rl:p:key:a:c")
            return admitted, sent, held
        finally:
            await backend.aclose()

    try:
        admitted, sent, held = asyncio.run(main())
    finally:
        _clean(prefix)
    assert admitted.count(True) == 150  # exactly the limit, as one call at a time would
    assert admitted[:150] == [True] * 150  # in the order they were made
    assert sent < 20  # 200 calls: the first alone, then a few pipelines
    assert held == 0  # every finish ran and released its concurrency slot


def test_a_call_cancelled_before_its_batch_left_is_not_sent() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    limits = (window_limit(REQUESTS, "p:key:b", 10, 60_000, 0),)

    async def main() -> int:
        backend = RedisBackend(URL, prefix, 2.0)
        try:
            first = asyncio.ensure_future(backend.acquire(limits, "m1", 1, 1000))
            await asyncio.sleep(0)  # the first call is on its way
            queued = asyncio.ensure_future(backend.acquire(limits, "m2", 1, 1000))
            await asyncio.sleep(0)
            queued.cancel()
            await first
            third = await backend.acquire(limits, "m3", 1, 1000)
            return third.used[0]
        finally:
            await backend.aclose()

    try:
        used = asyncio.run(main())
    finally:
        _clean(prefix)
    assert used == 2  # m1 and m3: the cancelled m2 recorded nothing
