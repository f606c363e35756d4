"""Keeping a shared backend's concurrency leases alive while their requests live.

A lease in Redis is short (`server.rate_limit_backend.lease_seconds`), so that the slots of a
replica that dies come back within that time instead of when its requests' deadlines would
have passed. While a request lives, its leases are renewed: one task per process renews every
live lease in one batch every third of the lease, so a renewal can fail (or time out) once
and the next one still comes in time. A lease stops being renewed at its request's deadline
plus a margin, so a request that never finishes (a bug) cannot hold a slot for ever either.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable

from router.observability import logs

log = logs.get_logger("router.limits")
_BATCH = 500  # leases per script call: keeps each call short for Redis's single thread

Renew = Callable[[list[tuple[str, str]], int], Awaitable[list[int]]]


class LeaseRenewer:
    """`hold` a request's leases when admitted, `drop` them when it finishes."""

    def __init__(self, renew: Renew, lease_ms: int, failed: Callable[[Exception], None]):
        self.lease_ms = lease_ms
        self.live: dict[str, tuple[tuple[str, ...], float]] = {}  # member -> (keys, until)
        self._renew = renew
        self._failed = failed
        self._task: asyncio.Task[None] | None = None

    def hold(self, member: str, keys: tuple[str, ...], until: float) -> None:
        """Renew `member`'s lease on each of `keys` until it is dropped or `until`
        (monotonic seconds) has passed."""
        self.live[member] = (keys, until)
        if self._task is None:  # started by the first request, but none of its context
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    def drop(self, member: str) -> None:
        self.live.pop(member, None)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            await self.renew_now()

    async def renew_now(self) -> None:
        """One round: forget leases past their request's time, renew the others."""
        now = time.monotonic()
        for member in [m for m, (_, until) in self.live.items() if until <= now]:
            del self.live[member]
        pairs = [(key, m) for m, (keys, _) in self.live.items() for key in keys]
        lost: set[str] = set()
        for start in range(0, len(pairs), _BATCH):
            batch = pairs[start : start + _BATCH]
            try:
                gone = await self._renew(batch, self.lease_ms)
            except Exception as exc:  # the backend sorted it: down or broken
                self._failed(exc)
                return
            lost.update(batch[i][1] for i in gone)
        if lost:
            # Redis forgot them (an outage longer than the lease, a flush): the requests go
            # on, but their slots are no longer held.
            log.warning("rate_limit_leases_lost", count=len(lost))
            for member in lost:
                self.drop(member)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
