"""One request's budgets: what it reserved in each counter that applies to it, the
refusal or the remaining-budget headers that come of it, and the reconciliation with what the
request really cost when it ends (see `router.spend.budget_admission` for the admission).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from router import errors
from router.limits.admission import Limiter
from router.limits.windows import WindowCounter
from router.spend.budget_state import INF, Held, header_pairs, reserve_local, reset_seconds, seen
from router.spend.budget_table import Budget, BudgetSet, BudgetTable, Counters
from router.spend.entry import used_tokens
from router.spend.prices import (
    Price,
    cost_nanos,
    request_nanos,
    tokens,
    unit_nanos,
)

if TYPE_CHECKING:
    from router.observability.access import RequestRecord
    from router.types import Call, Target


class CallBudget:
    """One request's reservations, settled once when it ends (`settle`)."""

    __slots__ = (
        "asked",
        "attempt",
        "choices",
        "counted",
        "held",
        "limiter",
        "metered",
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
        metered: tuple[str, int] | None = None,
        choices: int = 1,
    ) -> None:
        self.limiter, self.table = limiter, table
        self.metered = metered  # (kind, units) a metered operation expects (`metered.estimate`)
        self.prompt = prompt  # the prompt's estimated tokens
        self.asked = asked  # the completion tokens the request asked for at most, each
        self.choices = choices  # ... of how many completions (`n`)
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
            if not money:
                return max(1, self.unit)
            metered = self.metered
            cost = None
            if metered is not None and price is not None:
                cost = unit_nanos(price, metered[0], metered[1])
            return max(1, cost) if cost is not None else 1
        out = (self.asked if self.asked is not None else output_tokens) * self.choices
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
            if held.counters.fixed:  # (a period that ended meanwhile: its counter stays gone)
                sums = local.sums
                for limit in held.counters.pset.limits:
                    count = sums.get(limit.key)
                    if count is not None:
                        sums[limit.key] = count + actual - held.cost
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
        return reset_seconds(ends - now if ends != INF else resets[i] / 1000)

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
        left = max(0, budget.amount - used[over[0]])
        self.spent = (budget, left, wait)
        headers = dict(self.headers())
        if cost <= budget.amount:  # (a request above the whole budget never fits: no wait)
            headers["retry-after"] = str(wait)
        return errors.BudgetExceeded(budget.refusal(left, cost), headers=headers)

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
            budget = held.counters.budgets[0]
            left = budget.amount - held.used[0]
            return header_pairs(budget, left, self._reset(held.counters, 0, held.resets, self.now))
        tightest = self._tightest()
        return [] if tightest is None else header_pairs(*tightest)

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
        if call.units:
            self._settle_metered(record, call)
            return
        target, counts = call.target, used_tokens(record, call)
        if counts is None:  # no usage: none counted; an answer's estimate stands (cost unknown)
            self.counted = (0, 0, 0, 0)
            unknown = target is not None and record.status == 200
            for held in self.held:
                answered = held.target is None or held.target is target
                self._give_back(held, None if unknown and answered else 0)
            return
        prompt, cached, completion = counts
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
                    count = local.sums.get(key)
                    if count is not None:  # (not a period that has ended meanwhile)
                        local.sums[key] = count + actual - held.cost
                continue
            self._give_back(held, actual)

    def _settle_metered(self, record: RequestRecord, call: Call) -> None:
        """`settle` for a metered operation's answer: its units at its target's price in
        money; in tokens, its own unit's estimate stands."""
        target = call.target
        price = target.price if target is not None else None
        prompt, cached, completion = tokens(call.usage)
        nanos = None
        if price is not None:
            nanos = request_nanos(price, call.op.name, prompt, cached, completion, call.units)
        self.counted = (prompt, cached, completion, -1 if nanos is None else nanos)
        for held in self.held:
            actual: int | None
            if held.target is not None and held.target is not target:
                actual = 0  # an attempt that did not answer
            elif not held.counters.budgets[0].money:
                actual = None
            else:
                actual = nanos if nanos is not None else (None if record.status == 200 else 0)
            self._give_back(held, actual)
