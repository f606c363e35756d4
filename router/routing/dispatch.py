"""Where each attempt of a request goes, and what happens when one fails.

A request walks its route's targets in the strategy's order, retrying the same target with
backoff where the failure class says so, then the route's fallbacks, all within one deadline.
The failure's class (its `kind`) decides the next step, never its message text.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from router import errors
from router.errors import ErrorKind
from router.graph.links import walk_fallbacks
from router.routing.breaker import record
from router.routing.failure import DEFAULT_STEPS, Step
from router.types import Attempt, Call, ClientKey, Operation, Route, RoutingGraph, Target

T = TypeVar("T")
__all__ = [
    "DEFAULT_STEPS",
    "Step",
    "context_chain",
    "execute",
    "fallback_chain",
]


_RATE_LIMIT_FLOOR = 0.5  # seconds: a 429 without Retry-After still waits at least this


def _backoff(retry: int, route: Route, error: errors.UpstreamError) -> float:
    """Seconds before retry number `retry` (0-based) of the same target."""
    policy = route.retries
    ceiling = min(policy.backoff_max, policy.backoff_initial * (2**retry))
    if error.kind is ErrorKind.RATE_LIMITED:  # never a tight loop, even on `Retry-After: 0`
        if error.retry_after is not None:
            return max(_RATE_LIMIT_FLOOR, error.retry_after)
        return max(_RATE_LIMIT_FLOOR, ceiling / 2 + random.uniform(0, ceiling / 2))
    if error.retry_after is not None:
        return error.retry_after
    return random.uniform(0, ceiling)  # full jitter


def fallback_chain(
    graph: RoutingGraph, first: Route, key: ClientKey | None = None
) -> tuple[Route, ...]:
    """`first`, then its fallbacks and theirs, breadth first, each once: the routes a request
    for `first` may walk, in order; with `key`, without the models that key may not use (a
    fallback it may not use is skipped, never tried). Dispatch, stream continuation and
    `llm-router explain` all read this one order, so what `explain` prints is what a request
    does. Walked once per graph and allow-list, when the graph is compiled."""
    if key is None:
        chain = graph.chains.get(first.name)
    else:
        reach = graph.reach.get(key.name)
        chain = reach.chains.get(first.name) if reach is not None else None
    if chain and chain[0] is first:
        return chain
    walked = walk_fallbacks(graph.routes, first)  # a route or key this graph did not compile
    return walked if key is None else tuple(r for r in walked if r.name in key.allowed)


def context_chain(graph: RoutingGraph, route: Route, key: ClientKey) -> tuple[Route, ...]:
    """After a context-length error at `route`: its `context_fallback` and that model's
    fallbacks, those `key` may use, compiled with the graph; empty when there are none."""
    reach = graph.reach.get(key.name)
    if reach is not None:
        return reach.context.get(route.name, ())
    if route.context_fallback is None:
        return ()
    return fallback_chain(graph, graph.routes[route.context_fallback], key)


def _candidates(route: Route, op: Operation, now: float) -> Sequence[Target]:
    """Targets in strategy order; those an upstream told us to avoid for now go last."""
    serving = route.serving[op]
    if len(serving) < 2:
        return serving
    ordered = route.strategy(serving)
    cooling = [t for t in ordered if t.cool_until > now]
    if not cooling:
        return ordered
    return [t for t in ordered if t.cool_until <= now] + cooling


async def execute(
    graph: RoutingGraph,
    call: Call,
    attempt: Callable[[Target, float], Awaitable[T]],
) -> T:
    """Run `attempt(target, timeout)` along the route until one succeeds or nothing is left."""
    last: errors.RouterError | None = None
    routes = fallback_chain(graph, call.route, call.key)
    context_used = False
    i = 0
    while i < len(routes):
        route = routes[i]
        i += 1
        for target in _candidates(route, call.op, time.monotonic()):
            retry = 0
            step = Step.NEXT
            while True:
                remaining = call.deadline - time.monotonic()
                if remaining <= 0:
                    raise last or errors.UpstreamTimeout("the request deadline passed")
                if target.breaker is not None and not target.breaker.allow(time.monotonic()):
                    break  # open (or another request is probing it): skip, no attempt made
                # From `allow()` to the attempt's verdict this request may hold the breaker's
                # one half-open probe: every other way out (a quota that refuses, rejects or
                # makes it wait too long, a limit backend down, the client leaving) frees it.
                verdict = False
                try:
                    limits = call.limits
                    if limits is not None and target.runtime.name in limits.table.providers:
                        # the provider's quota, per attempt
                        refused = await limits.before_attempt(target.runtime.name, remaining)
                        if refused is not None:
                            call.attempts.append(Attempt(target.label, "quota_fallback", 0.0))
                            last, step = last or refused, Step.NEXT
                            break
                    budget = call.budget
                    if budget is not None and target.runtime.name in budget.table.providers:
                        # the provider's spend budget, per attempt
                        refused = await budget.before_attempt(target)
                        if refused is not None:
                            call.attempts.append(Attempt(target.label, "budget_fallback", 0.0))
                            last, step = last or refused, Step.NEXT
                            break
                    started = time.monotonic()
                    target.in_flight += 1
                    call.trying = route
                    try:
                        result = await attempt(target, remaining)
                    finally:
                        target.in_flight -= 1
                except errors.UpstreamError as failure:
                    elapsed = time.monotonic() - started
                    outcome = failure.code or failure.kind.value
                    call.attempts.append(Attempt(target.label, outcome, elapsed))
                    call.usage = None  # usage counts for the answering attempt only
                    last = exc = failure
                    step = route.steps.get(exc.kind, Step.NEXT)
                    if step is Step.RETRY and exc.deterministic:
                        step = Step.NEXT  # it would fail the same way again: move on
                    record(target, exc.kind)
                    verdict = True
                    if call.limits is not None:
                        call.limits.after_attempt(False)
                    if call.budget is not None:
                        call.budget.after_attempt()
                else:
                    call.attempts.append(Attempt(target.label, "ok", time.monotonic() - started))
                    call.answered_by = route
                    call.target = target
                    if target.breaker is not None:
                        record(target, None)
                    verdict = True
                    return result
                finally:
                    if not verdict and target.breaker is not None:
                        target.breaker.release()  # no verdict on the target: free the probe

                if step is Step.FAIL:
                    raise exc
                if step is Step.CONTEXT:
                    larger = None if context_used else context_chain(graph, route, call.key)
                    if not larger:  # none (that this key may use): the provider's reason
                        raise exc
                    context_used = True
                    routes, i = larger, 0
                    break
                if step is Step.RETRY and retry < route.retries.attempts:
                    wait = _backoff(retry, route, exc)
                    too_long = route.retries.max_retry_after
                    if exc.retry_after is not None and exc.retry_after > too_long:
                        target.cool_until = time.monotonic() + exc.retry_after
                    elif time.monotonic() + wait < call.deadline:
                        retry += 1
                        await asyncio.sleep(wait)
                        continue
                if exc.kind is ErrorKind.RATE_LIMITED and exc.retry_after:
                    target.cool_until = time.monotonic() + exc.retry_after
                break
            if step is Step.CONTEXT:
                break
    if last is None:
        raise errors.ServiceUnavailable(
            f"no target of model '{call.route.name}' can serve this request now"
        )
    raise last
