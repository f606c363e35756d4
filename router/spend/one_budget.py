"""The usual request's budgets: one budget over calendar periods, counted in this process,
in a table with no provider budgets (`router.spend.budget_admission.admit_now`).

Its whole state is one plain sum per period (`MemoryBackend.sums`), so a request holds its
counter, what it reserved and what the sum was then; admitting, the headers and settling
are a few lines each, where `CallBudget` keeps a list of reservations in several counters,
shared or not, per attempt (the admission: 19.5 k instructions before, 14.6 k now).
It gives the same figures and headers as `CallBudget` does for the same request (a test
holds the two to that, case by case).
"""

from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING

from router.spend.budget_state import header_pairs
from router.spend.budget_table import EMPTY, Counters
from router.spend.entry import used_tokens
from router.spend.prices import cost_nanos

if TYPE_CHECKING:
    from router import errors
    from router.observability.access import RequestRecord
    from router.types import Call, Target


class OneBudget:
    """One request's reservation of `cost` in `sums[key]`, which then counted `count`."""

    __slots__ = ("cost", "count", "counted", "counters", "now", "sums")

    spent = None  # (`CallBudget.spent`: never refused, or it would not exist)
    table = EMPTY  # (whose provider budgets `attempts` looks up: none, as in the request's)

    def __init__(
        self, counters: Counters, sums: dict[str, int], cost: int, count: int, now: float
    ) -> None:
        self.counters, self.sums, self.cost, self.count, self.now = counters, sums, cost, count, now
        # (prompt, cached, completion tokens, cost in nanos: -1 unknown) once settled
        self.counted: tuple[int, int, int, int] | None = None

    def header_pairs(self) -> list[tuple[bytes, bytes]]:
        """`x-budget-*` as an answer's raw headers (see `CallBudget.headers`)."""
        counters = self.counters
        budget = counters.budgets[0]
        seconds = counters.ends[0] - self.now  # (`reset_seconds`, inline: on every answer)
        reset = ceil(seconds) if seconds > 1 else 1
        return header_pairs(budget, budget.amount - self.count, reset)

    async def before_attempt(self, target: Target) -> errors.RouterError | None:
        return None  # no provider budget in the table (`admit_now` takes this path only then)

    def after_attempt(self, target: Target) -> None:
        pass  # the reservation is the request's, not an attempt's: settled at its end

    def settle(self, record: RequestRecord, call: Call) -> None:
        """Replace the reservation by what the request cost (once), as `CallBudget.settle`."""
        if self.counted is not None:
            return
        target, used = call.target, used_tokens(record, call)
        if used is None:  # no usage: an answer's estimate stands (cost unknown), a failure's goes
            self.counted = (0, 0, 0, 0)
            if target is None or record.status != 200:
                self._replace(0)
            return
        prompt, cached, completion = used
        price = target.price if target is not None else None
        if price is None:
            self.counted = (prompt, cached, completion, -1 if prompt or completion else 0)
            if not self.counters.budgets[0].money:
                self._replace(prompt + completion)
            elif record.status != 200:
                self._replace(0)  # (a money budget's answer without a price: estimate stands)
            return
        nanos = cost_nanos(price, prompt, cached, completion)
        self.counted = (prompt, cached, completion, nanos)
        self._replace(nanos if self.counters.budgets[0].money else prompt + completion)

    def _replace(self, actual: int) -> None:
        """Count `actual` instead of the estimate, in the period it was reserved in (not in one
        that has ended meanwhile: its counter is gone, and stays gone)."""
        if actual != self.cost:
            key = self.counters.pset.limits[0].key
            sums = self.sums
            count = sums.get(key)
            if count is not None:
                sums[key] = count + actual - self.cost
