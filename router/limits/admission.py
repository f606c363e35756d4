"""Enforcing rate-limit policies: admission, release, and what each request holds (a provider's
quota per attempt is `router.limits.quota`'s, the answer's headers `router.limits.rate_headers`').

`Limiter` lives as long as the server (it owns the backend); `CallLimits` lives as long as
one request and holds what it acquired, so that everything is released exactly once when the
request or its stream ends, whichever way it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from router import errors
from router.config.policies import RateLimitBackendConfig
from router.limits.backends import (
    Backend,
    BackendBroken,
    BackendDown,
    BackendRefused,
    MemoryBackend,
    Verdict,
)
from router.limits.leases import LeaseRenewer
from router.limits.policies import LimitTable, PolicySet
from router.limits.quota import over as _over
from router.limits.quota import rejection as _rejection
from router.limits.rate_headers import NAMES as _NAMES
from router.limits.rate_headers import header_pairs as _header_pairs
from router.limits.rate_headers import rate_header_pairs, rate_headers
from router.limits.rate_headers import tightest as _tightest

__all__ = [
    "CallLimits",
    "LimitStats",
    "Limiter",
    "Ticket",
    "admit",
    "estimate_cost",
    "rate_header_pairs",
    "rate_headers",
    "used_tokens",
]
from router.observability import logs, metrics
from router.upstream.usage import completion_choices, estimate_prompt_tokens

log = logs.get_logger("router.limits")
_RETRY_DOWN = 1.0  # seconds: after a backend failure, apply on_error without asking it again
# Seconds a concurrency slot may outlive its request's deadline (a guard against a slot that
# is never released): the in-process lease lasts that long; a shared backend's short lease is
# renewed until then.
_LEASE_MARGIN = 900.0
_LOG_BROKEN_EVERY = 1.0  # seconds: at most one error line a second for refused commands


@dataclass(slots=True)
class LimitStats:
    """Plain counters for the metrics exporter."""

    admitted: int = 0
    rejected: int = 0
    waited: int = 0
    fell_back: int = 0
    backend_errors: int = 0  # unreachable: on_error applied
    command_errors: int = 0  # refused commands, script errors: 503
    failed_open: int = 0
    failed_closed: int = 0


@dataclass(slots=True)
class Ticket:
    """What one acquire recorded, to be finished (tokens reconciled, leases released) once."""

    pset: PolicySet
    member: str
    cost: int
    verdict: Verdict | None  # None: admitted because the backend was down (fail open)
    done: bool = False


class Limiter:
    def __init__(self, config: RateLimitBackendConfig) -> None:
        self.backend: Backend
        self.leases: LeaseRenewer | None = None
        self._check: Callable[[], Awaitable[None]] | None = None
        self.lease_ms = int(config.lease_seconds * 1000)
        if config.url:
            try:
                from router.limits.redis_backend import RedisBackend
            except ImportError as exc:  # pragma: no cover - depends on the installed extras
                raise RuntimeError(
                    "rate_limit_backend.url needs Redis support: "
                    "pip install 'llm-switchyard[redis]'"
                ) from exc
            redis = RedisBackend(config.url, config.key_prefix, config.timeout)
            self.backend = redis
            self.leases = LeaseRenewer(redis.renew, self.lease_ms, self._renewal_failed)
            self._check = redis.check
        else:
            self.backend = MemoryBackend()
        # The in-process backend answers without waiting: called directly, not awaited.
        self.local = self.backend if isinstance(self.backend, MemoryBackend) else None
        self.stats = LimitStats()
        self._down_until = 0.0
        self._down = False
        self._broken_logged = 0.0
        self._broken_since = 0  # command errors not logged since the last line
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Check a shared backend once; raises `BackendRefused` for one that cannot work."""
        if self._check is None:
            return
        try:
            await self._check()
        except BackendDown as exc:  # it may come up later: on_error applies until then
            log.warning("rate_limit_backend_unreachable", error=str(exc))
        except BackendBroken as exc:
            refused = BackendRefused(f"server.rate_limit_backend.url: {exc}")
            log.error("rate_limit_backend_refused", error=str(refused))
            raise refused from exc
        except BackendRefused as exc:
            log.error("rate_limit_backend_refused", error=str(exc))
            raise

    async def acquire(self, pset: PolicySet, cost: int, lease_ms: int) -> Ticket:
        """Try once. A rejected ticket has `verdict.admitted` False and recorded nothing.
        `lease_ms` is the longest a concurrency slot may be held: a shared backend's short
        lease is renewed until then (or until the ticket is finished)."""
        if self.local is not None:
            return self.acquire_local(pset, cost, lease_ms)
        member = self.backend.new_member()
        if time.monotonic() >= self._down_until:
            lease = min(lease_ms, self.lease_ms)
            try:
                verdict = await self.backend.acquire(pset.limits, member, cost, lease)
            except BackendDown as exc:
                self._failed(exc)
            except BackendBroken as exc:
                self._broken(exc, "acquire")
                raise errors.ServiceUnavailable(
                    "the rate-limit backend refused the router's command; the router's log "
                    "says why",
                    code="rate_limit_backend_error",
                ) from exc
            else:
                if self._down:
                    self._down = False
                    log.warning("rate_limit_backend_recovered")
                if verdict.admitted and pset.lease_keys and self.leases is not None:
                    self.leases.hold(member, pset.lease_keys, time.monotonic() + lease_ms / 1000)
                return Ticket(pset, member, cost, verdict)
        if pset.fail_closed:
            self.stats.failed_closed += 1
            raise errors.ServiceUnavailable(
                "the rate-limit backend is unavailable; try again shortly",
                code="rate_limit_backend_unavailable",
                headers={"retry-after": "1"},
            )
        self.stats.failed_open += 1
        return Ticket(pset, member, cost, None)

    def acquire_local(self, pset: PolicySet, cost: int, lease_ms: int) -> Ticket:
        """`acquire` on the in-process backend (`local` is set), without a coroutine."""
        assert self.local is not None
        member = self.local.new_member()
        return Ticket(
            pset, member, cost, self.local.acquire_now(pset.limits, member, cost, lease_ms)
        )

    def _failed(self, exc: BackendDown) -> None:
        self.stats.backend_errors += 1
        metrics.rate_limit_backend_errors.add(1, "unavailable")
        self._down_until = time.monotonic() + _RETRY_DOWN
        if not self._down:
            self._down = True
            log.warning("rate_limit_backend_error", error=str(exc))

    def _broken(self, exc: BackendBroken, operation: str) -> None:
        """A refused command: counted every time, logged at error level at most once a
        second (with how many were not logged), so that a broken setup is loud, not a flood."""
        self.stats.command_errors += 1
        metrics.rate_limit_backend_errors.add(1, "command")
        now = time.monotonic()
        if now - self._broken_logged < _LOG_BROKEN_EVERY:
            self._broken_since += 1
            return
        log.error(
            "rate_limit_backend_command_error",
            operation=operation,
            error=str(exc),
            not_logged_since=self._broken_since,
        )
        self._broken_logged, self._broken_since = now, 0

    def _renewal_failed(self, exc: Exception) -> None:
        if isinstance(exc, BackendDown):
            self._failed(exc)
        elif isinstance(exc, BackendBroken):
            self._broken(exc, "renew")
        else:  # pragma: no cover - the backend sorts every error it raises
            raise exc

    async def finish(self, ticket: Ticket, actual: int | None) -> None:
        if ticket.done:
            return
        ticket.done = True
        verdict = ticket.verdict
        if verdict is None or not verdict.admitted:
            return
        limits = ticket.pset.limits
        if self.local is not None:
            self.local.finish_now(limits, ticket.member, ticket.cost, actual, verdict.at)
            return
        if self.leases is not None and ticket.pset.lease_keys:
            self.leases.drop(ticket.member)
        try:
            await self.backend.finish(limits, ticket.member, ticket.cost, actual, verdict.at)
        except BackendDown as exc:
            self._failed(exc)  # leases then expire on their own
        except BackendBroken as exc:
            self._broken(exc, "finish")

    def finish_soon(self, ticket: Ticket, actual: int | None) -> None:
        """Finish in a task of its own: safe from a cancelled stream or a sync caller."""
        if ticket.done:
            return
        if self.local is not None:  # nothing to wait for: finish now
            ticket.done = True
            verdict = ticket.verdict
            if verdict is not None and verdict.admitted:
                self.local.finish_now(
                    ticket.pset.limits, ticket.member, ticket.cost, actual, verdict.at
                )
            return
        task = asyncio.get_running_loop().create_task(self.finish(ticket, actual))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.leases is not None:
            await self.leases.aclose()
        await self.backend.aclose()


def estimate_cost(body: dict[str, Any]) -> int:
    """Tokens a request may use: the prompt estimate plus the completions it asks for."""
    most = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    if not isinstance(most, int):
        most = 0
    elif most and ("n" in body or "best_of" in body):
        most *= completion_choices(body)
    return estimate_prompt_tokens(body) + most


def used_tokens(usage: dict[str, Any] | None) -> int | None:
    if not usage:
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    return sum(p for p in parts if isinstance(p, int)) if any(parts) else None


@dataclass(slots=True)
class CallLimits:
    """One request's acquisitions: admission, then one ticket per upstream attempt."""

    limiter: Limiter
    table: LimitTable
    deadline: float
    cost: int = 0
    tickets: list[Ticket] = field(default_factory=list)
    # Per kind, (remaining, limit, reset ms) of the tightest limit, as the answer's headers
    # reported it (set by `header_pairs`); the access log shows the remaining figures.
    tightest: dict[str, tuple[int, int, int]] | None = None
    # False when `cost` is in the operation's own unit (`router.limits.units`), which the
    # usage an answer reports does not count: the estimate then stands.
    reconcile: bool = True

    @property
    def lease_ms(self) -> int:
        return int((self.deadline - time.monotonic() + _LEASE_MARGIN) * 1000)

    async def admit(self, pset: PolicySet) -> None:
        """Key, model and global policies: all admit, or 429 and nothing is consumed."""
        if pset.limits:
            self.keep(pset, await self.limiter.acquire(pset, self.cost, self.lease_ms))

    def keep(self, pset: PolicySet, ticket: Ticket) -> None:
        """Hold an admission ticket, or raise the 429 it says."""
        if ticket.verdict is not None and not ticket.verdict.admitted:
            self.limiter.stats.rejected += 1
            raise _rejection(ticket, _over(pset, ticket.verdict, self.cost))
        self.limiter.stats.admitted += 1
        self.tickets.append(ticket)

    def headers(self) -> dict[str, str]:
        return rate_headers(self.tickets)

    def header_pairs(self) -> list[tuple[bytes, bytes]]:
        self.tightest = best = _tightest(self.tickets)
        return _header_pairs(best)

    def remaining(self) -> dict[str, int] | None:
        """What the answer's headers said was left, for the access log."""
        best = self.tightest
        if not best:
            return None
        return {f"remaining_{name}": best[kind][0] for kind, name in _NAMES if kind in best}

    def finish_soon(self, usage: dict[str, Any] | None) -> None:
        """Release everything held, now with the in-process backend, else in tasks."""
        if self.finish_now(usage):
            return
        actual = used_tokens(usage) if self.reconcile else None
        for ticket in self.tickets:
            self.limiter.finish_soon(ticket, actual)

    def finish_now(self, usage: dict[str, Any] | None) -> bool:
        """With the in-process backend, release everything held and return True (nothing to
        wait for); False when the backend is remote and `finish` must be awaited."""
        local = self.limiter.local
        if local is None:
            return False
        actual = used_tokens(usage) if self.reconcile else None
        for ticket in self.tickets:
            if not ticket.done:
                ticket.done = True
                verdict = ticket.verdict
                if verdict is not None and verdict.admitted:
                    local.finish_now(
                        ticket.pset.limits, ticket.member, ticket.cost, actual, verdict.at
                    )
        return True

    async def finish(self, usage: dict[str, Any] | None) -> None:
        if self.finish_now(usage):
            return
        actual = used_tokens(usage) if self.reconcile else None
        for ticket in self.tickets:
            await self.limiter.finish(ticket, actual)


async def admit(limiter: Limiter, table: LimitTable, call: Any) -> CallLimits | None:
    """Admission for one request (a `router.routing.dispatch.Call`): None when no policy can apply,
    else its `CallLimits`; raises 429 (or 503 when the backend is down and fails closed)."""
    pset = table.for_request(call.key.name, call.route.name)
    if not pset.limits and not table.providers:
        return None
    counts = pset.counts_tokens or table.providers_count_tokens
    unit = call.op.cost  # the operation's own unit, where tokens make no sense
    cost = (estimate_cost(call.body) if unit is None else unit(call.body)) if counts else 0
    limits = CallLimits(limiter, table, call.deadline, cost, reconcile=unit is None)
    if pset.limits:
        if limiter.local is not None:  # in-process: no coroutine to create and await
            limits.keep(pset, limiter.acquire_local(pset, limits.cost, limits.lease_ms))
        else:
            await limits.admit(pset)
    return limits
