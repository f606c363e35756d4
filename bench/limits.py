"""Rate-limit buckets at 1 and 1,000,000 admissions: memory per bucket, cost per acquire.

Two windows a day long, each on both backends (in-process, and a private `redis-server` on
a free loopback port, so that Redis's own per-command figures count only this run):

- `admitted`: requests per day with a limit never reached. After filling the bucket with
  N admissions spread evenly over the day, how much it holds and what one more admission
  costs.
- `rejected`: tokens per day, filled to its limit (N admissions of one token each): what a
  request it rejects costs, the case where a log is walked to say when there is room.

Per acquire: wall time as the caller sees it (for Redis, a loopback round trip included)
and, for Redis, the script's own time in Redis's single thread (`INFO commandstats`).

Run: `python -m bench.limits [--entries 1,1000000]` (needs `redis-server` for the Redis
rows; without it only the in-process ones are measured).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from bench.procs import free_port as _free_port
from bench.procs import wait_port as _wait_port
from router.limits.backends import MemoryBackend
from router.limits.policies import REQUESTS, TOKENS, Limit, window_limit

DAY = 86_400_000
_TIMED = {"admitted": 20_000, "rejected": 2_000}  # acquires timed per scenario


class Clock:
    def __init__(self) -> None:
        self.now = int(time.time() * 1000) - DAY  # the fill ends about now

    def __call__(self) -> int:
        return self.now


def _scenario(name: str, entries: int) -> tuple[Limit, int]:
    """The limit, and the cost of each admission."""
    if name == "admitted":
        return window_limit(REQUESTS, "bench", 10**9, DAY, 0), 0
    return window_limit(TOKENS, "bench", entries, DAY, 0), 1


def deep_size(value: Any) -> int:
    """Bytes held by a bucket: the object and everything it holds."""
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k) + deep_size(v) for k, v in value.items())
    elif isinstance(value, list | tuple | deque):
        size += sum(deep_size(item) for item in value)
    elif hasattr(value, "__slots__"):
        size += sum(deep_size(getattr(value, slot)) for slot in value.__slots__)
    return size


def _memory(name: str, entries: int) -> dict[str, Any]:
    clock = Clock()
    backend = MemoryBackend(clock)
    limit, cost = _scenario(name, entries)
    limits = (limit,)
    step = max(1, (DAY - 60_000) // entries)
    for i in range(entries):
        clock.now += step
        assert backend.acquire_now(limits, str(i), cost, 0).admitted
    held = deep_size(backend.buckets[limit.key])
    timed = _TIMED[name]
    started = time.perf_counter()
    for i in range(timed):
        clock.now += 1
        verdict = backend.acquire_now(limits, f"t{i}", cost, 0)
        assert verdict.admitted == (name == "admitted")
    seconds = time.perf_counter() - started
    return {"bytes": held, "us_per_acquire": round(seconds / timed * 1e6, 2)}


async def _redis(url: str, port: int, name: str, entries: int) -> dict[str, Any]:
    from router.limits.redis_backend import RedisBackend

    clock = Clock()
    prefix = f"bench-{name}-{entries}"
    backend = RedisBackend(url, prefix, 10.0, clock=clock)
    limit, cost = _scenario(name, entries)
    limits = (limit,)
    step = max(1, (DAY - 60_000) // entries)
    try:
        done = 0
        while done < entries:  # filled in concurrent batches: the order does not matter here
            batch = min(200, entries - done)
            calls = []
            for i in range(done, done + batch):
                clock.now += step
                calls.append(backend.acquire(limits, str(i), cost, 0))
            assert all(v.admitted for v in await asyncio.gather(*calls))
            done += batch
        client = backend.client
        held = 0
        async for key in client.scan_iter(f"{prefix}:*"):
            held += int(await client.memory_usage(key, samples=0))
        before = (await client.info("commandstats")).get("cmdstat_evalsha", {})
        timed = _TIMED[name] if entries < 10_000 or name == "admitted" else 200
        started = time.perf_counter()
        for i in range(timed):
            clock.now += 1
            verdict = await backend.acquire(limits, f"t{i}", cost, 0)
            assert verdict.admitted == (name == "admitted")
        seconds = time.perf_counter() - started
        after = (await client.info("commandstats"))["cmdstat_evalsha"]
        calls_made = after["calls"] - before.get("calls", 0)
        in_redis = (after["usec"] - before.get("usec", 0)) / max(1, calls_made)
        await client.flushdb()
    finally:
        await backend.aclose()
    return {
        "bytes": held,
        "us_per_acquire": round(seconds / timed * 1e6, 1),
        "us_in_redis": round(in_redis, 1),
    }


def _private_redis() -> tuple[subprocess.Popen[bytes], int] | None:
    if shutil.which("redis-server") is None:
        return None
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", folder]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _wait_port(port)
    return process, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__)
    parser.add_argument("--entries", default="1,1000000", help="admissions to fill, per run")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.entries.split(",")]
    rows: list[tuple[str, str, int, dict[str, Any]]] = []
    for name in ("admitted", "rejected"):
        for entries in sizes:
            rows.append(("memory", name, entries, _memory(name, entries)))
    server = _private_redis()
    if server is not None:
        process, port = server
        url = f"redis://127.0.0.1:{port}/0"
        try:
            for name in ("admitted", "rejected"):
                for entries in sizes:
                    rows.append(
                        ("redis", name, entries, asyncio.run(_redis(url, port, name, entries)))
                    )
        finally:
            process.terminate()
            process.wait(10)
    show: Callable[[Any], str] = lambda v: "" if v is None else str(v)  # noqa: E731
    print("| backend | window | admissions | bucket bytes | us/acquire | us in Redis |")
    print("|---|---|---|---|---|---|")
    for backend, name, entries, figures in rows:
        print(
            f"| {backend} | {name} | {entries:,} | {figures['bytes']:,} "
            f"| {figures['us_per_acquire']} | {show(figures.get('us_in_redis'))} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
