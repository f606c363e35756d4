"""Budget policies compiled into per-(key, model) and per-provider sets, like rate limits.

A budget is counted by the rate limiter's own backend (in this process, or in Redis shared by
every replica) as a tokens counter whose "tokens" are nanos of money or tokens: one atomic
check-and-reserve per admission, reconciled with the reported usage when the request ends.
A calendar period's counter is keyed by the period's first day, so a new period starts from
nothing on every replica at once; a rolling window's counter forgets what is older than it.
Everything a request needs is resolved here; a set only rebuilds its counters' keys when a
period ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from router.graph.links import walk_fallbacks
from router.limits.policies import PAIRS_KEPT, SUBWINDOWS, TOKENS, Limit, Policy, PolicySet
from router.spend.periods import current
from router.spend.prices import Price, money_text
from router.types import Route, Target


@dataclass(frozen=True, slots=True)
class Budget:
    """One attachment of a budget policy: `amount` in nanos (money) or tokens."""

    name: str
    scope: str  # "global", "key:app", "model:gpt", "provider:up"
    money: bool
    amount: int
    period: str | None  # day, week, month; None for a rolling window
    zone: ZoneInfo
    window_ms: int  # a rolling window's length; a calendar counter's lifetime
    on_exceeded: str
    fallback: str | None
    output_tokens: int
    fail_closed: bool
    unit: str  # the currency, or "tokens"
    labels: tuple[str, str, str] = ("", "", "")  # (name, scope, unit): its metric's labels
    # `x-budget-limit` and `x-budget-unit` as an answer's raw headers: the same every time
    limit_header: tuple[bytes, bytes] = (b"", b"")
    unit_header: tuple[bytes, bytes] = (b"", b"")

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", (self.name, self.scope, self.unit))
        text = money_text(self.amount) if self.money else str(self.amount)
        object.__setattr__(self, "limit_header", (b"x-budget-limit", text.encode()))
        object.__setattr__(self, "unit_header", (b"x-budget-unit", self.unit.encode()))

    def key(self, period: str) -> str:
        kind = "m" if self.money else "t"
        return f"budget:{self.name}:{self.scope}:{kind}:{period or self.window_ms}"

    def figure(self, value: int) -> str:
        """An amount of this budget's unit, for people: "4.25 EUR", "120 tokens"."""
        return f"{money_text(value)} {self.unit}" if self.money else f"{value} tokens"

    def refusal(self, left: int, cost: int) -> str:
        """Why a request estimated at `cost` is refused when the budget has `left`: spent,
        not enough left for it, or (`cost` above the whole amount) never enough."""
        per = f"per {self.period}" if self.period else f"per {self.window_ms // 1000} s"
        what = f"budget '{self.name}' ({self.scope}) of {self.figure(self.amount)} {per}"
        if cost > self.amount:
            return (
                f"this request's estimated cost, {self.figure(cost)}, is more than the whole "
                f"{what}: it can never be admitted (a smaller max_tokens lowers the estimate)"
            )
        if left > 0:
            return (
                f"{what} has {self.figure(left)} left, less than this request's estimated "
                f"cost of {self.figure(cost)}"
            )
        return f"{what} is spent"


@dataclass(slots=True)
class Counters:
    """The counters of one unit (money or tokens) for the current period, as the limiter
    takes them; `ends` per budget: when its period ends (unix s, +inf for a window)."""

    budgets: tuple[Budget, ...]
    pset: PolicySet
    ends: tuple[float, ...]
    output_tokens: int  # the most any of them assumes for a request without `max_tokens`
    fixed: bool  # every one a calendar period: in process, plain sums suffice
    single: bool = False  # one budget, over calendar periods: one plain sum


@dataclass(slots=True)
class BudgetSet:
    """The budgets at one enforcement point. `price` is the highest of each kind among the
    targets its requests may reach, so that an admission's estimate is an upper bound."""

    budgets: tuple[Budget, ...]
    price: Price | None
    _counters: tuple[Counters, ...] = ()
    retired: list[str] = field(default_factory=list)  # keys of periods that have ended
    # When some period ends and the counters' keys change (unix s), and the one counter when
    # the set is one budget over calendar periods (`Counters.single`): what `admit_now`
    # checks, without a call, per request.
    until: float = -math.inf
    one: Counters | None = None

    def counters(self, now: float) -> tuple[Counters, ...]:
        """Money then tokens counters for the period `now` (unix s) falls in."""
        if now < self.until:
            return self._counters
        old = [limit.key for c in self._counters for limit in c.pset.limits]
        out, until = [], math.inf
        for money in (True, False):
            chosen = tuple(b for b in self.budgets if b.money is money)
            if not chosen:
                continue
            limits, ends = [], []
            for i, budget in enumerate(chosen):
                name, end = "", math.inf
                if budget.period is not None:
                    period = current(budget.period, budget.zone, now)
                    name, end = period.name, period.ends
                span = budget.window_ms // SUBWINDOWS
                limits.append(
                    Limit(TOKENS, budget.key(name), budget.amount, budget.window_ms, i, span)
                )
                ends.append(end)
                until = min(until, end)
            policies = tuple(
                Policy(b.name, b.scope, b.on_exceeded, 0.0, b.fail_closed) for b in chosen
            )
            closed = any(b.fail_closed for b in chosen)
            pset = PolicySet(policies, tuple(limits), True, closed)
            most = max(b.output_tokens for b in chosen)
            fixed = all(b.period is not None for b in chosen)
            single = fixed and len(chosen) == 1
            out.append(Counters(chosen, pset, tuple(ends), most, fixed, single))
        self._counters, self.until = tuple(out), until
        self.one = out[0] if len(out) == 1 and out[0].single else None
        fresh = {limit.key for c in out for limit in c.pset.limits}
        self.retired += [key for key in old if key not in fresh]
        return self._counters


@dataclass(frozen=True, slots=True)
class BudgetTable:
    """The budgets per key, per model and global, combined into a pair's `BudgetSet` on the
    pair's first request and kept (at most `PAIRS_KEPT`), as the rate-limit tables are: a
    global budget over 10,000 keys and 1,000 models compiles to three small maps, not ten
    million sets."""

    glob: tuple[Budget, ...]
    per_model: Mapping[str, tuple[Budget, ...]]
    per_key: Mapping[str, tuple[Budget, ...]]
    prices: Mapping[str, Price | None]  # per model: the highest among what it may reach
    allowed: Mapping[str, frozenset[str]]  # per key: the models it may use
    providers: Mapping[str, BudgetSet]
    pairs: dict[tuple[str, str], BudgetSet | None] = field(default_factory=dict)

    @property
    def attached(self) -> bool:
        """Whether any budget applies to anything (what several workers must share)."""
        return bool(
            self.glob
            or self.providers
            or any(self.per_model.values())
            or any(self.per_key.values())
        )

    def for_request(self, key: str, model: str) -> BudgetSet | None:
        pairs = self.pairs
        if (key, model) in pairs:
            return pairs[(key, model)]
        found = None
        if model in self.prices and model in self.allowed.get(key, ()):
            budgets = self.glob + self.per_model.get(model, ()) + self.per_key.get(key, ())
            if budgets:
                found = BudgetSet(budgets, self.prices[model])
        if len(pairs) >= PAIRS_KEPT:
            pairs.clear()
        pairs[(key, model)] = found
        return found


EMPTY = BudgetTable((), {}, {}, {}, {}, {})


def _most(values: list[int | None]) -> int | None:
    given = [v for v in values if v is not None]
    return max(given) if given else None


def highest_price(targets: list[Target]) -> Price | None:
    prices = [t.price for t in targets if t.price is not None]
    if not prices:
        return None
    return Price(
        max(p.input for p in prices),
        max(p.cached_input for p in prices),
        max(p.output for p in prices),
        _most([p.image for p in prices]),
        _most([p.audio_second for p in prices]),
        _most([p.characters for p in prices]),
    )


def reachable(routes: Mapping[str, Route], model: str) -> tuple[Route, ...]:
    """Every route a request for `model` may end up at: its fallbacks, context fallbacks."""
    out: dict[str, Route] = {}
    queue = [routes[model]]
    while queue:
        for route in walk_fallbacks(routes, queue.pop()):
            if route.name not in out:
                out[route.name] = route
                extra = route.context_fallback
                if extra is not None and extra in routes and extra not in out:
                    queue.append(routes[extra])
    return tuple(out.values())
