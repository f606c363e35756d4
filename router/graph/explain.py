"""`llm-switchyard explain`: the route a request for one model would take, in plain text.

Reads the compiled graph only, so what it prints is what the router does: targets in
strategy order, retries and deadline, failure steps, fallbacks, timeouts, breakers, the
rate-limit policies that apply, and the headers each target would be sent, secrets masked.
"""

from __future__ import annotations

from router.errors import ErrorKind
from router.graph.providers import resolve_timeouts
from router.graph.rewrites import explain_request_headers
from router.limits.policies import CONCURRENT, REQUESTS, TOKENS, PolicySet
from router.operations import names
from router.routing.dispatch import context_chain, fallback_chain
from router.routing.failure import DEFAULT_STEPS
from router.types import ClientKey, Route, RoutingGraph

_ORDER = {
    "priority": "in the order listed; the first healthy target takes everything",
    "weighted": "random order drawn by weight",
    "round_robin": "each request starts one target further along; the rest follow",
    "least_busy": "fewest requests in flight first",
    "lowest_latency": "lowest moving average of time to first token first (unmeasured first)",
}


def _timeouts(graph: RoutingGraph, route: Route, index: int) -> str:
    """A target's effective timeouts, each with the level it came from."""
    model = graph.config.models[route.name]
    target = model.targets[index]
    provider = graph.config.providers[target.provider].timeouts
    _, origins = resolve_timeouts(provider, model.timeouts, target.timeouts)
    values = route.targets[index].timeouts
    return ", ".join(
        f"{label} {getattr(values, name):g}s ({origins[name]})"
        for name, label in (
            ("connect", "connect"),
            ("first_token", "first token"),
            ("idle", "idle"),
            ("total", "total"),
        )
    )


def _targets(graph: RoutingGraph, route: Route) -> list[str]:
    strategy = route.strategy.__name__
    lines = [f"  strategy: {strategy} ({_ORDER.get(strategy, strategy)})"]
    total = sum(t.weight for t in route.targets) or 1.0
    for i, target in enumerate(route.targets):
        share = f", weight {target.weight:g} ({target.weight / total:.0%})"
        lines.append(
            f"  {i + 1}. {target.label}{share if strategy == 'weighted' else ''}"
            f"  [timeouts: {_timeouts(graph, route, i)}; "
            f"max {target.runtime.max_connections} connections]"
        )
        lines.append(f"     continues a prefill: {_continues(graph, route, i)}")
        if target.operations != route.operations:  # (the model's are listed above)
            lines.append(f"     serves only: {', '.join(names(target.operations)) or 'nothing'}")
    return lines


def _continues(graph: RoutingGraph, route: Route, index: int) -> str:
    """Whether a target may be sent an assistant prefill, and which level said so."""
    target = route.targets[index]
    configured = graph.config.models[route.name].targets[index]
    if configured.continuation is not None:
        origin = "target"
    elif graph.config.providers[configured.provider].continuation is not None:
        origin = "provider"
    else:
        origin = "plugin default"
    return f"{'yes' if target.continues else 'no'} ({origin})"


def _hedge(route: Route) -> list[str]:
    hedge = route.hedge
    if hedge is None:
        return ["  hedge: none (add `hedge:` to race a late first token with the next target)"]
    when = f"{hedge.after:g}s"
    if hedge.percentile is not None:
        when = (
            f"the target's p{hedge.percentile * 100:g} time to first token (at least "
            f"{hedge.floor:g}s) once it has {hedge.min_samples} of them, until then {when}"
        )
    return [
        f"  hedge: when no first token after {when}, the next candidate starts beside it; "
        f"the first to begin is served, the other cancelled; at most {hedge.most} per request"
    ]


def _policy(route: Route) -> list[str]:
    r = route.retries
    lines = [
        f"  retries: up to {r.attempts} more on the same target, exponential backoff with full "
        f"jitter from {r.backoff_initial:g}s to {r.backoff_max:g}s; Retry-After honoured up to "
        f"{r.max_retry_after:g}s (longer: next target), a 429 waits at least 0.5s",
        f"  deadline: {r.deadline:g}s for the whole request, all attempts and fallbacks",
        "  on failure:",
    ]
    for kind, step in route.steps.items():
        if kind is ErrorKind.UNAVAILABLE:
            continue  # the router's own 503, never an upstream's
        changed = "" if DEFAULT_STEPS.get(kind) is step else "   (configured)"
        lines.append(f"    {kind.value:<19} -> {step.value}{changed}")
    return lines


def _breaker(route: Route) -> list[str]:
    breaker = next((t.breaker for t in route.targets if t.breaker is not None), None)
    if breaker is None:
        return ["  breaker: none (add `breaker:` to the model to skip failing targets)"]
    p = breaker.policy
    rate = (
        f" or {p.failure_rate:.0%} of at least {p.min_requests} attempts within {p.window:g}s"
        if p.failure_rate is not None
        else ""
    )
    return [
        f"  breaker (per target): opens after {p.consecutive_failures} failures in a row{rate}; "
        f"skips the target for {p.open_for:g}s, then one probe request closes or reopens it"
    ]


_WINDOWS = {1_000: "second", 60_000: "minute", 3_600_000: "hour", 86_400_000: "day"}
_KINDS = {REQUESTS: "requests", TOKENS: "tokens"}


def _describe(policies: PolicySet, scope: str) -> list[str]:
    """One line per policy of `policies` attached at `scope`: its limits and what it does."""
    lines = []
    for index, policy in enumerate(policies.policies):
        if policy.scope != scope:
            continue
        counts = [
            f"{limit.limit} concurrent"
            if limit.kind == CONCURRENT
            else f"{limit.limit} {_KINDS[limit.kind]}/{_WINDOWS.get(limit.window_ms, 'window')}"
            for limit in policies.limits
            if limit.policy == index
        ]
        on_limit = {
            "reject": "429",
            "wait": f"wait up to {policy.max_wait:g}s, then 429",
            "fallback": "next target or fallback",
        }[policy.on_limit]
        down = "reject (503)" if policy.fail_closed else "admit"
        lines.append(
            f"{policy.name}: {', '.join(counts)}; on limit: {on_limit}; backend down: {down}"
        )
    return lines


def _limits(graph: RoutingGraph, route: Route) -> list[str]:
    """Every rate-limit policy a request for `route` meets: global, model, per target's
    upstream quota (checked before each attempt), and per client key."""
    model, table = route.name, graph.limits
    backend = graph.config.server.rate_limit_backend
    where = "shared in Redis" if backend.url else "in memory, this process"
    clients = [k for k in (*graph.keys.values(), graph.anonymous) if k is not None]
    allowed = sorted(k.name for k in clients if model in k.allowed)
    denied = sorted(k.name for k in clients if model not in k.allowed)
    sets = {name: table.for_request(name, model) for name in allowed}
    any_set = next((s for s in sets.values() if s.policies), None)
    lines = [f"rate limits (counters {where}):"]
    for label, scope in (("global", "global"), ("model", f"model:{model}")):
        found = _describe(any_set, scope) if any_set is not None else []
        lines.append(f"  {label}: " + ("; ".join(found) if found else "none"))
    lines.append("  upstream quotas (per target, before each attempt):")
    for target in route.targets:
        provider = target.runtime.name
        found = _describe(table.for_provider(provider), f"provider:{provider}")
        lines.append(f"    {target.label}: " + ("; ".join(found) if found else "none"))
    lines.append("  client keys that may use this model:" + ("" if allowed else " none"))
    for name in allowed:
        found = _describe(sets[name], f"key:{name}")
        lines.append(f"    {name}: " + ("; ".join(found) if found else "no key policy"))
    if denied:
        lines.append(f"  keys that may not (404): {', '.join(denied)}")
    return lines


def _headers(graph: RoutingGraph, route: Route, key: str | None) -> list[str]:
    """The headers each target would be sent, as client key `key`, secrets masked."""
    if key is None:
        if graph.anonymous is not None:
            key = graph.anonymous.name
        else:
            names = sorted(k.name for k in graph.keys.values() if route.name in k.allowed)
            if not names:
                return ["request headers: no client key may use this model"]
            key = names[0]
    client = next((k for k in (*graph.keys.values(), graph.anonymous) if k and k.name == key), None)
    if client is None or route.name not in client.allowed:
        return [f"request headers: key '{key}' may not use this model (the router answers 404)"]
    lines = [f"request headers, as key '{key}' (secrets masked):"]
    for label, headers in explain_request_headers(graph, route.name, key).items():
        lines.append(f"  {label}:")
        lines += [f"    {name}: {value}" for name, value in sorted(headers.items())]
    return lines


def _client(graph: RoutingGraph, key: str | None) -> ClientKey | None:
    """The key whose fallbacks are shown, when one is named."""
    if key is None:
        return None
    found = (k for k in (*graph.keys.values(), graph.anonymous) if k and k.name == key)
    return next(found, None)


def _names(routes: tuple[Route, ...] | list[Route]) -> str:
    return " -> ".join(r.name for r in routes) if routes else "none"


def _fallbacks(graph: RoutingGraph, route: Route, client: ClientKey | None) -> list[str]:
    """The fallback and context-fallback chains, as `client` would walk them: the models it
    may not use are skipped, and said so. Without a client, the configured chains and, per
    key, what it skips."""
    full = fallback_chain(graph, route)
    larger = (
        fallback_chain(graph, graph.routes[route.context_fallback])
        if route.context_fallback
        else ()
    )
    none_left = "a context-length error goes to the client"
    if client is None or route.name not in client.allowed:
        lines = [f"fallbacks (breadth first, each once): {_names(full[1:])}"]
        lines.append(
            f"context fallback: {_names(larger)}"
            if larger
            else f"context fallback: none ({none_left})"
        )
        skipping = [
            (k.name, [r.name for r in (*full[1:], *larger) if r.name not in k.allowed])
            for k in sorted(graph.keys.values(), key=lambda k: k.name)
            if route.name in k.allowed and graph.anonymous is None
        ]
        skipping = [(name, skipped) for name, skipped in skipping if skipped]
        if skipping:
            lines.append("  keys skip the fallbacks they may not use (not in their `models`):")
            lines += [f"    {name} skips {', '.join(skipped)}" for name, skipped in skipping]
        return lines
    why = f"not in the `models` of key '{client.name}'"
    chain = fallback_chain(graph, route, client)
    lines = [f"fallbacks for key '{client.name}' (breadth first, each once): {_names(chain[1:])}"]
    skipped = [r.name for r in full[1:] if r.name not in client.allowed]
    if skipped:
        lines.append(f"  skipped: {', '.join(skipped)} ({why})")
    if not larger:
        lines.append(f"context fallback: none ({none_left})")
        return lines
    usable = context_chain(graph, route, client)
    lines.append(
        f"context fallback for key '{client.name}': "
        + (_names(usable) if usable else f"none ({none_left})")
    )
    skipped = [r.name for r in larger if r.name not in client.allowed]
    if skipped:
        lines.append(f"  skipped: {', '.join(skipped)} ({why})")
    return lines


def explain(graph: RoutingGraph, model: str, key: str | None = None) -> str:
    """The text `llm-switchyard explain` prints for `model` (a KeyError names unknown models);
    `key` names the client key whose fallbacks and request headers are shown (default: the
    configured fallbacks, and the request headers of the first key allowed)."""
    route = graph.routes[model]
    served = names(route.operations)
    lines = [f"model {model}", f"operations: {', '.join(served) or 'none'}"]
    lines += ["targets:", *_targets(graph, route)]
    lines += ["policy:", *_policy(route), *_breaker(route), *_hedge(route)]
    client = _client(graph, key)
    walks = _fallbacks(graph, route, client)
    lines += walks
    chain = [r.name for r in fallback_chain(graph, route, client)[1:]]
    recovery = {
        "error": "a stream that breaks after its first byte ends with an error event",
        "continue": "a stream that breaks after its first byte is continued by another target "
        "that can continue a prefill, else ends with the original error",
        "regenerate": "a stream that breaks after its first byte is asked of another target "
        "again; its text goes out once it has reproduced what was sent, else the stream ends "
        "with the original error",
        "continue_or_regenerate": "a stream that breaks after its first byte is continued by "
        "another target that can continue a prefill, else asked of another target again and "
        "verified against what was sent, else ends with the original error",
    }
    lines.append(f"stream recovery: {route.stream_recovery} ({recovery[route.stream_recovery]})")
    server = graph.config.server
    bodies = [
        f"{op.name} {limits.max_bytes}"
        for op, limits in graph.operation_body_limits.items()
        if op in route.operations
    ]
    lines.append(
        f"limits: request body up to {server.max_body_bytes} bytes"
        + (f" ({', '.join(bodies)})" if bodies else "")
        + "; upstream connection pools as listed per target; rate-limit headers from "
        "upstreams put a target last until reset"
    )
    lines += _limits(graph, route)
    lines += _headers(graph, route, key)
    for name in chain:
        lines.append("")
        fallback = graph.routes[name]
        lines.append(f"fallback model {name}: {fallback.strategy.__name__} over")
        lines += _targets(graph, fallback)[1:]
        lines += _breaker(fallback)
    return "\n".join(lines)
