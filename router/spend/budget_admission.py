"""Enforcing budgets on one request: reserve its estimated cost at admission, fall back to
a cheaper model or refuse with 429 `budget_exceeded`, reserve per attempt for provider
budgets, and reconcile with what the request really cost when it ends.

The estimate is an upper bound (the prompt's estimate plus `max_tokens`, priced at the
highest price among the targets the request may reach), reserved atomically with the check
(one Lua script in Redis), so that however many replicas admit at once, what they admit
never exceeds the budget while requests use no more than they asked for. When the request
ends, its reported usage (a stream's at its end; for a client that left mid-stream, what the
upstream had produced) replaces the estimate; a request that failed gives it all back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from router import errors
from router.limits.admission import Limiter
from router.limits.windows import WindowCounter
from router.spend.budget_state import INF, Held, reserve_local, seen, text
from router.spend.budget_table import Budget, BudgetSet, BudgetTable, Counters
from router.spend.entry import relayed_chars
from router.spend.prices import MILLION, NANOS, Price, cost_nanos, tokens
from router.upstream.usage import CHARS_PER_TOKEN, estimate_prompt_tokens, estimate_tokens

if TYPE_CHECKING:
    from router.observability.access import RequestRecord
    from router.types import Call, RoutingGraph, Target


class CallBudget:
    """One request's reservations, settled once when it ends (`settle`)."""

    __slots__ = (
        "asked",
        "attempt",
        "counted",
        "held",
        "limiter",
        "now",
        "prompt",
        "settled",
        "spent",
        "table",
        "unit",
    )

    def __init__(
        self,
        limiter: Limiter,
        table: BudgetTable,
        prompt: int,
        asked: int | None,
        unit: int | None,
    ) -> None:
        self.limiter, self.table = limiter, table
        self.prompt = prompt  # the prompt's estimated tokens
        self.asked = asked  # the completion tokens the request asked for at most
        self.unit = unit  # the operation's own unit (`router.limits.units`), where not tokens
        self.held: list[Held] = []
        self.now = 0.0  # unix seconds of the last reservation
        # The budget that refused (budget, remaining, reset in s), for the refusal's headers.
        self.spent: tuple[Budget, int, int] | None = None
        self.settled = False
        # (prompt, cached, completion tokens, cost in nanos: -1 unknown) once settled
        self.counted: tuple[int, int, int, int] | None = None

    def estimate(self, money: bool, price: Price | None, output_tokens: int) -> int:
        """What a request may cost: nanos, or tokens (at least 1, so a spent budget refuses
        even a request estimated at nothing)."""
        if self.unit is not None:
            return max(1, self.unit) if not money else 1
        out = self.asked if self.asked is not None else output_tokens
        if not money:
            return max(1, self.prompt + out)
        if price is None:
            return 1
        return max(1, cost_nanos(price, self.prompt, 0, out))

    async def reserve(
        self, bset: BudgetSet, price: Price | None, target: Target | None
    ) -> errors.BudgetExceeded | None:
        """Reserve in every counter of `bset`, or in none: the refusal if one is spent."""
        self.now = now = time.time()
        limiter = self.limiter
        local = limiter.local
        taken: list[Held] = []
        for counters in bset.counters(now):
            cost = self.estimate(counters.budgets[0].money, price, counters.output_tokens)
            if local is not None:  # in-process: straight to the counters, nothing to await
                held = reserve_local(local, counters, cost, target)
            else:
                ticket = await limiter.acquire(counters.pset, cost, 0)
                verdict = ticket.verdict
                if verdict is None:  # the backend is down and the budgets fail open
                    held = Held(counters, None, (), cost, 0, target, ticket)
                else:
                    held = Held(counters, verdict.used, verdict.resets, cost, verdict.at,
                                target, ticket, verdict.admitted)  # fmt: skip
            used = held.used
            if used is not None:
                for budget, count in zip(counters.budgets, used):  # noqa: B905 (equal)
                    seen[budget.labels] = (budget, count)
                if not held.ok:
                    for earlier in taken:
                        self._give_back(earlier)
                    return self._refusal(counters, used, held.resets, cost, now)
            taken.append(held)
        if bset.retired:
            self._retire(bset)
        self.held += taken
        return None

    def _give_back(self, held: Held, actual: int | None = 0) -> None:
        """Replace `held`'s estimate by `actual` (None: the estimate stands)."""
        if held.ticket is not None:
            self.limiter.finish_soon(held.ticket, actual)
        elif actual is not None and actual != held.cost:
            local = self.limiter.local
            if local is None:
                return
            if held.counters.fixed:
                sums = local.sums
                for limit in held.counters.pset.limits:
                    sums[limit.key] = sums.get(limit.key, 0) + actual - held.cost
                return
            buckets = local.buckets
            for limit in held.counters.pset.limits:
                bucket = buckets.get(limit.key)
                if isinstance(bucket, WindowCounter):
                    bucket.reconcile("", held.at, held.cost, actual)

    def _retire(self, bset: BudgetSet) -> None:
        """Forget the in-process counters of periods that have ended."""
        local = self.limiter.local
        for key in bset.retired:
            if local is not None:
                local.buckets.pop(key, None)
                local.sums.pop(key, None)
        bset.retired.clear()

    @staticmethod
    def _reset(counters: Counters, i: int, resets: Sequence[int], now: float) -> int:
        """Seconds until budget `i` has room again: its period's end, or its window's."""
        ends = counters.ends[i]
        seconds = ends - now if ends != float("inf") else resets[i] / 1000
        return max(1, -int(-seconds // 1))

    def _refusal(
        self,
        counters: Counters,
        used: Sequence[int],
        resets: Sequence[int],
        cost: int,
        now: float,
    ) -> errors.BudgetExceeded:
        over = [i for i, b in enumerate(counters.budgets) if used[i] + cost > b.amount]
        over.sort(key=lambda i: counters.budgets[i].on_exceeded != "reject")  # rejects first
        wait = max(self._reset(counters, i, resets, now) for i in over)
        budget = counters.budgets[over[0]]
        self.spent = (budget, max(0, budget.amount - used[over[0]]), wait)
        headers = dict(self.headers())
        headers["retry-after"] = str(wait)
        return errors.BudgetExceeded(budget.describe(), headers=headers)

    def _tightest(self) -> tuple[Budget, int, int] | None:
        """(budget, remaining, reset s) of the budget with the least left for its size."""
        if self.spent is not None:
            return self.spent
        chosen: tuple[Held, int, int] | None = None
        for held in self.held:
            used = held.used
            if used is None:
                continue
            for i, budget in enumerate(held.counters.budgets):
                left = budget.amount - used[i]
                if left < 0:
                    left = 0
                if chosen is None or left * chosen[0].counters.budgets[chosen[1]].amount < (
                    chosen[2] * budget.amount
                ):
                    chosen = (held, i, left)
        if chosen is None:
            return None
        held, i, left = chosen
        counters = held.counters
        return counters.budgets[i], left, self._reset(counters, i, held.resets, self.now)

    def headers(self) -> list[tuple[str, str]]:
        """`x-budget-*`: the tightest budget's amount, what it has left, its unit and the
        seconds until it starts afresh (or until its window frees room)."""
        return [(name.decode(), value.decode()) for name, value in self.header_pairs()]

    def header_pairs(self) -> list[tuple[bytes, bytes]]:
        """`headers` as the byte pairs of an answer's raw headers."""
        held = self.held[0] if len(self.held) == 1 and self.spent is None else None
        if held is not None and held.used is not None and len(held.used) == 1:
            # one budget (the usual case): nothing to compare
            budget, ends = held.counters.budgets[0], held.counters.ends[0]
            left = budget.amount - held.used[0]
            if left <= 0:
                remaining = "0"
            elif budget.money:  # `text`, inlined
                units, nanos = divmod(left, NANOS)
                remaining = f"{units}.{nanos:09d}".rstrip("0") if nanos else str(units)
            else:
                remaining = str(left)
            seconds = ends - self.now if ends != INF else held.resets[0] / 1000
            reset = max(1, -int(-seconds // 1))
            return [
                budget.limit_header,
                (b"x-budget-remaining", remaining.encode()),
                budget.unit_header,
                (b"x-budget-reset", str(reset).encode()),
            ]
        tightest = self._tightest()
        if tightest is None:
            return []
        budget, left, reset = tightest
        return [
            budget.limit_header,
            (b"x-budget-remaining", text(budget, left).encode()),
            budget.unit_header,
            (b"x-budget-reset", str(reset).encode()),
        ]

    # -- per attempt (provider budgets) ---------------------------------------------------------

    async def before_attempt(self, target: Target) -> errors.RouterError | None:
        """A provider budget: None to go ahead, an error to move on (`fallback`); raises to
        fail the request (`reject`)."""
        bset = self.table.providers[target.runtime.name]
        refused = await self.reserve(bset, target.price, target)
        if refused is None:
            return None
        if any(b.on_exceeded == "reject" for b in bset.budgets):
            raise refused
        return refused

    def after_attempt(self, target: Target) -> None:
        """A failed or cancelled attempt gives back its provider reservations at `target`
        (a hedge may have another attempt's under way elsewhere)."""
        mine = [held for held in self.held if held.target is target]
        for held in mine:
            self.held.remove(held)
            self._give_back(held)

    # -- the end ------------------------------------------------------------------------------

    def settle(self, record: RequestRecord, call: Call) -> None:
        """Replace each reservation by what the request cost (once), and keep what it
        counted (`counted`) for its ledger row."""
        if self.settled:
            return
        self.settled = True
        usage, target = call.usage, call.target
        if usage is not None:
            prompt, cached, completion = tokens(usage)
        elif record.relay is not None:  # a stream that ended before its usage came
            prompt, cached = estimate_prompt_tokens(call.body), 0
            completion = estimate_tokens(relayed_chars(record.relay))
        else:  # no usage: none counted; an answer's estimate stands (its cost is unknown)
            self.counted = (0, 0, 0, 0)
            unknown = target is not None and record.status == 200
            for held in self.held:
                answered = held.target is None or held.target is target
                self._give_back(held, None if unknown and answered else 0)
            return
        price = target.price if target is not None else None
        nanos = cost_nanos(price, prompt, cached, completion) if price is not None else None
        cost = (-1 if nanos is None else nanos) if prompt or completion else 0
        self.counted = (prompt, cached, completion, cost)
        used = prompt + completion
        for held in self.held:
            counters = held.counters
            if held.target is not None and held.target is not target:
                actual: int | None = 0  # an attempt that did not answer
            elif not counters.budgets[0].money:
                actual = used
            elif nanos is not None:
                actual = nanos
            else:
                actual = None if record.status == 200 else 0
            local = self.limiter.local
            if counters.single and held.ticket is None and local is not None:
                if actual is not None and actual != held.cost:  # `_give_back`, inlined
                    key = counters.pset.limits[0].key
                    local.sums[key] = local.sums.get(key, 0) + actual - held.cost
                continue
            self._give_back(held, actual)


def _prompt_tokens(body: dict[str, Any]) -> int:
    """`estimate_prompt_tokens`, without its generator for the usual chat body (messages
    whose content is text); any other body is left to it."""
    messages = body.get("messages")
    if type(messages) is not list:
        return estimate_prompt_tokens(body)
    chars = 0
    for message in messages:
        content = message.get("content") if type(message) is dict else None
        if type(content) is not str:
            return estimate_prompt_tokens(body)
        chars += len(content)
    return -(-chars // CHARS_PER_TOKEN) + 4 * len(messages)


def _asked(body: dict[str, Any]) -> int | None:
    most = body.get("max_completion_tokens") or body.get("max_tokens")
    return most if type(most) is int and most >= 0 else None


def admit_now(
    limiter: Limiter, graph: RoutingGraph, call: Call
) -> CallBudget | Literal[False] | None:
    """`admit` without awaiting anything, for the usual case: budgets counted in this
    process, one calendar-period counter for the request's pair, a request priced in
    tokens, and room in the budget. False when `admit` must decide instead (a shared
    backend, several counters, a spent budget: nothing is reserved then)."""
    local = limiter.local
    if local is None:
        return False
    table = graph.budgets
    pairs, pair = table.pairs, (call.key.name, call.route.name)
    bset = pairs[pair] if pair in pairs else table.for_request(*pair)
    if bset is None:
        return False if table.providers else None
    op = call.op
    if op.cost is not None:
        return False
    now = time.time()
    counters = bset.counters(now)
    if len(counters) != 1 or not counters[0].single or bset.retired:
        return False  # (a period that ended: `admit` forgets its counters)
    held_in = counters[0]
    body = call.body
    prompt = _prompt_tokens(body)
    asked = _asked(body) if op.streams else 0
    out = asked if asked is not None else held_in.output_tokens
    budget = held_in.budgets[0]
    if not budget.money:
        cost = max(1, prompt + out)
    elif (price := bset.price) is None:
        cost = 1
    else:  # `cost_nanos(price, prompt, 0, out)`, without its call and its clamps
        cost = max(1, (prompt * price.input + out * price.output + MILLION // 2) // MILLION)
    limit = held_in.pset.limits[0]
    sums = local.sums
    count = sums.get(limit.key, 0) + cost
    if count > limit.limit:
        return False  # spent: `admit` refuses, or falls back
    sums[limit.key] = count
    seen[budget.labels] = (budget, count)
    admitted = CallBudget(limiter, table, prompt, asked, None)
    admitted.now = now
    admitted.held.append(Held(held_in, (count,), (0,), cost, 0, None, None))
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
    prompt = _prompt_tokens(call.body) if unit is None else 0
    # An answer of text (chat, completions, ...: what can stream) may be as long as
    # `max_tokens` allows; embeddings and the like answer no completion tokens.
    asked = _asked(call.body) if call.op.streams else 0
    budget = CallBudget(limiter, table, prompt, asked, unit(call.body) if unit else None)
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
