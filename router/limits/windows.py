"""The in-process backend's buckets: one object per counter, each with the same small API.

`check(now, need, limit)` drops what has left the window and returns (used, reset ms): the
reset is when enough leaves for `need` more when that does not fit, else when the oldest
counted admission leaves (0 when nothing is counted). `add(now, member, amount)` records an
admission and returns the reset as it now stands. The Redis scripts (`router.limits.redis_backend`)
implement the same algorithms step for step, so both backends give the same answers.
"""

from __future__ import annotations

from collections import deque

_NEVER = 2**62  # ms: later than any lease


class RequestLog:
    """Exact: the time of each admission still in the window. Admission needs room, so it
    never holds more than `limit` entries (plain ints: nothing for the GC to walk)."""

    __slots__ = ("times", "window")

    def __init__(self, window_ms: int) -> None:
        self.window = window_ms
        self.times: deque[int] = deque()

    def check(self, now: int, need: int, limit: int) -> tuple[int, int]:
        times = self.times
        edge = now - self.window
        while times and times[0] <= edge:
            times.popleft()
        used = len(times)
        if not used:
            return 0, 0
        over = used + need - limit  # the oldest `over` entries must leave first
        return used, times[over - 1 if over > 0 else 0] + self.window - now

    def add(self, now: int, member: str, amount: int) -> int:
        self.times.append(now)
        return self.times[0] + self.window - now

    def reconcile(self, member: str, at: int, cost: int, actual: int) -> None:
        return None  # a request counts once, whatever it used


class TokenLog:
    """Exact: (time, member, tokens) per admission in the window, so that an estimate can be
    replaced by the actual usage. Every entry holds at least one token (one reconciled to
    zero is dropped), so it never holds more than `limit` entries."""

    __slots__ = ("entries", "total", "window")

    def __init__(self, window_ms: int) -> None:
        self.window = window_ms
        self.entries: deque[tuple[int, str, int]] = deque()
        self.total = 0

    def check(self, now: int, need: int, limit: int) -> tuple[int, int]:
        entries = self.entries
        edge = now - self.window
        while entries and entries[0][0] <= edge:
            self.total -= entries.popleft()[2]
        if not entries:
            return self.total, 0
        over, freed, at = self.total + need - limit, 0, entries[0][0]
        if over > 0:
            for when, _, tokens in entries:
                freed, at = freed + tokens, when
                if freed >= over:
                    break
        return self.total, at + self.window - now

    def add(self, now: int, member: str, amount: int) -> int:
        if amount > 0:
            self.entries.append((now, member, amount))
            self.total += amount
        return self.entries[0][0] + self.window - now if self.entries else 0

    def reconcile(self, member: str, at: int, cost: int, actual: int) -> None:
        entries = self.entries
        for i in range(len(entries) - 1, -1, -1):  # newest first: the likelier place
            when, who, tokens = entries[i]
            if who == member:
                if actual > 0:
                    entries[i] = (when, who, actual)
                else:
                    del entries[i]
                self.total += actual - tokens
                return
            if when < at:
                return  # older than the admission: it has left the window already


class WindowCounter:
    """Bounded: one count per sub-window of `span` ms, at most window/span + 1 of them.

    The count is every sub-window that overlaps the window, the oldest one whole: an
    admission stops counting when its sub-window has wholly left the window, at most one
    span after it would in an exact log. So it never admits more than the limit in any
    window, and a spent budget comes back at most one span late.
    """

    __slots__ = ("counts", "span", "subs", "total", "until")

    def __init__(self, window_ms: int, span_ms: int) -> None:
        self.span = span_ms
        self.subs = window_ms // span_ms
        self.counts: deque[list[int]] = deque()  # [sub-window index, count], oldest first
        self.total = 0
        self.until = _NEVER  # when the oldest sub-window stops counting (nothing to drop before)

    def _drop(self, now: int) -> None:
        counts = self.counts
        lo = now // self.span - self.subs  # older sub-windows no longer overlap the window
        while counts and counts[0][0] < lo:
            self.total -= counts.popleft()[1]
        self._oldest_changed()

    def _oldest_changed(self) -> None:
        counts = self.counts
        self.until = (counts[0][0] + self.subs + 1) * self.span if counts else _NEVER

    def check(self, now: int, need: int, limit: int) -> tuple[int, int]:
        if now >= self.until:
            self._drop(now)
        total = self.total
        if self.until == _NEVER:
            return total, 0
        over = total + need - limit
        if over <= 0:
            return total, self.until - now
        freed = 0
        for index, count in self.counts:
            freed, at = freed + count, index
            if freed >= over:
                break
        return total, (at + self.subs + 1) * self.span - now

    def add(self, now: int, member: str, amount: int) -> int:
        if amount > 0:
            counts = self.counts
            index = now // self.span
            if counts and counts[-1][0] == index:
                counts[-1][1] += amount
            else:
                counts.append([index, amount])
                if self.until == _NEVER:
                    self._oldest_changed()
            self.total += amount
        return 0 if self.until == _NEVER else self.until - now

    def reconcile(self, member: str, at: int, cost: int, actual: int) -> None:
        index = at // self.span
        counts = self.counts
        for entry in reversed(counts):
            if entry[0] == index:
                entry[1] += actual - cost
                self.total += actual - cost
                if entry[1] <= 0:
                    counts.remove(entry)
                    self._oldest_changed()
                return
            if entry[0] < index:
                return  # its sub-window has left the window


class Leases:
    """Concurrency: member -> expiry. Scanned for expired leases only once the earliest
    expiry has passed, not on every acquire."""

    __slots__ = ("expiry", "until")

    def __init__(self) -> None:
        self.until: dict[str, int] = {}
        self.expiry = _NEVER  # no lease expires before this

    def check(self, now: int, need: int, limit: int) -> tuple[int, int]:
        until = self.until
        if now >= self.expiry:
            for member in [m for m, end in until.items() if end <= now]:
                del until[member]
            self.expiry = min(until.values(), default=_NEVER)
        return len(until), 0

    def add(self, now: int, member: str, lease_ms: int) -> int:
        self.until[member] = end = now + lease_ms
        if end < self.expiry:
            self.expiry = end
        return 0

    def release(self, member: str) -> None:
        self.until.pop(member, None)


Bucket = RequestLog | TokenLog | WindowCounter | Leases
