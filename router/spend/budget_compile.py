"""Budget policies checked and compiled from a config (`router.spend.budget_table` holds
what they compile to): every name and fallback resolved, every target a money budget pays
for priced, and warnings for what loads but will not do what it seems to (a metered
operation without its price, a fallback model that does not serve what it stands in for).
"""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo

from router.checkpoints import checkpoint
from router.config.loader import ConfigIssue, SourceMap, did_you_mean
from router.config.models import RouterConfig
from router.spend.budget_config import BudgetConfig
from router.spend.budget_table import (
    EMPTY,
    Budget,
    BudgetSet,
    BudgetTable,
    highest_price,
    reachable,
)
from router.spend.periods import COUNTS_FOR_MS
from router.spend.prices import METERED, NANOS, UNIT_FIELDS, unit_price
from router.types import Route


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


class _Refs:
    """Budget names attached somewhere, checked, as compiled `Budget`s."""

    def __init__(self, config: RouterConfig, source: SourceMap, issues: list[ConfigIssue]):
        self.config, self.source, self.issues = config, source, issues

    def __call__(self, names: list[str], scope: str, path: tuple[str | int, ...]) -> list[Budget]:
        out: list[Budget] = []
        budgets = self.config.budgets
        checkpoint()  # (once a key, model or provider)
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
    warnings: list[ConfigIssue],
) -> BudgetTable:
    """Resolve every attachment; `allowed` maps each key name to the models it may use.
    Errors go to `issues`, warnings to `warnings`."""
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
            providers[name] = BudgetSet(tuple(found), highest_price(mine))
    prices = {
        name: highest_price([t for r in reachable(routes, name) for t in r.targets])
        for name in routes
    }
    table = BudgetTable(
        tuple(glob),
        {name: tuple(found) for name, found in per_model.items() if found},
        {name: tuple(found) for name, found in per_key.items() if found},
        prices,
        allowed,
        providers,
    )
    unpriced_targets(source, issues, warnings, routes, table)
    fallbacks_not_serving(source, warnings, routes, table)
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
    source: SourceMap,
    issues: list[ConfigIssue],
    warnings: list[ConfigIssue],
    routes: Mapping[str, Route],
    table: BudgetTable,
) -> None:
    """A money budget cannot count a target without a price: each such target is an error
    naming a budget that needs it. A priced target whose provider serves a metered operation
    (images, transcriptions, speech) without that operation's price is a warning."""
    needs: dict[tuple[str, int], str] = {}  # (model, target index) -> a budget's name
    for model, budget in _money_models(table).items():
        for route in reachable(routes, model) if model in routes else ():
            for i, _ in enumerate(route.targets):
                needs.setdefault((route.name, i), budget)
    providers = table.providers
    for name, bset in providers.items():
        money = [b.name for b in bset.budgets if b.money]
        for route in routes.values() if money else ():
            for i, target in enumerate(route.targets):
                if target.runtime.name == name:
                    needs.setdefault((route.name, i), money[0])
    for (model, i), budget in sorted(needs.items()):
        spec = routes[model].targets[i]
        price = spec.price
        if price is None:
            issues.append(
                source.issue(
                    ("models", model, "targets", i),
                    f"target {spec.label} has no price, but money budget '{budget}' applies "
                    "to requests that may reach it: give it a `price`, or "
                    f"`providers.{spec.runtime.name}.prices.{spec.model}`",
                )
            )
            continue
        served = sorted(op.name for op in spec.operations if op.name in METERED)
        missing = [op for op in served if unit_price(price, METERED[op]) is None]
        if missing:
            unpriced = dict.fromkeys(UNIT_FIELDS[METERED[op]] for op in missing)  # (each once)
            fields = " or ".join(f"`{name}`" for name in unpriced)
            warnings.append(
                source.issue(
                    ("models", model, "targets", i),
                    f"target {spec.label} may serve {_listed(missing)} (its provider does), "
                    f"but its price has no {fields}, while money budget '{budget}' applies to "
                    "requests that may reach it: such answers are recorded with no cost and "
                    "the budget counts them at nothing (give the price; ignore this if its "
                    "upstream model serves none of them)",
                    "warning",
                )
            )


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def fallbacks_not_serving(
    source: SourceMap,
    warnings: list[ConfigIssue],
    routes: Mapping[str, Route],
    table: BudgetTable,
) -> None:
    """A budget falling back to a model that does not serve an operation a model it covers
    serves: once it is spent, those requests are refused (429 `budget_exceeded`), never sent
    to a model that cannot answer them. One warning per budget."""
    covered: dict[str, set[str]] = {}  # budget name -> models it counts requests to
    usable = frozenset().union(*table.allowed.values()) if table.allowed else frozenset()
    for budget in table.glob:
        covered.setdefault(budget.name, set()).update(usable)
    for model, budgets in table.per_model.items():
        for budget in budgets:
            covered.setdefault(budget.name, set()).add(model)
    for key, budgets in table.per_key.items():
        for budget in budgets:
            covered.setdefault(budget.name, set()).update(table.allowed.get(key, ()))
    fallbacks = {
        b.name: b.fallback
        for group in (table.glob, *table.per_model.values(), *table.per_key.values())
        for b in group
        if b.on_exceeded == "fallback" and b.fallback is not None
    }
    for name, fallback in sorted(fallbacks.items()):
        to = routes.get(fallback)
        if to is None:
            continue
        unserved: dict[str, list[str]] = {}  # operation -> models serving it
        for model in sorted(covered.get(name, ())):
            route = routes.get(model)
            if route is None or model == fallback:
                continue
            for op in route.operations - to.operations:
                unserved.setdefault(op.name, []).append(model)
        if not unserved:
            continue
        ops = sorted(unserved)
        served = sorted({m for models in unserved.values() for m in models})
        warnings.append(
            source.issue(
                ("budgets", name, "fallback"),
                f"model '{fallback}' does not serve {_listed(ops)}, which model "
                f"{_listed([repr(m) for m in served])} serves: once budget '{name}' is spent, "
                "such requests are refused with 429 `budget_exceeded`, not sent to it",
                "warning",
            )
        )
