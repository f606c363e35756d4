"""Hedged first tokens: when a target has not begun its answer after a while, start the next
candidate beside it, serve whichever begins first, and cancel the other.

A stream's attempt has begun when its first token is primed (`router.upstream.relay`), a
JSON attempt when its answer's status and headers have arrived (`answer_began`, set by the
transport; a transport that does not set it counts the whole answer). The hedge is an
attempt like any other (`router.routing.attempts`): it passes its target's breaker and its
provider's quota, is logged (outcome `hedge_...`) and counts in `x-router-attempts`. The
attempt that loses is cancelled, so its upstream sees the connection close (outcome
`cancelled`), and its provider's quota gets back the tokens it held, not the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from router import errors
from router.routing.attempts import Attempter, Skipped, attempt_at
from router.routing.breaker import State
from router.types import Call, HedgePolicy, Route, Target
from router.upstream.transport import answer_began

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
    first, first_began = _start(call, route, target, remaining, attempt)
    watch = asyncio.ensure_future(first_began.wait())
    try:
        began, _ = await asyncio.wait(
            (first, watch), timeout=delay(policy, target), return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        first.cancel()
        raise
    finally:
        watch.cancel()
    spare = None if began else _spare(call, routes, route, target)
    if spare is None:
        return await first
    hedge_route, hedge_target = spare
    call.hedged = [*(call.hedged or ()), hedge_target]
    budget = call.deadline - time.monotonic()
    second, second_began = _start(
        call, hedge_route, hedge_target, budget, attempt, "hedge_", "hedge_ok"
    )
    where: dict[asyncio.Future[T], tuple[Route, Target]] = {
        first: (route, target),
        second: (hedge_route, hedge_target),
    }
    heads: dict[asyncio.Future[bool], asyncio.Future[T]] = {
        asyncio.ensure_future(first_began.wait()): first,
        asyncio.ensure_future(second_began.wait()): second,
    }
    pending: set[asyncio.Future[T]] = {first, second}
    failures: dict[asyncio.Future[T], BaseException] = {}
    try:
        while pending:
            watched: set[asyncio.Future[Any]] = {*pending, *heads}
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            finished: set[asyncio.Future[T]] = {t for t in pending if t in done}
            pending -= finished
            for task in sorted(finished, key=lambda t: t is second):
                failure = asyncio.CancelledError() if task.cancelled() else task.exception()
                if failure is not None:
                    failures[task] = failure
                    continue
                for other in finished - {task}:  # began at the same moment: not needed
                    if not other.cancelled() and other.exception() is None:
                        _discard(other.result())
                call.answered_by, call.target = where[task]
                call.trying = call.answered_by
                return task.result()
            for head in [h for h in heads if h in done]:
                task = heads.pop(head)
                if task in pending and len(pending) > 1:  # its answer began first
                    await _cancel(pending - {task})
                    pending = {task}
    finally:
        for head in heads:
            head.cancel()
        await _cancel(pending)
    raise _reason(failures.get(first), failures.get(second))


def _start(
    call: Call,
    route: Route,
    target: Target,
    remaining: float,
    attempt: Attempter[T],
    kind: str = "",
    ok: str = "ok",
) -> tuple[asyncio.Future[T], asyncio.Event]:
    """The attempt as a task of its own, with the event its transport sets when the answer
    begins (the task runs in a copy of this context, taken with the event in it)."""
    began = asyncio.Event()
    token = answer_began.set(began)
    try:
        task = asyncio.ensure_future(attempt_at(call, route, target, remaining, attempt, kind, ok))
    finally:
        answer_began.reset(token)
    return task, began


async def _cancel(tasks: set[asyncio.Future[T]]) -> None:
    """Cancel the attempts not needed and wait until each has recorded its attempt and
    closed its upstream; one that began before its cancel arrived is let go."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is None:
                _discard(task.result())


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
