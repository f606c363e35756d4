"""Hedged first tokens: when a target has not begun its answer after a while, start the next
candidate beside it, serve whichever begins first, and cancel the other.

A stream's attempt has begun when its first token is primed (`router.upstream.relay`), a
JSON attempt when its answer has arrived. The hedge is an attempt like any other
(`router.routing.attempts`): it passes its target's breaker and its provider's quota, is
logged (outcome `hedge_...`) and counts in `x-router-attempts`. The attempt that loses is
cancelled, so its upstream sees the connection close (outcome `cancelled`), and its
provider's quota gets back the tokens it held, not the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TypeVar

from router import errors
from router.routing.attempts import Attempter, Skipped, attempt_at
from router.routing.breaker import State
from router.types import Call, HedgePolicy, Route, Target

T = TypeVar("T")


def left(call: Call, policy: HedgePolicy) -> bool:
    """Whether this request may still hedge."""
    return call.hedged is None or len(call.hedged) < policy.most


def delay(policy: HedgePolicy, target: Target) -> float:
    """Seconds to wait for `target` before hedging it."""
    samples = target.ttfts
    if policy.percentile is None or samples is None or len(samples) < policy.min_samples:
        return policy.after
    ordered = sorted(samples)
    return max(policy.floor, ordered[min(len(ordered) - 1, int(policy.percentile * len(ordered)))])


def _spare(
    call: Call, routes: Sequence[Route], route: Route, target: Target
) -> tuple[Route, Target] | None:
    """The candidate after `target` in the walk (its route's next target, else the first of
    the next route), that no hedge tried yet."""
    seen = False
    for each in routes:
        if each is not route and not seen:
            continue
        for other in each.strategy(each.serving.get(call.op, ())):
            if other is target:
                seen = True
            elif seen and (call.hedged is None or other not in call.hedged) and _closed(other):
                return each, other
    return None


def _closed(target: Target) -> bool:
    return target.breaker is None or target.breaker.state is not State.OPEN


async def race(
    call: Call,
    routes: Sequence[Route],
    route: Route,
    target: Target,
    remaining: float,
    attempt: Attempter[T],
) -> T:
    """`attempt` at `target`, hedged by the next candidate if it has not begun in time."""
    policy = call.route.hedge
    assert policy is not None
    first = asyncio.ensure_future(attempt_at(call, route, target, remaining, attempt))
    try:
        began, _ = await asyncio.wait((first,), timeout=delay(policy, target))
    except asyncio.CancelledError:
        first.cancel()
        raise
    spare = None if began else _spare(call, routes, route, target)
    if spare is None:
        return await first
    hedge_route, hedge_target = spare
    call.hedged = [*(call.hedged or ()), hedge_target]
    budget = call.deadline - time.monotonic()
    second = asyncio.ensure_future(
        attempt_at(call, hedge_route, hedge_target, budget, attempt, "hedge_", "hedge_ok")
    )
    where: dict[asyncio.Future[T], tuple[Route, Target]] = {
        first: (route, target),
        second: (hedge_route, hedge_target),
    }
    pending: set[asyncio.Future[T]] = {first, second}
    failures: dict[asyncio.Future[T], BaseException] = {}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: t is second):
                failure = asyncio.CancelledError() if task.cancelled() else task.exception()
                if failure is not None:
                    failures[task] = failure
                    continue
                for other in done - {task}:  # began at the same moment: not needed
                    if not other.cancelled() and other.exception() is None:
                        _discard(other.result())
                call.answered_by, call.target = where[task]
                call.trying = call.answered_by
                return task.result()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)  # each records its attempt and closes its upstream
            for task in pending:  # (one that began before its cancel arrived: let it go)
                if not task.cancelled() and task.exception() is None:
                    _discard(task.result())
    raise _reason(failures.get(first), failures.get(second))


def _reason(first: BaseException | None, second: BaseException | None) -> BaseException:
    """What the walk goes on from when both failed: the first's failure, unless no attempt
    was made there."""
    if isinstance(first, Skipped) and isinstance(second, errors.UpstreamError):
        return second
    return first or second or errors.ServiceUnavailable("no hedged attempt answered")


def _discard(result: object) -> None:
    close = getattr(result, "close", None)
    if callable(close):
        close()
