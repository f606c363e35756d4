"""Enforcing budgets on one request: reserve its estimated cost at admission, fall back to
a cheaper model or refuse with 429 `budget_exceeded`, reserve per attempt for provider
budgets, and reconcile with what the request really cost when it ends.

The estimate is an upper bound (the prompt's estimate plus `max_tokens` for each of the
completions it asks for, priced at the highest price among the targets the request may
reach), reserved atomically with the check (one Lua script in Redis), so that however many
replicas admit at once, what they admit never exceeds the budget while requests use no more
than they asked for. When the request ends, its reported usage (a stream's at its end; for a
client that left mid-stream, what the upstream had produced) replaces the estimate; a
request that failed gives it all back.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from router.limits.admission import Limiter
from router.spend.budget_state import Held, seen
from router.spend.call_budget import CallBudget
from router.spend.metered import estimate as metered_estimate
from router.spend.one_budget import OneBudget
from router.spend.prices import cost_nanos
from router.upstream.usage import completion_choices, estimate_prompt_tokens

if TYPE_CHECKING:
    from router.types import Call, RoutingGraph


def _asked(body: dict[str, Any]) -> int | None:
    most = body.get("max_completion_tokens") or body.get("max_tokens")
    return most if type(most) is int and most >= 0 else None


def admit_now(
    limiter: Limiter, graph: RoutingGraph, call: Call
) -> CallBudget | OneBudget | Literal[False] | None:
    """`admit` without awaiting anything, for the usual case: budgets counted in this
    process, one calendar-period counter for the request's pair, a request priced in
    tokens, and room in the budget; a `OneBudget` when no provider has a budget either.
    False when `admit` must decide instead (a shared backend, several counters, a spent
    budget, a period that ended: nothing is reserved then). Every budgeted request passes
    here: each line is counted (`bench.instructions`)."""
    local = limiter.local
    if local is None:
        return False
    table = graph.budgets
    pair = (call.key.name, call.route.name)
    try:
        bset = table.pairs[pair]
    except KeyError:
        bset = table.for_request(*pair)
    if bset is None:
        return False if table.providers else None
    one, op, now = bset.one, call.op, time.time()
    if one is None or now >= bset.until or op.cost is not None or bset.retired:
        return False  # (`admit` starts a new period's counters, and forgets the old ones)
    body = call.body
    prompt = estimate_prompt_tokens(body)
    asked = _asked(body) if op.streams else 0
    out = asked if asked is not None else one.output_tokens
    if "n" in body or "best_of" in body:  # several completions: each may be that long
        out *= completion_choices(body)
    budget = one.budgets[0]
    if not budget.money:
        cost = prompt + out or 1  # (at least 1: a spent budget refuses even a free request)
    elif (price := bset.price) is None:
        cost = 1
    else:
        cost = cost_nanos(price, prompt, 0, out) or 1
    limit = one.pset.limits[0]
    key, sums = limit.key, local.sums
    count = sums.get(key, 0) + cost
    if count > limit.limit:
        return False  # spent: `admit` refuses, or falls back
    sums[key] = count
    seen[budget.labels] = (budget, count)
    if not table.providers:
        return OneBudget(one, sums, cost, count, now)
    admitted = CallBudget(limiter, table, prompt, asked, None, choices=completion_choices(body))
    admitted.now = now
    admitted.held.append(Held(one, (count,), (0,), cost, 0, None, None))
    return admitted


async def admit(limiter: Limiter, graph: RoutingGraph, call: Call) -> CallBudget | None:
    """Reserve the request's estimate in every budget that applies to it: None when none
    can; raises 429 `budget_exceeded`. A spent budget with `on_exceeded: fallback` sends
    the request to its fallback model (if the key may use it and it serves the operation),
    whose own budgets then apply."""
    table = graph.budgets
    bset = table.for_request(call.key.name, call.route.name)
    if bset is None and not table.providers:
        return None
    unit = call.op.cost
    prompt = estimate_prompt_tokens(call.body) if unit is None else 0
    # An answer of text (chat, completions, ...: what can stream) may be as long as
    # `max_tokens` allows; embeddings and the like answer no completion tokens.
    asked = _asked(call.body) if call.op.streams else 0
    budget = CallBudget(
        limiter,
        table,
        prompt,
        asked,
        unit(call.body) if unit else None,
        metered_estimate(call.op, call.body) if unit else None,
        completion_choices(call.body) if call.op.streams else 1,
    )
    tried = {call.route.name}
    while bset is not None:
        refused = await budget.reserve(bset, bset.price, None)
        if refused is None:
            break
        assert budget.spent is not None
        spent = budget.spent[0]
        to = graph.routes.get(spent.fallback or "")
        if (
            spent.on_exceeded != "fallback"
            or to is None
            or to.name in tried
            or to.name not in call.key.allowed
            or call.op not in to.operations
        ):
            raise refused
        tried.add(to.name)
        call.route = to
        budget.spent = None
        bset = table.for_request(call.key.name, to.name)
    return budget


__all__ = ["CallBudget", "admit", "admit_now"]
