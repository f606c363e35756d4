"""The derived parts of a routing graph: fallback chains, per-key reach, serving targets.

Computed when the graph is compiled, and again when a reload swaps kept targets into a new
graph (`relink`), so that a request only looks things up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from router.checkpoints import checkpoint
from router.operations import native_only, registered
from router.types import ClientKey, Operation, Reach, Route, RoutingGraph, Target


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


def serving_of(targets: Iterable[Target]) -> dict[Operation, tuple[Target, ...]]:
    """Per operation, the targets whose provider serves it, in configured order: filtered
    once here rather than on every request."""
    targets = tuple(targets)
    serving = {op: tuple(t for t in targets if op in t.operations) for op in registered()}
    for op in registered():
        natively = native_only(op)
        if natively is not None:  # (targets whose provider serves `op` itself)
            serving[natively] = tuple(t for t in targets if op in t.provider.operations)
    return serving


def reach_per_key(
    routes: Mapping[str, Route],
    clients: Iterable[ClientKey],
    chains: Mapping[str, tuple[Route, ...]],
) -> dict[str, Reach]:
    """Each client key's `Reach`, computed once per distinct allow-list, from `routes`
    themselves, so a graph that a reload rebuilt with kept targets reaches those. A list's
    `Reach` holds the models it allows only (a request for another is refused before it
    looks), so the tables grow with the allow-lists' own lengths, not lists x models."""
    context = {
        name: chains[route.context_fallback]
        for name, route in routes.items()
        if route.context_fallback is not None and route.context_fallback in chains
    }
    everything = frozenset(routes)
    by_allowed: dict[frozenset[str], Reach] = {everything: Reach(chains, context)}
    # Keys with one allow-list share its frozenset (`router.graph.keys`): looked up by
    # identity, not by comparing a thousand names for each of 10,000 keys.
    by_list: dict[int, Reach] = {}
    out: dict[str, Reach] = {}
    for key in clients:
        checkpoint()
        reach = by_list.get(id(key.allowed))
        if reach is None:
            allowed = key.allowed & everything
            reach = by_allowed.get(allowed)
            if reach is None:
                reach = Reach(
                    {n: _only(chains[n], allowed) for n in allowed if n in chains},
                    {n: _only(context[n], allowed) for n in allowed if n in context},
                )
                by_allowed[allowed] = reach
            by_list[id(key.allowed)] = reach
        out[key.name] = reach  # the anonymous key last: with `auth: none` it is the one used
    return out


def _only(chain: tuple[Route, ...], allowed: frozenset[str]) -> tuple[Route, ...]:
    return tuple(route for route in chain if route.name in allowed)


def chains_of(routes: Mapping[str, Route]) -> dict[str, tuple[Route, ...]]:
    """Per model, the routes a request for it may walk: it, then its fallbacks."""
    return {name: walk_fallbacks(routes, route) for name, route in routes.items()}


def clients(keys: Mapping[bytes, ClientKey], anonymous: ClientKey | None) -> list[ClientKey]:
    """Every identity a request may have: the keys, then the anonymous one, if any."""
    return [*keys.values(), *([anonymous] if anonymous else [])]


def relink(graph: RoutingGraph, routes: Mapping[str, Route]) -> RoutingGraph:
    """`graph` with `routes` in place of its own, and its chains and reach derived again."""
    chains = chains_of(routes)
    reach = reach_per_key(routes, clients(graph.keys, graph.anonymous), chains)
    return dataclasses.replace(graph, routes=routes, chains=chains, reach=reach)
