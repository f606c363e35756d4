"""A provider's quota, checked before every attempt at one of its targets: the first try, a
retry, a fallback, a hedge, a stream's continuation or regeneration alike, so an upstream's
quota holds however the router reaches it (`router.routing.attempts`).

Each attempt holds its own ticket (two may run at once: a hedge), released with nothing
used if the attempt fails, else with the request's usage when the request ends.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from router import errors
from router.limits.backends import Verdict
from router.limits.policies import CONCURRENT, REQUESTS, TOKENS, PolicySet
from router.limits.rate_headers import rate_headers

if TYPE_CHECKING:
    from router.limits.admission import CallLimits, Ticket

_POLL = (0.05, 0.2)  # seconds between tries when waiting for a concurrency slot


def over(pset: PolicySet, verdict: Verdict, cost: int) -> list[int]:
    """Indexes of the limits that said no."""
    out = []
    for i, (limit, used) in enumerate(zip(pset.limits, verdict.used, strict=True)):
        need = cost if limit.kind == TOKENS else 1
        if used + need > limit.limit:
            out.append(i)
    return out


def rejection(ticket: Ticket, over: list[int]) -> errors.RateLimited:
    assert ticket.verdict is not None
    pset, verdict = ticket.pset, ticket.verdict
    first = pset.limits[over[0]]
    policy = pset.policies[first.policy]
    what = {REQUESTS: "requests", TOKENS: "tokens", CONCURRENT: "concurrent requests"}[first.kind]
    per = f" per {first.window_ms // 1000}s" if first.window_ms else ""
    wait = max((verdict.resets[i] for i in over), default=0) / 1000
    headers = rate_headers([ticket])
    headers["retry-after"] = str(max(1, int(-(-wait // 1))))
    return errors.RateLimited(
        f"rate limit '{policy.name}' ({policy.scope}) reached: {first.limit} {what}{per}",
        headers=headers,
    )


async def acquire(
    limits: CallLimits, provider: str, remaining: float
) -> Ticket | errors.RouterError | None:
    """The quota of `provider` for one attempt: None when it has none, the ticket held when
    it admits, an error to move on (`fallback`); raises to fail the request (`reject`, or a
    `wait` that would outlast `max_wait` or the deadline)."""
    pset = limits.table.for_provider(provider)
    if not pset.limits:
        return None
    limiter = limits.limiter
    started = time.monotonic()
    give_up = started + remaining
    waited = False
    while True:
        ticket = await limiter.acquire(pset, limits.cost, limits.lease_ms)
        verdict = ticket.verdict
        if verdict is None or verdict.admitted:
            limits.tickets.append(ticket)
            return ticket
        said_no = over(pset, verdict, limits.cost)
        actions = {pset.policies[pset.limits[i].policy].on_limit for i in said_no}
        error = rejection(ticket, said_no)
        if "reject" in actions:
            limiter.stats.rejected += 1
            raise error
        if "fallback" in actions:
            limiter.stats.fell_back += 1
            return error
        if not waited:
            waited = True
            limiter.stats.waited += 1
        max_wait = min(pset.policies[pset.limits[i].policy].max_wait for i in said_no)
        reset = max(verdict.resets[i] for i in said_no) / 1000
        pause = reset + random.uniform(0, 0.02) if reset > 0 else random.uniform(*_POLL)
        if time.monotonic() + pause > min(started + max_wait, give_up):
            limiter.stats.rejected += 1
            raise error
        await asyncio.sleep(pause)


def give_back(limits: CallLimits, ticket: Ticket) -> None:
    """A failed attempt gives back its tokens and concurrency slot (not its request)."""
    limits.limiter.finish_soon(ticket, 0)
