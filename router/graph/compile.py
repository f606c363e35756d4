"""Compile a validated config into the immutable routing graph a request reads.

Everything a request needs is resolved here, once: provider objects (`providers`), target
lists with their effective timeouts, strategy functions, failure steps, client keys (`keys`),
fallback chains and what each key may reach (`links`), rate-limit tables and header rules.
Cross-references are checked here too, and every problem is reported with its file, line
and key path.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Collection, Mapping, Sequence

from router.checkpoints import checkpoint
from router.config.lint import config_warnings
from router.config.loader import (
    ConfigError,
    ConfigIssue,
    Path_,
    SourceMap,
    by_line,
    did_you_mean,
    is_under,
)
from router.config.models import ModelConfig, RouterConfig
from router.config.secrets import config_secrets, secret_settings
from router.graph.bodies import compile_body_limits
from router.graph.keys import compile_keys
from router.graph.links import chains_of, clients, reach_per_key, serving_of
from router.graph.providers import build_provider, continues, hedge_policy, resolve_timeouts
from router.graph.rewrites import compile_rewrites
from router.http.body import BodyLimits
from router.limits.policies import compile_limits
from router.observability.redaction import Redactor
from router.operations import served_by
from router.plugins import plugin_manager
from router.routing.breaker import Breaker
from router.routing.failure import failure_steps
from router.routing.strategies import strategy_for
from router.spend.budget_compile import compile_budgets
from router.spend.prices import target_price
from router.types import ProviderRuntime, Route, RoutingGraph, Target


def _check_cycles(
    models: Mapping[str, ModelConfig], source: SourceMap, issues: list[ConfigIssue]
) -> None:
    """Fallback and context-fallback edges must form no cycle."""

    def edges(name: str) -> list[tuple[str, tuple[str | int, ...]]]:
        model = models[name]
        out: list[tuple[str, tuple[str | int, ...]]] = [
            (f, ("models", name, "fallbacks", i)) for i, f in enumerate(model.fallbacks)
        ]
        if model.context_fallback:
            out.append((model.context_fallback, ("models", name, "context_fallback")))
        return [(n, p) for n, p in out if n in models]

    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for nxt, path in edges(name):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    issues.append(source.issue(path, "fallback cycle: " + " -> ".join(cycle)))
            elif nxt not in state:
                visit(nxt)  # noqa: F821 (deleted once done: see below)
        stack.pop()
        state[name] = 2

    for name in models:
        if name not in state:
            visit(name)
    del visit  # (it refers to itself: a cycle holding the source map until a full collection)


def compile_graph(
    config: RouterConfig,
    source: SourceMap,
    config_hash: str = "",
    known: Sequence[ConfigIssue] = (),
    replaced: Collection[Path_] = (),
) -> RoutingGraph:
    """Check every cross-reference and build the graph; raises ConfigError listing all issues.
    `config_hash` is the file's (`file_hash`); `load_graph` and reloads pass it. `known` are
    the issues loading found, and `replaced` what loading replaced in `config` because it was
    invalid (`LoadedConfig`): nothing inside it is reported again. Warnings are kept on the
    graph, or raised as errors under `server.strict_config`."""
    issues: list[ConfigIssue] = list(known)
    plugin_manager()  # (plugins' operations are registered before routes list what they serve)
    runtimes: dict[str, ProviderRuntime] = {}
    for name, spec in config.providers.items():
        checkpoint()
        runtime = build_provider(name, spec, source, issues)
        if runtime is not None:
            runtimes[name] = runtime

    routes: dict[str, Route] = {}
    for name, model in config.models.items():
        checkpoint()
        targets: list[Target] = []
        for i, target in enumerate(model.targets):
            if target.provider not in config.providers:
                issues.append(
                    source.issue(
                        ("models", name, "targets", i, "provider"),
                        f"unknown provider '{target.provider}'"
                        f"{did_you_mean(target.provider, config.providers)}",
                    )
                )
                continue
            runtime = runtimes.get(target.provider)
            if runtime is not None:
                hedge = model.hedge
                label = f"{target.provider}/{target.model}"
                breaker = Breaker(model.breaker) if model.breaker else None
                timeouts, _ = resolve_timeouts(
                    config.providers[target.provider].timeouts, model.timeouts, target.timeouts
                )
                targets.append(
                    Target(
                        runtime,
                        target.model,
                        target.weight,
                        label,
                        timeouts,
                        served_by(runtime.provider.operations),
                        breaker=breaker,
                        price=target_price(config, target),
                        continues=continues(config.providers[target.provider], target, runtime),
                        ttfts=deque(maxlen=100) if hedge and hedge.percentile else None,
                    )
                )
        for i, fallback in enumerate(model.fallbacks):
            if fallback not in config.models:
                issues.append(
                    source.issue(
                        ("models", name, "fallbacks", i),
                        f"unknown model '{fallback}'{did_you_mean(fallback, config.models)}",
                    )
                )
        if model.context_fallback and model.context_fallback not in config.models:
            issues.append(
                source.issue(
                    ("models", name, "context_fallback"),
                    f"unknown model '{model.context_fallback}'"
                    f"{did_you_mean(model.context_fallback, config.models)}",
                )
            )
        ops = frozenset(op for t in targets for op in t.operations)
        routes[name] = Route(
            name=name,
            targets=tuple(targets),
            strategy=strategy_for(model.strategy),
            retries=model.retries,
            fallbacks=tuple(model.fallbacks),
            context_fallback=model.context_fallback,
            operations=ops,
            serving=serving_of(targets),
            steps=failure_steps(model.on_failure),
            stream_recovery=model.stream_recovery,
            hedge=hedge_policy(model.hedge),
        )
    _check_cycles(config.models, source, issues)

    keys, anonymous = compile_keys(config, source, issues, routes)

    identities = clients(keys, anonymous)
    allowed_models = {k.name: k.allowed for k in identities}
    limits = compile_limits(config, source, issues)
    budget_warnings: list[ConfigIssue] = []
    budgets = compile_budgets(config, source, issues, routes, allowed_models, budget_warnings)
    rewrites = compile_rewrites(config, source, issues, runtimes)
    body_limits = compile_body_limits(config, source, issues)
    if issues:
        found = [i for i in issues[len(known) :] if not is_under(i.parts, replaced)]
        raise ConfigError(by_line([*known, *found]))
    warnings = by_line([*config_warnings(config, source), *budget_warnings])
    if warnings and config.server.strict_config:
        raise ConfigError([w.as_error("with `server.strict_config`") for w in warnings])
    secrets = config_secrets(config, source)
    for runtime in runtimes.values():
        secrets += [value for _, value in secret_settings(runtime.provider.settings) if value]
    redactor = Redactor(secrets)
    for runtime in runtimes.values():
        runtime.redactor = redactor
    chains = chains_of(routes)
    default_body = BodyLimits.of(config.server)
    return RoutingGraph(
        config=config,
        source_file=source.file,
        providers=runtimes,
        routes=routes,
        keys=keys,
        anonymous=anonymous,
        chains=chains,
        reach=reach_per_key(routes, identities, chains),
        max_body_bytes=config.server.max_body_bytes,
        body_limits=default_body,
        operation_body_limits={
            op: dataclasses.replace(default_body, max_bytes=size)
            for op, size in body_limits.items()
        },
        limits=limits,
        rewrites=rewrites,
        budgets=budgets,
        config_hash=config_hash,
        secrets=tuple(secrets),
        redactor=redactor,
        from_env=frozenset(source.from_env),
        warnings=tuple(warnings),
    )
