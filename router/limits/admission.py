"""Enforcing rate-limit policies: admission, per-attempt upstream quotas, release, headers.

`Limiter` lives as long as the server (it owns the backend); `CallLimits` lives as long as
one request and holds what it acquired, so that everything is released exactly once when the
request or its stream ends, whichever way it ends.
"""

from __future__ import annotations

import asyncio
import random
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
from router.limits.policies import CONCURRENT, REQUESTS, TOKENS, LimitTable, PolicySet
from router.observability import logs, metrics
from router.upstream.usage import estimate_prompt_tokens

log = logs.get_logger("router.limits")
_RETRY_DOWN = 1.0  # seconds: after a backend failure, apply on_error without asking it again
# Seconds a concurrency slot may outlive its request's deadline (a guard against a slot that
# is never released): the in-process lease lasts that long; a shared backend's short lease is
# renewed until then.
_LEASE_MARGIN = 900.0
_POLL = (0.05, 0.2)  # seconds between tries when waiting for a concurrency slot
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


def _over(pset: PolicySet, verdict: Verdict, cost: int) -> list[int]:
    """Indexes of the limits that said no."""
    out = []
    for i, (limit, used) in enumerate(zip(pset.limits, verdict.used, strict=True)):
        need = cost if limit.kind == TOKENS else 1
        if used + need > limit.limit:
            out.append(i)
    return out


def _rejection(ticket: Ticket, over: list[int]) -> errors.RateLimited:
    assert ticket.verdict is not None
    pset, verdict = ticket.pset, ticket.verdict
    first = pset.limits[over[0]]
    policy = pset.policies[first.policy]
    what = {REQUESTS: "requests", TOKENS: "tokens", CONCURRENT: "concurrent requests"}[first.kind]
    per = f" per {first.window_ms // 1000}s" if first.window_ms else ""
    wait = max((verdict.resets[i] for i in over), default=0) / 1000
    headers = rate_headers([ticket])
    headers["retry-after"] = str(max(1, int(-(-wait // 1))))
    return errors.RateLimited(
        f"rate limit '{policy.name}' ({policy.scope}) reached: {first.limit} {what}{per}",
        headers=headers,
    )


def _reset(ms: int) -> str:
    """`ms` as seconds with at most three decimals, e.g. `1.5s`, `60s` (integer arithmetic:
    this is on every answer, and float rounding and `:g` formatting cost several times more)."""
    seconds, rest = divmod(max(0, ms), 1000)
    if not rest:
        return f"{seconds}s"
    return f"{seconds}.{str(1000 + rest)[1:].rstrip('0')}s"


def _tightest(tickets: list[Ticket]) -> dict[str, tuple[int, int, int]]:
    """Per kind (requests, tokens): (remaining, limit, reset ms) of the tightest limit."""
    best: dict[str, tuple[int, int, int]] = {}
    if len(tickets) == 1 and tickets[0].pset.one_per_kind:  # no comparisons to make
        ticket = tickets[0]
        verdict = ticket.verdict
        if verdict is not None:
            for i, limit in enumerate(ticket.pset.limits):
                if limit.kind != CONCURRENT:
                    best[limit.kind] = (
                        max(0, limit.limit - verdict.used[i]),
                        limit.limit,
                        verdict.resets[i],
                    )
        return best
    for ticket in tickets:
        if ticket.verdict is None:
            continue
        for limit, used, reset in zip(
            ticket.pset.limits, ticket.verdict.used, ticket.verdict.resets, strict=True
        ):
            if limit.kind == CONCURRENT:
                continue
            entry = (max(0, limit.limit - used), limit.limit, reset)
            if limit.kind not in best or entry < best[limit.kind]:
                best[limit.kind] = entry
    return best


_NAMES = ((REQUESTS, "requests"), (TOKENS, "tokens"))
_RAW_NAMES = {
    kind: tuple(f"x-ratelimit-{what}-{name}".encode() for what in ("limit", "remaining", "reset"))
    for kind, name in _NAMES
}


def rate_headers(tickets: list[Ticket]) -> dict[str, str]:
    """`x-ratelimit-*` for the tightest request and token limits among `tickets`."""
    best = _tightest(tickets)
    headers = {}
    for kind, name in _NAMES:
        if kind in best:
            remaining, ceiling, reset = best[kind]
            headers[f"x-ratelimit-limit-{name}"] = str(ceiling)
            headers[f"x-ratelimit-remaining-{name}"] = str(remaining)
            headers[f"x-ratelimit-reset-{name}"] = _reset(reset)
    return headers


def rate_header_pairs(tickets: list[Ticket]) -> list[tuple[bytes, bytes]]:
    """`rate_headers` as the byte pairs an answer's raw headers take (same order)."""
    return _header_pairs(_tightest(tickets))


def _header_pairs(best: dict[str, tuple[int, int, int]]) -> list[tuple[bytes, bytes]]:
    pairs = []
    for kind, _ in _NAMES:
        if kind in best:
            remaining, ceiling, reset = best[kind]
            limit_name, remaining_name, reset_name = _RAW_NAMES[kind]
            pairs += [
                (limit_name, _ascii(ceiling)),
                (remaining_name, str(remaining).encode()),
                (reset_name, _reset_bytes(reset)),
            ]
    return pairs


_ASCII: dict[int, bytes] = {}
_last_reset: tuple[int, bytes] = (-1, b"")


def _ascii(number: int) -> bytes:
    """A limit's figure as header bytes; limits come from the config, so few and cached."""
    out = _ASCII.get(number)
    if out is None:
        if len(_ASCII) > 1024:
            _ASCII.clear()
        out = _ASCII[number] = str(number).encode()
    return out


def _reset_bytes(ms: int) -> bytes:
    """`_reset(ms)` encoded; requests answered in the same millisecond share one."""
    global _last_reset
    last_ms, text = _last_reset
    if ms != last_ms:
        text = _reset(ms).encode()
        _last_reset = (ms, text)
    return text


def estimate_cost(body: dict[str, Any]) -> int:
    """Tokens a request may use: the prompt estimate plus the completion it asks for."""
    most = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return estimate_prompt_tokens(body) + (most if isinstance(most, int) else 0)


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
    attempt: Ticket | None = None
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

    async def before_attempt(self, provider: str, remaining: float) -> errors.RouterError | None:
        """A provider's quota: None to go ahead, an error to move on (`fallback`); raises to
        fail the request (`reject`, or a `wait` that would outlast `max_wait` or the deadline)."""
        pset = self.table.for_provider(provider)
        if not pset.limits:
            return None
        started = time.monotonic()
        give_up = started + remaining
        waited = False
        while True:
            ticket = await self.limiter.acquire(pset, self.cost, self.lease_ms)
            verdict = ticket.verdict
            if verdict is None or verdict.admitted:
                self.attempt = ticket
                self.tickets.append(ticket)
                return None
            over = _over(pset, verdict, self.cost)
            actions = {pset.policies[pset.limits[i].policy].on_limit for i in over}
            error = _rejection(ticket, over)
            if "reject" in actions:
                self.limiter.stats.rejected += 1
                raise error
            if "fallback" in actions:
                self.limiter.stats.fell_back += 1
                return error
            if not waited:
                waited = True
                self.limiter.stats.waited += 1
            max_wait = min(pset.policies[pset.limits[i].policy].max_wait for i in over)
            reset = max(verdict.resets[i] for i in over) / 1000
            pause = reset + random.uniform(0, 0.02) if reset > 0 else random.uniform(*_POLL)
            if time.monotonic() + pause > min(started + max_wait, give_up):
                self.limiter.stats.rejected += 1
                raise error
            await asyncio.sleep(pause)

    def after_attempt(self, ok: bool) -> None:
        """A failed attempt gives back its tokens and concurrency slot (not its request)."""
        ticket, self.attempt = self.attempt, None
        if ticket is not None and not ok:
            self.limiter.finish_soon(ticket, 0)

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
