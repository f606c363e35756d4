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

from router.config.loader import ConfigIssue, SourceMap, did_you_mean
from router.config.models import RouterConfig
from router.graph.links import walk_fallbacks
from router.limits.policies import PAIRS_KEPT, SUBWINDOWS, TOKENS, Limit, Policy, PolicySet
from router.spend.budget_config import BudgetConfig
from router.spend.periods import COUNTS_FOR_MS, current
from router.spend.prices import NANOS, Price
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
        units, nanos = divmod(self.amount, NANOS)
        text = f"{units}.{nanos:09d}".rstrip("0") if self.money and nanos else str(units)
        if not self.money:
            text = str(self.amount)
        object.__setattr__(self, "limit_header", (b"x-budget-limit", text.encode()))
        object.__setattr__(self, "unit_header", (b"x-budget-unit", self.unit.encode()))

    def key(self, period: str) -> str:
        kind = "m" if self.money else "t"
        return f"budget:{self.name}:{self.scope}:{kind}:{period or self.window_ms}"

    def describe(self) -> str:
        amount = f"{self.amount / NANOS:g} {self.unit}" if self.money else f"{self.amount} tokens"
        per = f"per {self.period}" if self.period else f"per {self.window_ms // 1000} s"
        return f"budget '{self.name}' ({self.scope}) of {amount} {per} is spent"


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
    _until: float = -math.inf  # when some period ends and the counters' keys change
    _counters: tuple[Counters, ...] = ()
    retired: list[str] = field(default_factory=list)  # keys of periods that have ended

    def counters(self, now: float) -> tuple[Counters, ...]:
        """Money then tokens counters for the period `now` (unix s) falls in."""
        if now < self._until:
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
        self._counters, self._until = tuple(out), until
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


def _budget(name: str, scope: str, spec: BudgetConfig, config: RouterConfig) -> Budget:
    closed = (spec.on_error or config.server.rate_limit_backend.on_error) == "closed"
    money = spec.amount is not None
    amount = round(spec.amount * NANOS) if spec.amount is not None else spec.tokens or 0
    window = spec.window * 1000 if spec.window is not None else COUNTS_FOR_MS[spec.period or ""]
    unit = config.spend.currency if money else "tokens"
    zone = ZoneInfo(spec.timezone)
    return Budget(
        name, scope, money, amount, spec.period, zone, window, spec.on_exceeded,
        spec.fallback, spec.output_tokens, closed, unit,
    )  # fmt: skip


def _highest(targets: list[Target]) -> Price | None:
    prices = [t.price for t in targets if t.price is not None]
    if not prices:
        return None
    return Price(
        max(p.input for p in prices),
        max(p.cached_input for p in prices),
        max(p.output for p in prices),
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


class _Refs:
    """Budget names attached somewhere, checked, as compiled `Budget`s."""

    def __init__(self, config: RouterConfig, source: SourceMap, issues: list[ConfigIssue]):
        self.config, self.source, self.issues = config, source, issues

    def __call__(self, names: list[str], scope: str, path: tuple[str | int, ...]) -> list[Budget]:
        out: list[Budget] = []
        budgets = self.config.budgets
        for i, name in enumerate(names):
            if name not in budgets:
                hint = did_you_mean(name, budgets)
                self.issues.append(self.source.issue((*path, i), f"unknown budget '{name}'{hint}"))
            elif all(b.name != name for b in out):
                out.append(_budget(name, scope, budgets[name], self.config))
        return out


def compile_budgets(
    config: RouterConfig,
    source: SourceMap,
    issues: list[ConfigIssue],
    routes: Mapping[str, Route],
    allowed: Mapping[str, frozenset[str]],
) -> BudgetTable:
    """Resolve every attachment; `allowed` maps each key name to the models it may use."""
    attached = [
        *(p.budgets for p in config.providers.values()),
        *(m.budgets for m in config.models.values()),
        *(k.budgets for k in config.keys.values()),
    ]
    if not config.budgets and not config.server.budgets and not any(attached):
        return EMPTY
    refs = _Refs(config, source, issues)
    for name, spec in config.budgets.items():
        if spec.fallback is not None and spec.fallback not in config.models:
            hint = did_you_mean(spec.fallback, config.models)
            issues.append(
                source.issue(
                    ("budgets", name, "fallback"), f"unknown model '{spec.fallback}'{hint}"
                )
            )
    glob = refs(config.server.budgets, "global", ("server", "budgets"))
    _need_fallback(config, source, issues)
    per_model = {
        name: refs(m.budgets, f"model:{name}", ("models", name, "budgets"))
        for name, m in config.models.items()
    }
    per_key = {
        name: refs(k.budgets, f"key:{name}", ("keys", name, "budgets"))
        for name, k in config.keys.items()
    }
    per_provider = {
        name: refs(p.budgets, f"provider:{name}", ("providers", name, "budgets"))
        for name, p in config.providers.items()
    }
    providers = {}
    for name, found in per_provider.items():
        if found:
            mine = [t for r in routes.values() for t in r.targets if t.runtime.name == name]
            providers[name] = BudgetSet(tuple(found), _highest(mine))
    prices = {
        name: _highest([t for r in reachable(routes, name) for t in r.targets]) for name in routes
    }
    table = BudgetTable(
        tuple(glob),
        {name: tuple(found) for name, found in per_model.items() if found},
        {name: tuple(found) for name, found in per_key.items() if found},
        prices,
        allowed,
        providers,
    )
    unpriced_targets(config, source, issues, routes, table)
    return EMPTY if issues else table


def _need_fallback(config: RouterConfig, source: SourceMap, issues: list[ConfigIssue]) -> None:
    """`on_exceeded: fallback` on a key, model or global budget needs the model to go to."""
    names = set(config.server.budgets)
    for model in config.models.values():
        names.update(model.budgets)
    for key in config.keys.values():
        names.update(key.budgets)
    for name, spec in config.budgets.items():
        if name in names and spec.on_exceeded == "fallback" and spec.fallback is None:
            issues.append(
                source.issue(
                    ("budgets", name, "on_exceeded"),
                    "`fallback` needs the model to send requests to (`fallback: MODEL`) "
                    "where the budget is attached to a key, a model or globally",
                )
            )


def _money_models(table: BudgetTable) -> dict[str, str]:
    """Each model a money budget counts requests to, with one such budget's name: a
    global or model budget for every model some key may use, a key budget for that key's."""
    found: dict[str, str] = {}
    glob = next((b.name for b in table.glob if b.money), None)
    lists = {id(models): models for models in table.allowed.values()}  # shared lists once
    usable = frozenset().union(*lists.values())
    for model in usable:
        name = glob or next((b.name for b in table.per_model.get(model, ()) if b.money), None)
        if name is not None:
            found[model] = name
    for key, budgets in table.per_key.items():
        money = next((b.name for b in budgets if b.money), None)
        if money is None:
            continue
        for model in table.allowed.get(key, ()):
            found.setdefault(model, money)
    return found


def unpriced_targets(
    config: RouterConfig,
    source: SourceMap,
    issues: list[ConfigIssue],
    routes: Mapping[str, Route],
    table: BudgetTable,
) -> None:
    """A money budget cannot count a target without a price: each such target is an error
    naming a budget that needs it."""
    needs: dict[tuple[str, int], str] = {}  # (model, target index) -> a budget's name
    for model, budget in _money_models(table).items():
        for route in reachable(routes, model) if model in routes else ():
            for i, target in enumerate(route.targets):
                if target.price is None:
                    needs.setdefault((route.name, i), budget)
    providers = table.providers
    for name, bset in providers.items():
        money = [b.name for b in bset.budgets if b.money]
        for route in routes.values() if money else ():
            for i, target in enumerate(route.targets):
                if target.runtime.name == name and target.price is None:
                    needs.setdefault((route.name, i), money[0])
    for (model, i), budget in sorted(needs.items()):
        spec = routes[model].targets[i]
        issues.append(
            source.issue(
                ("models", model, "targets", i),
                f"target {spec.label} has no price, but money budget '{budget}' applies to "
                "requests that may reach it: give it a `price`, or "
                f"`providers.{spec.runtime.name}.prices.{spec.model}`",
            )
        )
