"""`llm-router explain`: the route a request for one model would take, in plain text.

Reads the compiled graph only, so what it prints is what the router does: targets in
strategy order, retries and deadline, failure steps, fallbacks, timeouts, breakers, limits.
"""

from __future__ import annotations

from router.dispatch import _chain
from router.errors import ErrorKind
from router.failure import DEFAULT_STEPS
from router.graph import Route, RoutingGraph

_ORDER = {
    "priority": "in the order listed; the first healthy target takes everything",
    "weighted": "random order drawn by weight",
    "round_robin": "each request starts one target further along; the rest follow",
    "least_busy": "fewest requests in flight first",
    "lowest_latency": "lowest moving average of time to first token first (unmeasured first)",
}


def _targets(route: Route) -> list[str]:
    strategy = route.strategy.__name__
    lines = [f"  strategy: {strategy} ({_ORDER.get(strategy, strategy)})"]
    total = sum(t.weight for t in route.targets) or 1.0
    for i, target in enumerate(route.targets, 1):
        t = target.runtime.timeouts
        share = f", weight {target.weight:g} ({target.weight / total:.0%})"
        lines.append(
            f"  {i}. {target.label}{share if strategy == 'weighted' else ''}"
            f"  [timeouts: connect {t.connect:g}s, first token {t.first_token:g}s, "
            f"idle {t.idle:g}s, total {t.total:g}s; "
            f"max {target.runtime.max_connections} connections]"
        )
    return lines


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


def explain(graph: RoutingGraph, model: str) -> str:
    """The text `llm-router explain` prints for `model` (a KeyError names unknown models)."""
    route = graph.routes[model]
    lines = [f"model {model}"]
    lines += ["targets:", *_targets(route)]
    lines += ["policy:", *_policy(route), *_breaker(route)]
    chain = [r.name for r in _chain(graph, route)[1:]]
    lines.append(
        "fallbacks (breadth first, each once): " + (" -> ".join(chain) if chain else "none")
    )
    lines.append(
        f"context fallback: {route.context_fallback}"
        if route.context_fallback
        else "context fallback: none (a context-length error goes to the client)"
    )
    recovery = {
        "error": "a stream that breaks after its first byte ends with an error event",
        "continue": "a stream that breaks after its first byte is continued by another target "
        "that supports it, else ends with the original error",
    }
    lines.append(f"stream recovery: {route.stream_recovery} ({recovery[route.stream_recovery]})")
    server = graph.config.server
    lines.append(
        f"limits: request body up to {server.max_body_bytes} bytes; upstream connection pools "
        "as listed per target; rate-limit headers from upstreams put a target last until reset"
    )
    for name in chain:
        lines.append("")
        fallback = graph.routes[name]
        lines.append(f"fallback model {name}: {fallback.strategy.__name__} over")
        lines += _targets(fallback)[1:]
        lines += _breaker(fallback)
    return "\n".join(lines)
