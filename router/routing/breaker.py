"""A circuit breaker per target: stop sending to a target that keeps failing, probe it later.

closed --(N failures in a row, or failure rate over the window)--> open
open --(open_for elapsed; the next request is the one probe)--> half_open
half_open --(probe succeeds)--> closed;  --(probe fails)--> open

The breaker lives on its `Target`, so its state lasts as long as the target does. Only
failures that say something about the target count (see `COUNTED`): a 429 has its own
cool-down from the upstream's reset hint, and a client error proves the upstream is up.
Everything here is synchronous and O(1) per attempt.
"""

from __future__ import annotations

import enum
import math
import time
from typing import TYPE_CHECKING, Any

from router.config.resilience import BreakerConfig
from router.errors import ErrorKind

if TYPE_CHECKING:
    from router.types import RoutingGraph, Target

COUNTED = frozenset(
    {
        ErrorKind.SERVER,
        ErrorKind.CONNECTION,
        ErrorKind.TIMEOUT,
        ErrorKind.MALFORMED,
        ErrorKind.AUTHENTICATION,
        ErrorKind.PERMISSION,
        ErrorKind.NOT_FOUND,
        ErrorKind.INSUFFICIENT_QUOTA,
    }
)
NEUTRAL = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE})
_BUCKETS = 10


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker:
    """One target's breaker. `allow()` before an attempt, then exactly one of `success()`,
    `failure()` or `release()` (a neutral outcome or a cancelled attempt)."""

    __slots__ = (
        "_counts",
        "_slot",
        "closed",
        "consecutive",
        "half_opened",
        "open_until",
        "opened",
        "policy",
        "probing",
        "state",
    )

    def __init__(self, policy: BreakerConfig) -> None:
        self.policy = policy
        self.state = State.CLOSED
        self.consecutive = 0
        self.open_until = 0.0
        self.probing = False
        self.opened = 0  # transitions into each state, for metrics: times tripped,
        self.half_opened = 0  # times a probe was let through after `open_for`,
        self.closed = 0  # and times a probe closed it again
        self._counts = [[0, 0] for _ in range(_BUCKETS)]  # [ok, failed] per time bucket
        self._slot = [-1] * _BUCKETS  # which bucket period each entry counts

    # -- the window ---------------------------------------------------------------------

    def _bucket(self, now: float) -> list[int]:
        period = math.floor(now / (self.policy.window / _BUCKETS))
        i = period % _BUCKETS
        if self._slot[i] != period:
            self._slot[i] = period
            self._counts[i] = [0, 0]
        return self._counts[i]

    def window_counts(self, now: float) -> tuple[int, int]:
        """(ok, failed) attempts within the window."""
        current = math.floor(now / (self.policy.window / _BUCKETS))
        ok = failed = 0
        for slot, (o, f) in zip(self._slot, self._counts, strict=True):
            if current - _BUCKETS < slot <= current:
                ok += o
                failed += f
        return ok, failed

    # -- transitions ----------------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """May an attempt go to this target now? In half-open, only one may (the probe)."""
        if self.state is State.CLOSED:
            return True
        if self.state is State.OPEN:
            if now < self.open_until:
                return False
            self.state = State.HALF_OPEN
            self.probing = False
            self.half_opened += 1
        if self.probing:
            return False
        self.probing = True
        return True

    def success(self, now: float) -> None:
        self._bucket(now)[0] += 1
        self.consecutive = 0
        if self.state is State.HALF_OPEN:
            self._close()

    def failure(self, now: float) -> None:
        self._bucket(now)[1] += 1
        self.consecutive += 1
        half_open = self.state is State.HALF_OPEN  # the probe failed
        if half_open or (self.state is State.CLOSED and self._tripped(now)):
            self._open(now)

    def release(self) -> None:
        """The attempt ended without a verdict: let the next request probe."""
        if self.state is State.HALF_OPEN:
            self.probing = False

    def _tripped(self, now: float) -> bool:
        policy = self.policy
        if self.consecutive >= policy.consecutive_failures:
            return True
        if policy.failure_rate is None:
            return False
        ok, failed = self.window_counts(now)
        total = ok + failed
        return total >= policy.min_requests and failed / total >= policy.failure_rate

    def _open(self, now: float) -> None:
        self.state = State.OPEN
        self.open_until = now + self.policy.open_for
        self.probing = False
        self.opened += 1

    def _close(self) -> None:
        self.state = State.CLOSED
        self.closed += 1
        self.probing = False
        self.consecutive = 0
        self._counts = [[0, 0] for _ in range(_BUCKETS)]
        self._slot = [-1] * _BUCKETS

    def snapshot(self, now: float) -> dict[str, Any]:
        ok, failed = self.window_counts(now)
        state = self.state
        if state is State.OPEN and now >= self.open_until:
            state = State.HALF_OPEN  # the next request will probe
        return {
            "state": state.value,
            "consecutive_failures": self.consecutive,
            "window_ok": ok,
            "window_failed": failed,
            "opened_total": self.opened,
            "transitions": {
                "open": self.opened,
                "half_open": self.half_opened,
                "closed": self.closed,
            },
            "retry_in": round(max(0.0, self.open_until - now), 3)
            if self.state is State.OPEN
            else 0.0,
        }


def record(target: Target, kind: ErrorKind | None) -> None:
    """Tell the target's breaker how an attempt ended (`None`: it succeeded)."""
    breaker = target.breaker
    if breaker is None:
        return
    now = time.monotonic()
    if kind is None:
        breaker.success(now)
    elif kind in COUNTED:
        breaker.failure(now)
    elif kind in NEUTRAL:
        breaker.release()
    else:  # a client error: the upstream answered, so it is up
        breaker.success(now)


def breaker_states(graph: RoutingGraph) -> list[dict[str, Any]]:
    """Every breaker of the graph as plain data: for the admin endpoint and for metrics."""
    now = time.monotonic()
    out = []
    for name, route in graph.routes.items():
        for target in route.targets:
            if target.breaker is not None:
                out.append(
                    {
                        "model": name,
                        "target": target.label,
                        "provider": target.runtime.name,
                        **target.breaker.snapshot(now),
                    }
                )
    return out
