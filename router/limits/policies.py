"""Rate-limit policies compiled into per-key, per-model and per-provider lookup tables.

A policy is a named budget; each place it is attached (the router, a key, a model, a
provider) gets its own counters, called buckets. Everything a request needs (which buckets,
their limits and windows, what to do on a limit or a backend failure) is resolved here at
load time, so admission is a dict lookup or two and one backend call.

The tables grow with keys + models, not keys x models: a request's set is its key's (with the
global policies) when its model has none, its model's when its key has none, and only when
both have policies the two together, built on the first request that needs that pair and
kept (at most `PAIRS_KEPT` pairs: a config of 10,000 keys and 1,000 models would otherwise
hold ten million sets, most never used).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from router.checkpoints import checkpoint
from router.config.loader import ConfigIssue, SourceMap, did_you_mean
from router.config.models import RouterConfig
from router.config.policies import RateLimitPolicyConfig

REQUESTS, TOKENS, CONCURRENT = "r", "t", "c"
# A window whose limit is at most this is counted exactly, one entry per admission (so its
# memory is bounded by the limit: a rejected request records nothing); a larger one by a
# sliding-window counter of SUBWINDOWS sub-windows (memory bounded by SUBWINDOWS, whatever
# the traffic). SUBWINDOWS divides every window's length in ms: 10 ms sub-windows for a
# second, 0.6 s for a minute, 36 s for an hour, 14.4 min for a day.
EXACT_LIMIT = 1_000
SUBWINDOWS = 100
_WINDOWS = (
    ("requests_per_second", REQUESTS, 1_000),
    ("requests_per_minute", REQUESTS, 60_000),
    ("requests_per_hour", REQUESTS, 3_600_000),
    ("requests_per_day", REQUESTS, 86_400_000),
    ("tokens_per_minute", TOKENS, 60_000),
    ("tokens_per_day", TOKENS, 86_400_000),
)


@dataclass(frozen=True, slots=True)
class Limit:
    """One counter: `kind` r/t/c, its bucket `key`, the `limit` and the window in ms;
    `span_ms` is its sub-window when it is a sliding-window counter, 0 for an exact log."""

    kind: str
    key: str
    limit: int
    window_ms: int  # 0 for concurrency
    policy: int  # index of the owning policy in its PolicySet
    span_ms: int = 0


def window_limit(kind: str, bucket: str, limit: int, window_ms: int, policy: int) -> Limit:
    """A requests or tokens window: an exact log up to EXACT_LIMIT, else a counter. The two
    keep their counts under different keys, so a limit changed across the threshold by a
    reload starts that window afresh instead of misreading the other's data."""
    key = f"{bucket}:{kind}{window_ms}"
    if limit <= EXACT_LIMIT:
        return Limit(kind, key, limit, window_ms, policy)
    return Limit(kind, key + ":w", limit, window_ms, policy, window_ms // SUBWINDOWS)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    scope: str  # e.g. "key:app", "provider:telkom", "global"
    on_limit: str
    max_wait: float
    fail_closed: bool


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every limit that applies at one enforcement point, flattened for one backend call."""

    policies: tuple[Policy, ...]
    limits: tuple[Limit, ...]
    counts_tokens: bool
    fail_closed: bool  # some policy wants to reject when the backend is down
    # At most one requests window and one tokens window: each is the tightest of its kind.
    one_per_kind: bool = field(init=False)
    # The keys of its concurrency limits: leases a shared backend renews while a request lives.
    lease_keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        kinds = [limit.kind for limit in self.limits if limit.kind != CONCURRENT]
        object.__setattr__(self, "one_per_kind", len(kinds) == len(set(kinds)))
        leases = tuple(limit.key for limit in self.limits if limit.kind == CONCURRENT)
        object.__setattr__(self, "lease_keys", leases)


EMPTY = PolicySet((), (), False, False)


Refs = tuple[tuple[str, str], ...]  # (policy name, scope) pairs, in the order they apply
PAIRS_KEPT = 65_536  # combined (key, model) sets kept; past it the cache starts afresh


@dataclass(frozen=True, slots=True)
class LimitTable:
    """The global set, per-key and per-model sets and per-provider attempt sets.

    `keys[k]` is the global policies and key k's; `models[m]` the global policies and model
    m's. A request for a model without policies reads its key's set, one without a key's
    policies its model's; a pair where both have policies is combined once, on first use."""

    base: PolicySet  # the global policies alone: a key and a model without policies
    keys: Mapping[str, PolicySet]
    models: Mapping[str, PolicySet]
    providers: Mapping[str, PolicySet]
    # What a pair's combined set is built from: the refs of the global policies, of each
    # model and of each key (only those with policies), the policies and the default on_error.
    refs: tuple[Refs, Mapping[str, Refs], Mapping[str, Refs]] = ((), {}, {})
    policies: Mapping[str, RateLimitPolicyConfig] = field(default_factory=dict, repr=False)
    default_closed: bool = False
    pairs: dict[tuple[str, str], PolicySet] = field(default_factory=dict, repr=False)
    providers_count_tokens: bool = field(init=False)  # some provider policy counts tokens

    def __post_init__(self) -> None:
        counts = any(p.counts_tokens for p in self.providers.values())
        object.__setattr__(self, "providers_count_tokens", counts)

    def for_request(self, key: str, model: str) -> PolicySet:
        """The set a request of `key` for `model` is admitted by (the caller has checked that
        the key may use the model)."""
        if not self.models:
            return self.keys.get(key, self.base)
        by_model = self.models.get(model)
        if by_model is None:
            return self.keys.get(key, self.base)
        if key not in self.keys:
            return by_model
        pair = self.pairs.get((key, model))
        if pair is None:
            pair = self._combine(key, model)
        return pair

    def _combine(self, key: str, model: str) -> PolicySet:
        glob, per_model, per_key = self.refs
        pair = _policy_set(
            [*glob, *per_model[model], *per_key[key]], self.policies, self.default_closed
        )
        if len(self.pairs) >= PAIRS_KEPT:
            self.pairs.clear()
        self.pairs[(key, model)] = pair
        return pair

    def for_provider(self, provider: str) -> PolicySet:
        return self.providers.get(provider, EMPTY)

    @property
    def admits(self) -> bool:
        """Whether any key, model or global policy applies to requests."""
        return bool(self.base.limits or self.keys or self.models)

    def entries(self) -> int:
        """Sets compiled (pairs combined since not counted): the global one, and one per key,
        model and provider with policies."""
        return 1 + len(self.keys) + len(self.models) + len(self.providers)


def _policy_set(
    refs: list[tuple[str, str]],
    policies: Mapping[str, RateLimitPolicyConfig],
    default_closed: bool,
) -> PolicySet:
    checkpoint()  # (once a key or model)
    out_policies: list[Policy] = []
    limits: list[Limit] = []
    for name, scope in refs:
        spec = policies[name]
        closed = (spec.on_error or ("closed" if default_closed else "open")) == "closed"
        index = len(out_policies)
        out_policies.append(Policy(name, scope, spec.on_limit, spec.max_wait, closed))
        bucket = f"{name}:{scope}"
        for setting, kind, window in _WINDOWS:
            value = getattr(spec, setting)
            if value is not None:
                limits.append(window_limit(kind, bucket, value, window, index))
        if spec.max_concurrent is not None:
            limits.append(Limit(CONCURRENT, f"{bucket}:c", spec.max_concurrent, 0, index))
    if not limits:
        return EMPTY
    return PolicySet(
        tuple(out_policies),
        tuple(limits),
        any(limit.kind == TOKENS for limit in limits),
        any(p.fail_closed for p in out_policies),
    )


def _refs(
    names: list[str],
    scope: str,
    path: tuple[str | int, ...],
    config: RouterConfig,
    source: SourceMap,
    issues: list[ConfigIssue],
) -> list[tuple[str, str]]:
    checkpoint()  # (once a key or model)
    out = []
    for i, name in enumerate(names):
        if name not in config.rate_limits:
            hint = did_you_mean(name, config.rate_limits)
            issues.append(source.issue((*path, i), f"unknown rate-limit policy '{name}'{hint}"))
        elif (name, scope) not in out:
            out.append((name, scope))
    return out


def compile_limits(
    config: RouterConfig,
    source: SourceMap,
    issues: list[ConfigIssue],
) -> LimitTable:
    """Resolve every attachment, once per key, per model and per provider."""
    default_closed = config.server.rate_limit_backend.on_error == "closed"
    policies = config.rate_limits
    glob = _refs(
        config.server.rate_limits, "global", ("server", "rate_limits"), config, source, issues
    )
    per_model = {
        name: _refs(
            m.rate_limits, f"model:{name}", ("models", name, "rate_limits"), config, source, issues
        )
        for name, m in config.models.items()
    }
    per_key = {
        name: _refs(
            k.rate_limits, f"key:{name}", ("keys", name, "rate_limits"), config, source, issues
        )
        for name, k in config.keys.items()
    }
    providers: dict[str, PolicySet] = {}
    for name, p in config.providers.items():
        refs = _refs(
            p.rate_limits,
            f"provider:{name}",
            ("providers", name, "rate_limits"),
            config,
            source,
            issues,
        )
        if refs:
            providers[name] = _policy_set(refs, policies, default_closed)
    for name, spec in policies.items():
        if spec.on_limit != "reject" and (
            any(name == n for n, _ in glob)
            or any(name == n for refs in (*per_model.values(), *per_key.values()) for n, _ in refs)
        ):
            issues.append(
                source.issue(
                    ("rate_limits", name, "on_limit"),
                    f"`{spec.on_limit}` only applies to provider policies; this one is also "
                    "attached to a key, model or globally, where a limit always rejects",
                )
            )
    if issues:
        return LimitTable(EMPTY, {}, {}, providers)
    base = _policy_set(glob, policies, default_closed)
    key_refs = {name: tuple(refs) for name, refs in per_key.items() if refs}
    model_refs = {name: tuple(refs) for name, refs in per_model.items() if refs}
    return LimitTable(
        base,
        {
            name: _policy_set([*glob, *refs], policies, default_closed)
            for name, refs in key_refs.items()
        },
        {
            name: _policy_set([*glob, *refs], policies, default_closed)
            for name, refs in model_refs.items()
        },
        providers,
        (tuple(glob), model_refs, key_refs),
        policies,
        default_closed,
    )


def unshared_limits(
    config: RouterConfig, table: LimitTable, workers: int, budgets: bool = False
) -> str | None:
    """Why `workers` processes cannot enforce these limits (and spend budgets, when
    `budgets` says some are attached), or None. In memory each worker keeps its own
    counters, so N workers would admit N times every limit and spend every budget N times,
    silently."""
    if workers <= 1 or config.server.rate_limit_backend.url is not None:
        return None
    limits = bool(table.admits or table.providers)
    if not limits and not budgets:
        return None
    what = (
        "rate limits and budgets" if limits and budgets else "budgets" if budgets else "rate limits"
    )
    return (
        f"{workers} workers with in-memory {what} would each keep their own counters "
        f"and admit up to {workers}x every one: set `server.rate_limit_backend.url` to a "
        "Redis URL so that the workers share them exactly, or serve with one worker"
    )
