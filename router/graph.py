"""Compile a validated config into the immutable routing graph a request reads.

Everything a request needs is resolved here, once: provider objects, target lists, strategy
functions, key digests, per-key model lists and their JSON. Cross-references are checked
here too, and every problem is reported with its file, line and key path.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from router.balancer import Strategy, strategy_for
from router.body import BodyLimits
from router.breaker import Breaker
from router.config.loader import (
    ConfigError,
    ConfigIssue,
    SourceMap,
    did_you_mean,
    load_config_text,
    validation_issues,
)
from router.config.models import ModelConfig, ProviderConfigModel, RetryConfig, RouterConfig
from router.errors import ErrorKind
from router.failure import DEFAULT_STEPS, Step, failure_steps
from router.limits import LimitTable, compile_limits
from router.plugins import install_hint, provider_plugins
from router.provider import Operation, Provider, ProviderConfig, ProviderConfigError, Timeouts
from router.rewrites import HeaderRules, compile_rewrites


@dataclass(eq=False, slots=True)
class ProviderRuntime:
    """A configured provider and, once the server starts, the transport that sends for it."""

    name: str
    provider: Provider
    definition: str  # a digest of the provider's config: equal digests share pools on reload
    max_connections: int
    timeouts: Timeouts
    transport: Any = None


@dataclass(eq=False, slots=True)
class Target:
    """One (provider, upstream model) a route can use, with the live stats strategies read."""

    runtime: ProviderRuntime
    model: str
    weight: float
    label: str
    in_flight: int = 0
    operations: frozenset[Operation] = field(init=False)  # its provider's, copied for speed
    latency: float | None = None  # moving average of time to first byte, seconds
    cool_until: float = 0.0  # monotonic time before which the upstream asked us to stay away
    breaker: Breaker | None = None

    def __post_init__(self) -> None:
        self.operations = self.runtime.provider.operations

    @property
    def provider(self) -> Provider:
        return self.runtime.provider

    def record_latency(self, seconds: float, alpha: float = 0.3) -> None:
        self.latency = (
            seconds if self.latency is None else alpha * seconds + (1 - alpha) * self.latency
        )


@dataclass(frozen=True, slots=True)
class Route:
    """A public model: its targets, how to order them, and what to do when they fail."""

    name: str
    targets: tuple[Target, ...]
    strategy: Strategy
    retries: RetryConfig
    fallbacks: tuple[str, ...]
    context_fallback: str | None
    operations: frozenset[Operation]
    steps: Mapping[ErrorKind, Step] = field(default_factory=lambda: DEFAULT_STEPS)
    stream_recovery: str = "error"  # or "continue"
    # Per operation, the targets whose provider serves it, in configured order: filtered
    # once here rather than on every request.
    serving: Mapping[Operation, tuple[Target, ...]] = field(init=False)

    def __post_init__(self) -> None:
        serving = {op: tuple(t for t in self.targets if op in t.operations) for op in Operation}
        object.__setattr__(self, "serving", serving)

    def order(self) -> list[Target]:
        return self.strategy(self.targets)


@dataclass(frozen=True, slots=True)
class ClientKey:
    """A client key as the router knows it: a digest, a name and what it may use."""

    name: str
    digest: bytes
    allowed: frozenset[str]
    models_body: bytes


@dataclass(frozen=True, slots=True)
class RoutingGraph:
    """The compiled config. Immutable: a reload builds a new one and swaps it."""

    config: RouterConfig
    source_file: str
    providers: Mapping[str, ProviderRuntime]
    routes: Mapping[str, Route]
    keys: Mapping[bytes, ClientKey]
    anonymous: ClientKey | None  # the identity used when `server.auth: none`
    loaded_at: float = field(default_factory=time.time)
    config_hash: str = ""  # sha256 of the file's bytes (`file_hash`); "" when built in memory
    limits: LimitTable = field(default_factory=lambda: LimitTable({}, {}))
    rewrites: HeaderRules = field(default_factory=lambda: HeaderRules.empty())
    # `config.server.max_body_bytes`, read on every request: a plain field, not three
    # attribute look-ups through pydantic models.
    max_body_bytes: int = field(init=False)
    body_limits: BodyLimits = field(init=False)  # its size, time and depth limits together
    # Per model, the routes a request for it may walk (see `router.dispatch.fallback_chain`).
    chains: Mapping[str, tuple[Route, ...]] = field(init=False)
    # Keys presented and verified against `keys` since this graph was loaded (see
    # `router.auth.authenticate`): at most one entry per configured key.
    verified: dict[str, ClientKey] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_body_bytes", self.config.server.max_body_bytes)
        object.__setattr__(self, "body_limits", BodyLimits.of(self.config.server))
        chains = {name: walk_fallbacks(self.routes, route) for name, route in self.routes.items()}
        object.__setattr__(self, "chains", chains)

    @property
    def auth_required(self) -> bool:
        return self.anonymous is None

    def model_names(self) -> list[str]:
        return sorted(self.routes)


def walk_fallbacks(routes: Mapping[str, Route], first: Route) -> tuple[Route, ...]:
    """`first`, then its fallbacks and theirs, breadth first, each once (names that are not
    routes are skipped: the config check reports them)."""
    order, seen, queue = [], {first.name}, [first]
    while queue:
        route = queue.pop(0)
        order.append(route)
        for name in route.fallbacks:
            if name not in seen and name in routes:
                seen.add(name)
                queue.append(routes[name])
    return tuple(order)


def _definition_digest(model: ProviderConfigModel) -> str:
    dump = model.model_dump(mode="json")
    dump["api_key"] = model.api_key.get_secret_value() if model.api_key else None
    return hashlib.sha256(orjson.dumps(dump, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _build_provider(
    name: str, spec: ProviderConfigModel, source: SourceMap, issues: list[ConfigIssue]
) -> ProviderRuntime | None:
    path = ("providers", name)
    plugins = provider_plugins()
    plugin = plugins.get(spec.plugin)
    if plugin is None:
        issues.append(
            source.issue(
                (*path, "plugin"),
                f"plugin '{spec.plugin}' is not installed{did_you_mean(spec.plugin, plugins)}; "
                f"to add it: {install_hint(spec.plugin)}",
            )
        )
        return None
    cls = plugin.provider_class
    try:
        settings = cls.settings_model.model_validate(spec.settings)
    except ValidationError as exc:
        issues.extend(validation_issues(exc, source, (*path, "settings"), model=cls.settings_model))
        return None
    base_url = spec.base_url or cls.default_base_url
    if base_url is None:
        issues.append(
            source.issue((*path, "base_url"), f"required: plugin '{spec.plugin}' has no default")
        )
        return None
    t = spec.timeouts
    timeouts = Timeouts(connect=t.connect, first_token=t.first_token, idle=t.idle, total=t.total)
    config = ProviderConfig(
        name=name,
        base_url=base_url,
        api_key=spec.api_key.get_secret_value() if spec.api_key else None,
        headers=dict(spec.headers),
        timeouts=timeouts,
        settings=settings,
    )
    try:
        provider = cls(config)
    except ProviderConfigError as exc:
        key_path = (*path, exc.key) if exc.key else path
        issues.append(source.issue(key_path, str(exc)))
        return None
    return ProviderRuntime(name, provider, _definition_digest(spec), spec.max_connections, timeouts)


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
                visit(nxt)
        stack.pop()
        state[name] = 2

    for name in models:
        if name not in state:
            visit(name)


def _models_body(names: list[str], created: int) -> bytes:
    data = [
        {"id": n, "object": "model", "created": created, "owned_by": "llm-router"} for n in names
    ]
    return orjson.dumps({"object": "list", "data": data})


def compile_graph(config: RouterConfig, source: SourceMap, config_hash: str = "") -> RoutingGraph:
    """Check every cross-reference and build the graph; raises ConfigError listing all issues.
    `config_hash` is the file's (`file_hash`); `load_graph` and reloads pass it."""
    issues: list[ConfigIssue] = []
    runtimes: dict[str, ProviderRuntime] = {}
    for name, spec in config.providers.items():
        runtime = _build_provider(name, spec, source, issues)
        if runtime is not None:
            runtimes[name] = runtime

    routes: dict[str, Route] = {}
    for name, model in config.models.items():
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
                label = f"{target.provider}/{target.model}"
                breaker = Breaker(model.breaker) if model.breaker else None
                targets.append(Target(runtime, target.model, target.weight, label, breaker=breaker))
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
        ops = frozenset(op for t in targets for op in t.provider.operations)
        routes[name] = Route(
            name=name,
            targets=tuple(targets),
            strategy=strategy_for(model.strategy),
            retries=model.retries,
            fallbacks=tuple(model.fallbacks),
            context_fallback=model.context_fallback,
            operations=ops,
            steps=failure_steps(model.on_failure),
            stream_recovery=model.stream_recovery,
        )
    _check_cycles(config.models, source, issues)

    created = int(time.time())
    keys: dict[bytes, ClientKey] = {}
    for name, key in config.keys.items():
        allowed: set[str] = set()
        for i, pattern in enumerate(key.models):
            matched = fnmatch.filter(config.models, pattern)
            if not matched and not any(ch in pattern for ch in "*?["):
                issues.append(
                    source.issue(
                        ("keys", name, "models", i),
                        f"unknown model '{pattern}'{did_you_mean(pattern, config.models)}",
                    )
                )
            allowed.update(matched)
        if key.key is not None:
            digest = hashlib.sha256(key.key.get_secret_value().encode()).digest()
        else:
            digest = bytes.fromhex(key.sha256 or "")
        if digest in keys:
            issues.append(
                source.issue(("keys", name), f"same key as '{keys[digest].name}'; keys must differ")
            )
            continue
        keys[digest] = ClientKey(
            name, digest, frozenset(allowed), _models_body(sorted(allowed), created)
        )

    anonymous = None
    if config.server.auth == "none":
        everything = frozenset(config.models)
        anonymous = ClientKey(
            "anonymous", b"", everything, _models_body(sorted(everything), created)
        )
    elif not keys and not issues:
        issues.append(
            source.issue(
                ("server", "auth"),
                "authentication is on but no `keys` are configured "
                "(add keys, or set `server.auth: none` for a trusted network)",
            )
        )

    allowed_models = {
        k.name: k.allowed for k in (*keys.values(), *([anonymous] if anonymous else []))
    }
    limits = compile_limits(config, source, issues, allowed_models)
    rewrites = compile_rewrites(config, source, issues, runtimes)
    if issues:
        raise ConfigError(sorted(issues, key=lambda issue: issue.line or 0))
    return RoutingGraph(
        config=config,
        source_file=source.file,
        providers=runtimes,
        routes=routes,
        keys=keys,
        anonymous=anonymous,
        limits=limits,
        rewrites=rewrites,
        config_hash=config_hash,
    )


def file_hash(data: bytes) -> str:
    """The config's identity, as `/health` and `/admin/config` report it: the sha256 of the
    file's bytes, so an operator can compare it with `sha256sum` of what they deployed."""
    return hashlib.sha256(data).hexdigest()


def graph_from_bytes(
    data: bytes, path: str, environ: Mapping[str, str] | None = None
) -> RoutingGraph:
    """Parse, validate and compile a config file's bytes, read once, so the graph's
    `config_hash` is the hash of exactly what was compiled."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue(path, None, "", f"not UTF-8: {exc}")]) from None
    config, source = load_config_text(text, path, environ)
    return compile_graph(config, source, config_hash=file_hash(data))


def load_graph(path: str | Path, environ: Mapping[str, str] | None = None) -> RoutingGraph:
    """Load, validate and compile a config file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        issue = ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")
        raise ConfigError([issue]) from None
    return graph_from_bytes(data, str(path), environ)
