"""Rate-limit counters in Redis, shared by every replica: one Lua script call per admission,
the calls made while one is under way sent together (`router.limits.redis_batch`).

The scripts implement `router.limits.windows` step for step, with Redis's own clock (`TIME`),
so that both backends give the same answers. Per limit they see two keys: its own (a sorted
set for an exact log or a lease set, a hash for a sliding-window counter) and, for an exact
token log, the key holding its sum. Every expiry a script sets is the latest any member of
the key needs, so a new entry never shortens an older one's life.

Errors are sorted at this boundary: a Redis that cannot be reached, times out, is loading,
read-only or out of memory is *down* (`BackendDown`: the policies' `on_error` applies); any
other error reply (a script error, WRONGTYPE, NOPERM, CROSSSLOT or MOVED from a Redis
Cluster, a refused password) means the setup is wrong (`BackendBroken`). Redis Cluster is
not supported: a script touches the keys of several buckets at once, which a cluster only
allows within one hash slot; a Cluster node is refused at start-up.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rx

from router.limits.backends import BackendBroken, BackendDown, BackendRefused, Verdict
from router.limits.policies import Limit
from router.limits.redis_batch import ScriptBatcher

_REDIS_CLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# Tests and benchmarks drive both backends with one clock: `now` is the last argument.
_ARGV_CLOCK = """
local now = tonumber(ARGV[#ARGV])
"""

# KEYS: per limit, its key and its aux key (an exact token log's sum). ARGV: member, cost,
# lease ms, then per limit: kind, limit, window ms, sub-window ms (0: exact log).
# Returns {admitted, used[], resets[], now}.
_ACQUIRE = """
local member, cost, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #KEYS / 2
local used, resets, marks, ok = {}, {}, {}, 1
local function field(j) return string.format('%d', j) end
local function tokens(m) return tonumber(string.match(m, '|(%d+)$')) end

-- A counter is a hash: 'n' the sum of its sub-windows, 'f' no sub-window older than this
-- index is left, and one field per sub-window index holding its count (never 0).
-- Drops the sub-windows that no longer overlap the window; returns the sum, the oldest
-- sub-window still counted (false if none) and the current one.
local function tidy(key, span, subs)
  local state = redis.call('HMGET', key, 'n', 'f')
  local k = math.floor(now / span)
  local total, f = tonumber(state[1]) or 0, tonumber(state[2]) or k
  if k < f then k = f end -- Redis's clock stepped back: count in the newest sub-window
  if total <= 0 then return 0, false, k end
  local lo = k - subs
  if f < lo then
    local names = {}
    for j = f, math.min(lo - 1, f + subs) do names[#names + 1] = field(j) end
    local counts = redis.call('HMGET', key, unpack(names))
    local gone = 0
    for j = 1, #names do
      if counts[j] then gone = gone + tonumber(counts[j]) end
    end
    if gone ~= 0 then
      redis.call('HDEL', key, unpack(names))
      total = redis.call('HINCRBY', key, 'n', -gone)
    end
    f = lo
  end
  local oldest = false
  if total > 0 then
    for j = f, k do
      if redis.call('HEXISTS', key, field(j)) == 1 then oldest = j break end
    end
  end
  if not oldest then
    if total ~= 0 then redis.call('HSET', key, 'n', 0) end
    return 0, false, k
  end
  if oldest ~= tonumber(state[2]) then redis.call('HSET', key, 'f', field(oldest)) end
  return total, oldest, k
end

for i = 1, n do
  local kind, limit = ARGV[4 * i], tonumber(ARGV[4 * i + 1])
  local window, span = tonumber(ARGV[4 * i + 2]), tonumber(ARGV[4 * i + 3])
  local key, sumkey = KEYS[2 * i - 1], KEYS[2 * i]
  local u, need, reset = 0, 1, 0
  if kind == 't' then need = cost end
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    u = redis.call('ZCARD', key)
  elseif span > 0 then
    local subs = window / span
    local total, oldest, k = tidy(key, span, subs)
    u, marks[i] = total, {oldest, k}
    if oldest then
      local at, over = oldest, u + need - limit
      if over > 0 then
        local names = {}
        for j = oldest, k do names[#names + 1] = field(j) end
        local counts = redis.call('HMGET', key, unpack(names))
        local freed = 0
        for j = 1, #names do
          if counts[j] then
            freed, at = freed + tonumber(counts[j]), oldest + j - 1
            if freed >= over then break end
          end
        end
      end
      reset = (at + subs + 1) * span - now
    end
  elseif kind == 'r' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    u = redis.call('ZCARD', key)
    marks[i] = false
    if u > 0 then
      local over = u + need - limit
      local pos = math.max(over - 1, 0) -- the entry whose leaving makes room
      local e = redis.call('ZRANGE', key, pos, pos, 'WITHSCORES')
      reset = tonumber(e[2]) + window - now
      if over <= 0 then marks[i] = tonumber(e[2]) end
    end
  else
    local old = redis.call('ZRANGEBYSCORE', key, '-inf', now - window)
    if #old > 0 then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
      local freed = 0
      for _, m in ipairs(old) do freed = freed + tokens(m) end
      redis.call('DECRBY', sumkey, freed)
    end
    u = tonumber(redis.call('GET', sumkey) or '0')
    marks[i] = false
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if #first == 0 then
      if u ~= 0 then redis.call('DEL', sumkey) end
      u = 0
    else
      local at, over = tonumber(first[2]), u + need - limit
      marks[i] = at
      if over > 0 then
        local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
        local freed = 0
        for j = 1, #entries, 2 do
          freed, at = freed + tokens(entries[j]), tonumber(entries[j + 1])
          if freed >= over then break end
        end
      end
      reset = at + window - now
    end
  end
  if u + need > limit then ok = 0 end
  used[i], resets[i] = u, reset
end
if ok == 1 then
  for i = 1, n do
    local kind, window, span = ARGV[4 * i], tonumber(ARGV[4 * i + 2]), tonumber(ARGV[4 * i + 3])
    local key, sumkey = KEYS[2 * i - 1], KEYS[2 * i]
    local need = 1
    if kind == 't' then need = cost end
    if kind == 'c' then
      redis.call('ZADD', key, now + lease, member)
      local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      redis.call('PEXPIREAT', key, last[2])
    elseif span > 0 then
      local mark = marks[i]
      if need > 0 then
        redis.call('HINCRBY', key, field(mark[2]), need)
        redis.call('HINCRBY', key, 'n', need)
        if not mark[1] then
          redis.call('HSET', key, 'f', field(mark[2]))
          mark[1] = mark[2]
        end
        redis.call('PEXPIRE', key, window + span)
      end
      if mark[1] then resets[i] = (mark[1] + window / span + 1) * span - now end
    elseif need > 0 then
      if kind == 'r' then
        redis.call('ZADD', key, now, member)
      else
        redis.call('ZADD', key, now, member .. '|' .. cost)
        redis.call('INCRBY', sumkey, cost)
        redis.call('PEXPIRE', sumkey, window)
      end
      redis.call('PEXPIRE', key, window)
      resets[i] = (marks[i] or now) + window - now
    end
    used[i] = used[i] + need
  end
end
return {ok, used, resets, now}
"""

# KEYS as above. ARGV: member, estimated cost, actual tokens (-1: unknown), the admission's
# time, then per limit: kind, sub-window ms.
_FINISH = """
local member, cost, actual, at = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, #KEYS / 2 do
  local kind, span, key = ARGV[3 + 2 * i], tonumber(ARGV[4 + 2 * i]), KEYS[2 * i - 1]
  if kind == 'c' then
    redis.call('ZREM', key, member)
  elseif kind == 't' and actual >= 0 and actual ~= cost and cost > 0 then
    if span > 0 then
      local name = string.format('%d', math.floor(at / span))
      if redis.call('HEXISTS', key, name) == 1 then
        local left = redis.call('HINCRBY', key, name, actual - cost)
        redis.call('HINCRBY', key, 'n', actual - cost)
        if left <= 0 then redis.call('HDEL', key, name) end
      end
    else
      local old = member .. '|' .. cost
      local score = redis.call('ZSCORE', key, old)
      if score then
        redis.call('ZREM', key, old)
        if actual > 0 then redis.call('ZADD', key, score, member .. '|' .. actual) end
        redis.call('INCRBY', KEYS[2 * i], actual - cost)
      end
    end
  end
end
return 1
"""

# KEYS: one lease set per lease. ARGV: lease ms, then the member of each. Extends each
# lease that is still there to now + lease; returns the (1-based) positions of those gone.
_RENEW = """
local lease = tonumber(ARGV[1])
local lost = {}
for i = 1, #KEYS do
  local key, member = KEYS[i], ARGV[i + 1]
  local score = redis.call('ZSCORE', key, member)
  if score then
    if tonumber(score) < now + lease then redis.call('ZADD', key, now + lease, member) end
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', key, last[2])
  else
    lost[#lost + 1] = i
  end
end
return lost
"""

# The largest count a Lua number holds exactly (a double): an upstream's usage beyond it (a
# buggy or hostile answer) is counted as this much, not sent for Redis to refuse.
_EXACT = 2**53
_CONNECTIONS = 100  # per process: each script call holds one for tens of microseconds
_DOWN = (
    rx.ConnectionError,  # refused, reset, LOADING (BusyLoadingError)
    rx.TimeoutError,
    OSError,
    asyncio.TimeoutError,
    rx.ReadOnlyError,  # a replica after a failover
    rx.OutOfMemoryError,  # maxmemory reached
    rx.ClusterDownError,
    rx.TryAgainError,
)
_CLUSTER = (rx.AskError, rx.ClusterCrossSlotError)  # MOVED is an AskError
_CLUSTER_HINT = (
    " (Redis Cluster is not supported: point server.rate_limit_backend.url at a standalone "
    "Redis, or a primary with replicas)"
)


def classify(exc: BaseException) -> BackendDown | BackendBroken:
    """A Redis client error as down (unreachable: `on_error` applies) or broken (wrong)."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, rx.AuthenticationError | rx.AuthorizationError):
        return BackendBroken(text)  # a wrong password or ACL: connected, and refused
    busy = isinstance(exc, rx.ResponseError) and f"{exc}".startswith("BUSY")  # a long script
    if busy or isinstance(exc, _DOWN):
        return BackendDown(text)
    if isinstance(exc, _CLUSTER):
        return BackendBroken(text + _CLUSTER_HINT)
    return BackendBroken(text)


class RedisBackend:
    """Counters in Redis: one script call per admission, one per finish, shared by replicas.

    redis-py reconnects by itself, and `Script` reloads the script after a Redis restart
    (NOSCRIPT), so a Redis that comes back is used again without a router restart. `clock`
    (ms) is for tests and benchmarks only: it replaces Redis's `TIME` in the scripts.
    """

    def __init__(
        self,
        url: str,
        key_prefix: str,
        timeout: float,
        clock: Callable[[], int] | None = None,
    ) -> None:
        # A blocking pool: past `_CONNECTIONS` admissions in flight, one waits up to
        # `timeout` for a connection instead of failing at once (redis-py's default pool
        # raises "Too many connections", which would apply on_error under load).
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
        )
        self.client: Any = aioredis.Redis.from_pool(pool)
        self.prefix = key_prefix + ":rl:"
        prelude = _REDIS_CLOCK if clock is None else _ARGV_CLOCK
        self._acquire = self.client.register_script(prelude + _ACQUIRE)
        self._finish = self.client.register_script(_FINISH)
        self._renew = self.client.register_script(prelude + _RENEW)
        self._clock = clock
        self.batcher = ScriptBatcher(self.client)

    async def check(self) -> None:
        """At start-up: refuse a Redis Cluster node (raises `BackendRefused`); a Redis that
        is down raises `BackendDown`, one that refuses us `BackendBroken`."""
        try:
            info = await self.client.info("cluster")
        except rx.NoPermissionError:
            return  # INFO is not allowed to this user: a Cluster shows itself later (CROSSSLOT)
        except Exception as exc:
            raise classify(exc) from exc
        if str(info.get("cluster_enabled", 0)) == "1":
            raise BackendRefused(
                "server.rate_limit_backend.url points at a Redis Cluster node; Redis Cluster "
                "is not supported for rate limits (one admission checks several buckets in "
                "one script). Use a standalone Redis, or a primary with replicas."
            )

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
            args += [limit.kind, limit.limit, limit.window_ms, limit.span_ms]
        if self._clock is not None:
            args.append(self._clock())
        try:
            ok, used, resets, at = await self.batcher.call(self._acquire, self._keys(limits), args)
        except Exception as exc:
            raise classify(exc) from exc
        return Verdict(
            bool(ok), tuple(int(u) for u in used), tuple(int(r) for r in resets), int(at)
        )

    async def finish(
        self, limits: tuple[Limit, ...], member: str, cost: int, actual: int | None, at: int
    ) -> None:
        if actual is None:
            actual = -1
        elif actual > _EXACT:
            actual = _EXACT
        args: list[Any] = [member, cost, actual, at]
        for limit in limits:
            args += [limit.kind, limit.span_ms]
        try:
            await self.batcher.call(self._finish, self._keys(limits), args)
        except Exception as exc:
            raise classify(exc) from exc

    async def renew(self, leases: list[tuple[str, str]], lease_ms: int) -> list[int]:
        """Extend each (limit key, member) lease to lease_ms from now; the indexes of those
        that were gone (lapsed, or Redis lost them)."""
        keys = [self.prefix + key for key, _ in leases]
        args: list[Any] = [lease_ms, *(member for _, member in leases)]
        if self._clock is not None:
            args.append(self._clock())
        try:
            lost = await self.batcher.call(self._renew, keys, args)
        except Exception as exc:
            raise classify(exc) from exc
        return [int(i) - 1 for i in lost]

    async def aclose(self) -> None:
        await self.client.aclose()
