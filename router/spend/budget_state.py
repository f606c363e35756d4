"""The in-process side of budgets: what one reservation holds, the counters of this
process's own backend, and what `/metrics` shows of each budget.

In process, a budget over calendar periods is a plain sum per period (nothing leaves it
before the period ends); a rolling window is a `WindowCounter`, as a rate limit's. Both are
checked and reserved without tickets, since nothing here waits.
"""

from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING

from router.limits.admission import Ticket
from router.limits.backends import MemoryBackend
from router.observability import metrics
from router.spend.budget_table import Budget, Counters
from router.spend.prices import NANOS, money_text

if TYPE_CHECKING:
    from router.types import Target

# What each budget had counted (nanos or tokens) when this process last admitted a request
# against it, per (budget, scope, unit): read by `/metrics` only.
seen: dict[tuple[str, str, str], tuple[Budget, int]] = {}


def _rows() -> list[tuple[tuple[str, str, str], float]]:
    rows = []
    for labels, (budget, used) in list(seen.items()):
        left = max(0, budget.amount - used)
        rows.append((labels, left / NANOS if budget.money else float(left)))
    return rows


remaining_gauge = metrics.LabeledGauge(
    "llm_router.budget.remaining",
    "What a budget had left (currency or tokens) when this replica last admitted a request "
    "against it, by budget, scope (global, key:NAME, model:NAME, provider:NAME) and unit.",
    ("budget", "scope", "unit"),
)
remaining_gauge.sources.append(_rows)


def reset_seconds(seconds: float) -> int:
    """Whole seconds until a budget has room again, at least 1 (`x-budget-reset`)."""
    return ceil(seconds) if seconds > 1 else 1


def header_pairs(budget: Budget, left: int, reset: int) -> list[tuple[bytes, bytes]]:
    """`x-budget-*` as an answer's raw headers: the budget's amount, what it has left (0 once
    spent), its unit and the seconds until it starts afresh or its window frees room."""
    # what is left: money exact to the nano, tokens as an integer
    figure = b"0" if left <= 0 else (money_text(left) if budget.money else str(left)).encode()
    return [
        budget.limit_header,
        (b"x-budget-remaining", figure),
        budget.unit_header,
        (b"x-budget-reset", str(reset).encode()),
    ]


INF = float("inf")


class Held:
    """One reservation (`ok`) or refusal: its counters, what they had counted with it
    (`used`; before it for a refusal), when each frees room (`resets`, ms), the estimate,
    the backend's time of it (ms), the attempt's target (None for an admission's) and,
    with a shared backend, its ticket."""

    __slots__ = ("at", "cost", "counters", "ok", "resets", "target", "ticket", "used")

    def __init__(
        self,
        counters: Counters,
        used: tuple[int, ...] | list[int] | None,
        resets: tuple[int, ...] | list[int],
        cost: int,
        at: int,
        target: Target | None,
        ticket: Ticket | None,
        ok: bool = True,
    ) -> None:
        self.counters, self.used, self.resets, self.cost = counters, used, resets, cost
        self.at, self.target, self.ticket, self.ok = at, target, ticket, ok


def reserve_local(
    local: MemoryBackend, counters: Counters, cost: int, target: Target | None
) -> Held:
    """Check and reserve in the in-process counters: calendar periods as plain sums per
    period, rolling windows by `MemoryBackend.acquire_now` (without a ticket)."""
    limits = counters.pset.limits
    if counters.fixed:  # calendar periods: plain sums, keyed by the period
        sums = local.sums
        if len(limits) == 1:
            limit = limits[0]
            count = sums.get(limit.key, 0)
            if count + cost > limit.limit:
                return Held(counters, (count,), (0,), cost, 0, target, None, False)
            sums[limit.key] = count = count + cost
            return Held(counters, (count,), (0,), cost, 0, target, None)
        counts = [sums.get(limit.key, 0) for limit in limits]
        if any(n + cost > limit.limit for n, limit in zip(counts, limits, strict=True)):
            return Held(counters, counts, [0] * len(counts), cost, 0, target, None, False)
        for limit in limits:
            sums[limit.key] = sums.get(limit.key, 0) + cost
        return Held(counters, [n + cost for n in counts], [0] * len(counts), cost, 0, target, None)
    verdict = local.acquire_now(limits, "", cost, 0)  # rolling windows: the limiter's own
    return Held(
        counters, verdict.used, verdict.resets, cost, verdict.at, target, None, verdict.admitted
    )
