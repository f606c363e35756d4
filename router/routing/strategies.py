"""Strategies: the order in which a route tries its targets for one request.

Each strategy is a plain function from the route's targets to a try order; the route keeps
the one its config names, chosen once at load time.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from router.types import Strategy, Target


def priority(targets: Sequence[Target]) -> list[Target]:
    """As listed: the first healthy target takes everything."""
    return list(targets)


def weighted(targets: Sequence[Target]) -> list[Target]:
    """Random order, each position drawn by weight (sampling without replacement)."""
    if len(targets) == 1:
        return list(targets)
    # Efraimidis-Spirakis: sort by u ** (1 / w), largest first.
    return sorted(targets, key=lambda t: random.random() ** (1.0 / t.weight), reverse=True)


def least_busy(targets: Sequence[Target]) -> list[Target]:
    """Fewest requests in flight first (a stream counts until it ends, see
    `router.upstream.relay.StreamRelay.hold`); ties keep the configured order."""
    return sorted(targets, key=lambda t: t.in_flight)


def lowest_latency(targets: Sequence[Target]) -> list[Target]:
    """Lowest moving average of time to first byte first; unmeasured targets are tried first."""
    return sorted(targets, key=lambda t: -1.0 if t.latency is None else t.latency)


def _round_robin() -> Strategy:
    counter = itertools.count()

    def round_robin(targets: Sequence[Target]) -> list[Target]:
        """Each request starts one target further along; the rest follow as fallbacks."""
        start = next(counter) % len(targets) if targets else 0
        return [*targets[start:], *targets[:start]]

    return round_robin


def strategy_for(name: str) -> Strategy:
    """The strategy function for a config name; round robin gets its own counter per route."""
    if name == "round_robin":
        return _round_robin()
    return {
        "priority": priority,
        "weighted": weighted,
        "least_busy": least_busy,
        "lowest_latency": lowest_latency,
    }[name]


def record_latency(target: Target, seconds: float, alpha: float = 0.3) -> None:
    """Fold one time to first byte into the target's moving average (`lowest_latency`)."""
    latency = target.latency
    target.latency = seconds if latency is None else alpha * seconds + (1 - alpha) * latency
    if target.ttfts is not None:  # a hedge reads a percentile of them
        target.ttfts.append(seconds)
