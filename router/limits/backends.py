"""Where rate-limit counters live: this process, or Redis shared by every replica.

Both backends implement the same algorithm, a sliding-window log: each admitted request is
an entry with its time (and, for token windows, its token count), and a window's usage is
the sum of the entries younger than the window. Unlike fixed windows it never lets 2N
through across a boundary, and unlike GCRA its counts are plain "N in any window" numbers
that match the `x-ratelimit-*` headers and can be corrected after the fact (token usage is
reconciled by rewriting one entry). Exactness across replicas comes from doing the whole
check-then-record for every limit of a request in one Redis Lua script with Redis's own
clock: no read-then-write race, and a request one limit rejects records nothing anywhere.
Concurrency is a set of leases that expire (a crashed replica cannot leak them forever).
"""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from router.limits.policies import CONCURRENT, REQUESTS, TOKENS, Limit


@dataclass(slots=True)
class Verdict:
    """`used` per limit (after recording when admitted, before otherwise), `resets` in ms:
    when the limit next frees capacity (for a rejected request: enough for it)."""

    admitted: bool
    used: tuple[int, ...]
    resets: tuple[int, ...]


class BackendDown(Exception):
    """The backend could not answer; the policies' `on_error` decides."""


class Backend(Protocol):
    def new_member(self) -> str:
        """A name for one acquisition, unique wherever this backend's counters are seen."""
        ...

    async def acquire(
        self, limits: tuple[Limit, ...], member: str, cost: int, lease_ms: int
    ) -> Verdict: ...

    async def finish(
        self, limits: tuple[Limit, ...], member: str, cost: int, actual: int | None
    ) -> None: ...

    async def aclose(self) -> None: ...


_NEVER = 2**62  # ms: later than any lease


class MemoryBackend:
    """Exact within one process: the event loop runs each acquire without interruption.

    A request window's log is a deque of admission times (plain ints: no tuple per request,
    nothing for the garbage collector to walk); a token window's log keeps (time, member,
    tokens) so that a request's estimate can be replaced by its actual usage.
    """

    def __init__(self) -> None:
        self.times: dict[str, deque[int]] = {}  # requests windows
        self.logs: dict[str, deque[tuple[int, str, int]]] = {}  # token windows
        self.sums: dict[str, int] = {}
        self.leases: dict[str, dict[str, int]] = {}
        # Per concurrency key, no lease expires before this: the leases are scanned for
        # expired ones only from then on, not on every acquire (they last for the request
        # deadline plus a crash margin, so a scan is rare).
        self.expiry: dict[str, int] = {}
        self._members = itertools.count()

    def _requests(self, limit: Limit, now: int, need: int) -> tuple[int, int]:
        times = self.times.get(limit.key)
        if times is None:  # (get, not setdefault: no throw-away deque per call)
            times = self.times[limit.key] = deque()
        edge = now - limit.window_ms
        while times and times[0] <= edge:
            times.popleft()
        used = len(times)
        if not used:
            return 0, 0
        over = used + need - limit.limit  # the oldest `over` entries must leave first
        at = times[over - 1] if over > 0 else times[0]
        return used, at + limit.window_ms - now

    def _tokens(self, limit: Limit, now: int, need: int) -> tuple[int, int]:
        log = self.logs.get(limit.key)
        if log is None:
            log = self.logs[limit.key] = deque()
            self.sums[limit.key] = 0
        edge = now - limit.window_ms
        while log and log[0][0] <= edge:
            self.sums[limit.key] -= log.popleft()[2]
        used = self.sums[limit.key]
        if not log:
            return used, 0
        over, freed, at = used + need - limit.limit, 0, log[0][0]
        if over > 0:
            for entry in log:
                freed += entry[2]
                at = entry[0]
                if freed >= over:
                    break
        return used, at + limit.window_ms - now

    def _concurrent(self, limit: Limit, now: int) -> tuple[int, int]:
        leases = self.leases.get(limit.key)
        if leases is None:
            leases = self.leases[limit.key] = {}
        if now >= self.expiry.get(limit.key, 0):
            for member in [m for m, until in leases.items() if until <= now]:
                del leases[member]
            self.expiry[limit.key] = min(leases.values(), default=_NEVER)
        return len(leases), 0

    def new_member(self) -> str:
        return str(next(self._members))  # unique in this process, which alone sees these

    def acquire_now(
        self, limits: tuple[Limit, ...], member: str, cost: int, lease_ms: int
    ) -> Verdict:
        """`acquire` without a coroutine: nothing here waits (the limiter's fast path)."""
        now = int(time.monotonic() * 1000)
        used: list[int] = []
        resets: list[int] = []
        admitted = True
        for limit in limits:  # one pass: check every limit, record nothing yet
            kind = limit.kind
            count, reset = (
                self._requests(limit, now, 1)
                if kind == REQUESTS
                else self._tokens(limit, now, cost)
                if kind == TOKENS
                else self._concurrent(limit, now)
            )
            used.append(count)
            resets.append(reset)
            if count + (cost if kind == TOKENS else 1) > limit.limit:
                admitted = False
        if admitted:
            for i, limit in enumerate(limits):
                if limit.kind == CONCURRENT:
                    self.leases[limit.key][member] = until = now + lease_ms
                    if until < self.expiry[limit.key]:
                        self.expiry[limit.key] = until
                    used[i] += 1
                elif limit.kind == REQUESTS:
                    self.times[limit.key].append(now)
                    used[i] += 1
                elif cost > 0:
                    self.logs[limit.key].append((now, member, cost))
                    self.sums[limit.key] += cost
                    used[i] += cost
        return Verdict(admitted, tuple(used), tuple(resets))

    def finish_now(
        self, limits: tuple[Limit, ...], member: str, cost: int, actual: int | None
    ) -> None:
        for limit in limits:
            if limit.kind == CONCURRENT:
                leases = self.leases.get(limit.key)
                if leases is not None:
                    leases.pop(member, None)
            elif limit.kind == TOKENS and actual is not None and actual != cost:
                log = self.logs.get(limit.key, deque())
                last = len(log) - 1
                for back, (at, who, tokens) in enumerate(reversed(log)):  # newest first
                    if who == member:
                        log[last - back] = (at, who, actual)
                        self.sums[limit.key] += actual - tokens
                        break

    async def acquire(
        self, limits: tuple[Limit, ...], member: str, cost: int, lease_ms: int
    ) -> Verdict:
        return self.acquire_now(limits, member, cost, lease_ms)

    async def finish(
        self, limits: tuple[Limit, ...], member: str, cost: int, actual: int | None
    ) -> None:
        self.finish_now(limits, member, cost, actual)

    async def aclose(self) -> None:
        return None


# KEYS: per limit, its key and its token-sum key. ARGV: member, cost, lease ms, then per
# limit: kind, limit, window ms. Returns {admitted, used[], resets[]}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, cost, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #KEYS / 2
local used, resets, ok = {}, {}, 1
local function tokens(m) return tonumber(string.match(m, '|(%d+)$')) end
for i = 1, n do
  local kind, limit, window = ARGV[1 + 3 * i], tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
  local key, sumkey = KEYS[2 * i - 1], KEYS[2 * i]
  local u, need, reset = 0, 1, 0
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    u = redis.call('ZCARD', key)
  else
    local old = redis.call('ZRANGEBYSCORE', key, '-inf', now - window)
    if #old > 0 then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
      if kind == 't' then
        local freed = 0
        for _, m in ipairs(old) do freed = freed + tokens(m) end
        redis.call('DECRBY', sumkey, freed)
      end
    end
    if kind == 'r' then
      u = redis.call('ZCARD', key)
    else
      u = tonumber(redis.call('GET', sumkey) or '0')
      need = cost
    end
    local over = u + need - limit
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #first > 0 then
      reset = tonumber(first[2]) + window - now
      if over > 0 then
        if kind == 'r' then
          local e = redis.call('ZRANGE', key, over - 1, over - 1, 'WITHSCORES')
          if #e > 0 then reset = tonumber(e[2]) + window - now end
        else
          local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
          local freed = 0
          for j = 1, #entries, 2 do
            freed = freed + tokens(entries[j])
            reset = tonumber(entries[j + 1]) + window - now
            if freed >= over then break end
          end
        end
      end
    end
  end
  if u + need > limit then ok = 0 end
  used[i], resets[i] = u, reset
end
if ok == 1 then
  for i = 1, n do
    local kind, window = ARGV[1 + 3 * i], tonumber(ARGV[3 + 3 * i])
    local key, sumkey = KEYS[2 * i - 1], KEYS[2 * i]
    if kind == 'c' then
      redis.call('ZADD', key, now + lease, member)
      redis.call('PEXPIRE', key, lease)
      used[i] = used[i] + 1
    elseif kind == 'r' then
      redis.call('ZADD', key, now, member)
      redis.call('PEXPIRE', key, window)
      used[i] = used[i] + 1
    elseif cost > 0 then
      redis.call('ZADD', key, now, member .. '|' .. cost)
      redis.call('INCRBY', sumkey, cost)
      redis.call('PEXPIRE', key, window)
      redis.call('PEXPIRE', sumkey, window)
      used[i] = used[i] + cost
    end
  end
end
return {ok, used, resets}
"""

# KEYS as above. ARGV: member, estimated cost, actual tokens (-1: unknown), then kinds.
_FINISH = """
local member, cost, actual = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, #KEYS / 2 do
  local kind, key = ARGV[3 + i], KEYS[2 * i - 1]
  if kind == 'c' then
    redis.call('ZREM', key, member)
  elseif kind == 't' and actual >= 0 and actual ~= cost then
    local old = member .. '|' .. cost
    local score = redis.call('ZSCORE', key, old)
    if score then
      redis.call('ZREM', key, old)
      if actual > 0 then redis.call('ZADD', key, score, member .. '|' .. actual) end
      redis.call('INCRBY', KEYS[2 * i], actual - cost)
    end
  end
end
return 1
"""


class RedisBackend:
    """Counters in Redis: one script call per admission, one per finish, shared by replicas.

    redis-py reconnects by itself, and `Script` reloads the script after a Redis restart
    (NOSCRIPT), so a Redis that comes back is used again without a router restart.
    """

    def __init__(self, url: str, key_prefix: str, timeout: float) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError(
                "rate_limit_backend.url needs Redis support: pip install 'llm-router[redis]'"
            ) from exc
        self.client: Any = aioredis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
        )
        self.prefix = key_prefix + ":rl:"
        self._acquire = self.client.register_script(_ACQUIRE)
        self._finish = self.client.register_script(_FINISH)

    def new_member(self) -> str:
        return os.urandom(8).hex()  # unique across replicas

    def _keys(self, limits: tuple[Limit, ...]) -> list[str]:
        keys = []
        for limit in limits:
            keys += [self.prefix + limit.key, self.prefix + limit.key + ":sum"]
        return keys

    async def acquire(
        self, limits: tuple[Limit, ...], member: str, cost: int, lease_ms: int
    ) -> Verdict:
        args: list[Any] = [member, cost, lease_ms]
        for limit in limits:
            args += [limit.kind, limit.limit, limit.window_ms]
        try:
            ok, used, resets = await self._acquire(keys=self._keys(limits), args=args)
        except Exception as exc:  # any redis or socket error: the backend is down
            raise BackendDown(f"{type(exc).__name__}: {exc}") from exc
        return Verdict(bool(ok), tuple(int(u) for u in used), tuple(int(r) for r in resets))

    async def finish(
        self, limits: tuple[Limit, ...], member: str, cost: int, actual: int | None
    ) -> None:
        args: list[Any] = [member, cost, -1 if actual is None else actual]
        args += [limit.kind for limit in limits]
        try:
            await self._finish(keys=self._keys(limits), args=args)
        except Exception as exc:
            raise BackendDown(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self.client.aclose()
