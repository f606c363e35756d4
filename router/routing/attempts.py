"""One attempt at one target, admitted the way every attempt is: the first try, a retry, a
fallback, a hedge (`router.routing.hedge`), a stream's continuation or its regeneration
(`router.routing.recovery`) alike.

An attempt passes the target's breaker, its provider's quota and its provider's spend budget
before it is sent, counts in
the target's `in_flight` while it runs, and leaves one entry in `call.attempts` (the access
log, `x-router-attempts` and the metrics read them) and a verdict for the breaker, however
it ends: answered, failed, or cancelled (a hedge that lost, a client that left).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from router import errors
from router.limits import quota
from router.routing.breaker import record
from router.types import Attempt, Call, Route, Target
from router.upstream.usage import estimate_prompt_tokens

T = TypeVar("T")
Attempter = Callable[[Target, float], Awaitable[T]]


class Skipped(Exception):
    """No attempt was made at the target: its breaker is open (`refusal` None), or its
    provider's quota said to move on (`refusal`: why, for the client if nothing else works)."""

    def __init__(self, refusal: errors.RouterError | None) -> None:
        super().__init__()
        self.refusal = refusal


async def attempt_at(
    call: Call,
    route: Route,
    target: Target,
    remaining: float,
    attempt: Attempter[T],
    kind: str = "",
    ok: str = "ok",
) -> T:
    """`attempt(target, remaining)` once, admitted and accounted (module doc). `kind`
    prefixes the outcome logged (`hedge_`, `continue_`, ...); `ok` is the outcome of success.
    Raises `Skipped` when no attempt was made, else the attempt's `UpstreamError`."""
    breaker = target.breaker
    if breaker is not None and not breaker.allow(time.monotonic()):
        raise Skipped(None)  # open (or another request is probing it): no attempt made
    # From `allow()` to the attempt's verdict this request may hold the breaker's one
    # half-open probe: every other way out (a quota that refuses, rejects or makes it wait
    # too long, a limit backend down, the client leaving, a hedge cancelled) frees it.
    verdict = False
    ticket = None
    limits = call.limits
    started = time.monotonic()
    try:
        if limits is not None and target.runtime.name in limits.table.providers:
            got = await quota.acquire(limits, target.runtime.name, remaining)
            if isinstance(got, errors.RouterError):
                call.attempts.append(Attempt(target.label, f"{kind}quota_fallback", 0.0))
                raise Skipped(got)
            ticket = got
        budget = call.budget
        if budget is not None and target.runtime.name in budget.table.providers:
            try:
                refused = await budget.before_attempt(target)  # the provider's spend budget
            except errors.RouterError:
                if ticket is not None and limits is not None:
                    quota.give_back(limits, ticket)
                raise  # a `reject` budget: the request fails
            if refused is not None:  # a `fallback` budget: move on
                if ticket is not None and limits is not None:
                    quota.give_back(limits, ticket)
                call.attempts.append(Attempt(target.label, f"{kind}budget_fallback", 0.0))
                raise Skipped(refused)
        started = time.monotonic()
        target.in_flight += 1
        call.trying = route
        call.running += 1
        try:
            result = await attempt(target, remaining)
        finally:
            target.in_flight -= 1
            call.running -= 1
    except errors.UpstreamError as failure:
        outcome = failure.code or failure.kind.value
        call.attempts.append(Attempt(target.label, kind + outcome, time.monotonic() - started))
        record(target, failure.kind)
        verdict = True
        if ticket is not None and limits is not None:
            quota.give_back(limits, ticket)
        if call.budget is not None:
            call.budget.after_attempt(target)
        raise
    except asyncio.CancelledError:
        if ticket is not None and limits is not None:
            quota.give_back(limits, ticket)
        if call.budget is not None:
            call.budget.after_attempt(target)
        seconds = time.monotonic() - started
        # It reached the upstream, which may have read the prompt: counted as spent.
        spent = estimate_prompt_tokens(call.body)
        call.attempts.append(Attempt(target.label, f"{kind}cancelled", seconds, spent))
        raise
    finally:
        if not verdict and breaker is not None:
            breaker.release()  # no verdict on the target: free the probe
    entry = Attempt(target.label, ok, time.monotonic() - started)
    call.attempts.append(entry)
    if getattr(result, "attempt", False) is None:
        result.attempt = entry  # type: ignore[attr-defined]  # a stream's: what it relays
    if breaker is not None:
        record(target, None)
    return result
