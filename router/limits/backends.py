"""Where rate-limit counters live: this process, or Redis shared by every replica.

Both backends implement the same algorithms and give the same answers. A requests or tokens
window whose limit is small (`router.limits.EXACT_LIMIT`) is a sliding-window log: an entry
per admission, the window's usage the sum of the entries younger than the window; it never
holds more entries than the limit, since a rejected request records nothing. A larger one
is a sliding-window counter: a count per sub-window (`router.limits.SUBWINDOWS` of them),
so its memory does not grow with traffic; it counts the oldest overlapping sub-window whole,
so it never admits more than the limit in any window and a spent budget comes back at most
one sub-window late. Both are plain "N in any window" numbers that match the `x-ratelimit-*`
headers and can be corrected after the fact (token estimates are reconciled with the
reported usage). Exactness across replicas comes from doing the whole check-then-record for
every limit of a request in one Redis Lua script with Redis's own clock: no read-then-write
race, and a request one limit rejects records nothing anywhere. Concurrency is a set of
leases that expire: a crashed replica cannot hold its slots for long (`router.limits.leases`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from router.limits.policies import CONCURRENT, REQUESTS, TOKENS, Limit
from router.limits.windows import Bucket, Leases, RequestLog, TokenLog, WindowCounter


@dataclass(slots=True)
class Verdict:
    """`used` per limit (after recording when admitted, before otherwise), `resets` in ms:
    when the limit next frees capacity (for a rejected request: enough for it). `at` is the
    backend's clock at the decision, which a finish needs to find a counter's sub-window."""

    admitted: bool
    used: tuple[int, ...]
    resets: tuple[int, ...]
    at: int = 0


class BackendDown(Exception):
    """The backend could not answer (connection, timeout): the policies' `on_error` decides."""


class BackendBroken(Exception):
    """The backend answered with an error (a refused command, a script error): the setup is
    wrong, not down. Logged at error level and counted; the request gets 503."""


class BackendRefused(RuntimeError):
    """The backend can never work as configured (e.g. a Redis Cluster): the router refuses
    to start, naming the setting."""


class Backend(Protocol):
    def new_member(self) -> str:
        """A name for one acquisition, unique wherever this backend's counters are seen."""
        ...

    async def acquire(
        self, limits: tuple[Limit, ...], member: str, cost: int, lease_ms: int
    ) -> Verdict: ...

    async def finish(
        self, limits: tuple[Limit, ...], member: str, cost: int, actual: int | None, at: int
    ) -> None: ...

    async def aclose(self) -> None: ...


def _bucket(limit: Limit) -> Bucket:
    if limit.kind == CONCURRENT:
        return Leases()
    if limit.span_ms:
        return WindowCounter(limit.window_ms, limit.span_ms)
    return RequestLog(limit.window_ms) if limit.kind == REQUESTS else TokenLog(limit.window_ms)


class MemoryBackend:
    """Exact within one process: the event loop runs each acquire without interruption.
    `clock` (ms) is for tests and benchmarks; it is the monotonic clock otherwise."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.buckets: dict[str, Bucket] = {}
        # Spend budgets' calendar periods: a plain sum per period's key, which nothing
        # leaves before the period ends (`router.spend.budget_admission`).
        self.sums: dict[str, int] = {}
        self.clock = clock
        self._members = itertools.count()

    def new_member(self) -> str:
        return str(next(self._members))  # unique in this process, which alone sees these

    def acquire_now(
        self, limits: tuple[Limit, ...], member: str, cost: int, lease_ms: int
    ) -> Verdict:
        """`acquire` without a coroutine: nothing here waits (the limiter's fast path)."""
        now = int(time.monotonic() * 1000) if self.clock is None else self.clock()
        buckets = self.buckets
        found: list[Bucket] = []
        used: list[int] = []
        resets: list[int] = []
        admitted = True
        for limit in limits:  # one pass: check every limit, record nothing yet
            bucket = buckets.get(limit.key)
            if bucket is None:
                bucket = buckets[limit.key] = _bucket(limit)
            need = cost if limit.kind == TOKENS else 1
            count, reset = bucket.check(now, need, limit.limit)
            found.append(bucket)
            used.append(count)
            resets.append(reset)
            if count + need > limit.limit:
                admitted = False
        if admitted:
            for i, limit in enumerate(limits):
                kind = limit.kind
                if kind == CONCURRENT:
                    found[i].add(now, member, lease_ms)
                    used[i] += 1
                else:
                    need = cost if kind == TOKENS else 1
                    resets[i] = found[i].add(now, member, need)
                    used[i] += need
        return Verdict(admitted, tuple(used), tuple(resets), now)

    def finish_now(
        self, limits: tuple[Limit, ...], member: str, cost: int, actual: int | None, at: int
    ) -> None:
        for limit in limits:
            kind = limit.kind
            if kind == CONCURRENT:
                leases = self.buckets.get(limit.key)
                if isinstance(leases, Leases):
                    leases.release(member)
            elif kind == TOKENS and actual is not None and actual != cost and cost > 0:
                window = self.buckets.get(limit.key)
                if window is not None and not isinstance(window, Leases):
                    window.reconcile(member, at, cost, actual)

    async def acquire(
        self, limits: tuple[Limit, ...], member: str, cost: int, lease_ms: int
    ) -> Verdict:
        return self.acquire_now(limits, member, cost, lease_ms)

    async def finish(
        self, limits: tuple[Limit, ...], member: str, cost: int, actual: int | None, at: int
    ) -> None:
        self.finish_now(limits, member, cost, actual, at)

    async def aclose(self) -> None:
        return None
