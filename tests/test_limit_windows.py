"""The counting algorithms, on the in-process backend with a clock the test drives.

Small limits are counted exactly; large ones by a sliding-window counter whose memory does
not grow with traffic and whose error is one sub-window, in the safe direction.
"""

from __future__ import annotations

import bisect
import random
import tracemalloc

from router.limits.backends import MemoryBackend
from router.limits.policies import EXACT_LIMIT, REQUESTS, SUBWINDOWS, TOKENS, Limit, window_limit


class Clock:
    def __init__(self, start: int = 1_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


def _backend() -> tuple[MemoryBackend, Clock]:
    clock = Clock()
    return MemoryBackend(clock), clock


def test_the_threshold_picks_the_algorithm() -> None:
    exact = window_limit(REQUESTS, "p:key:a", EXACT_LIMIT, 60_000, 0)
    counted = window_limit(REQUESTS, "p:key:a", EXACT_LIMIT + 1, 60_000, 0)
    assert exact.span_ms == 0
    assert counted.span_ms == 60_000 // SUBWINDOWS == 600
    assert exact.key != counted.key  # a limit moved across the threshold starts afresh


def test_seven_a_minute_is_exact_to_the_millisecond() -> None:
    backend, clock = _backend()
    seven = (window_limit(REQUESTS, "telkom", 7, 60_000, 0),)
    starts = []
    for i in range(7):
        clock.now = 1_000_000 + i * 1_000
        starts.append(clock.now)
        assert backend.acquire_now(seven, str(i), 0, 0).admitted
    clock.now = 1_000_000 + 59_999
    refused = backend.acquire_now(seven, "late", 0, 0)
    assert not refused.admitted and refused.used == (7,)
    assert refused.resets == (1,)  # the first admission leaves the window in 1 ms
    clock.now = starts[0] + 60_000
    assert backend.acquire_now(seven, "next", 0, 0).admitted
    assert not backend.acquire_now(seven, "one more", 0, 0).admitted


def test_a_fresh_window_resets_when_its_first_admission_leaves() -> None:
    backend, clock = _backend()
    for limit in (
        window_limit(REQUESTS, "a", 10, 60_000, 0),
        window_limit(TOKENS, "a", 1_000, 60_000, 0),
    ):
        verdict = backend.acquire_now((limit,), "m", 50, 0)
        assert verdict.admitted and verdict.resets == (60_000,)
    counter = window_limit(REQUESTS, "b", 5_000, 60_000, 0)
    clock.now = 600 * 1_700 + 250  # 250 ms into a 600 ms sub-window
    verdict = backend.acquire_now((counter,), "m", 0, 0)
    # counted until its sub-window has wholly left the window: 60 s + the rest of it
    assert verdict.resets == (60_000 + 350,)


def _exact_count(times: list[int], start: int, end: int) -> int:
    """Admissions in the window (start, end]."""
    return bisect.bisect_right(times, end) - bisect.bisect_right(times, start)


def test_the_counter_never_admits_over_the_limit_and_is_at_most_one_span_late() -> None:
    backend, clock = _backend()
    limit = window_limit(REQUESTS, "big", 1_200, 1_000, 0)  # 10 ms sub-windows
    window, span = limit.window_ms, limit.span_ms
    rng = random.Random(7)
    admitted: list[int] = []
    rejected = 0
    for i in range(12_000):
        clock.now += rng.choice((0, 0, 0, 0, 1, 1, 2)) if rng.random() > 0.002 else 700
        verdict = backend.acquire_now((limit,), str(i), 0, 0)
        now = clock.now
        if verdict.admitted:
            admitted.append(now)
            assert _exact_count(admitted, now - window, now) <= limit.limit  # never over
        else:
            rejected += 1
            # justified by the admissions of one window plus at most one sub-window more
            assert _exact_count(admitted, now - window - span, now) >= limit.limit
            assert 0 < verdict.resets[0] <= window + span
    assert rejected > 1_000 and len(admitted) > 5_000


def test_a_rejection_says_exactly_when_to_come_back() -> None:
    backend, clock = _backend()
    for limit, cost in (
        (window_limit(REQUESTS, "r", 5, 60_000, 0), 0),
        (window_limit(REQUESTS, "R", 2_000, 60_000, 0), 0),
        (window_limit(TOKENS, "t", 1_000, 60_000, 0), 300),
        (window_limit(TOKENS, "T", 100_000, 60_000, 0), 30_000),
    ):
        member = 0
        while True:
            clock.now += 7
            member += 1
            verdict = backend.acquire_now((limit,), str(member), cost, 0)
            if not verdict.admitted:
                break
        start, wait = clock.now, verdict.resets[0]
        clock.now = start + wait - 1
        assert not backend.acquire_now((limit,), "early", cost, 0).admitted, limit
        clock.now = start + wait
        assert backend.acquire_now((limit,), "on time", cost, 0).admitted, limit


def test_token_estimates_are_reconciled_in_the_counter_and_the_log() -> None:
    backend, clock = _backend()
    for limit in (
        window_limit(TOKENS, "log", 1_000, 60_000, 0),
        window_limit(TOKENS, "counter", 10_000, 60_000, 0),
    ):
        first = backend.acquire_now((limit,), "a", 400, 0)
        clock.now += 1_000
        second = backend.acquire_now((limit,), "b", 400, 0)
        assert second.used == (800,)
        backend.finish_now((limit,), "a", 400, 7, first.at)  # reported usage
        backend.finish_now((limit,), "b", 400, 0, second.at)  # a failed attempt: nothing
        clock.now += 1
        assert backend.acquire_now((limit,), "c", 1, 0).used == (8,)


def _grown(backend: MemoryBackend, clock: Clock, limit: Limit, count: int) -> int:
    """Bytes allocated (and kept) by `count` admissions spread evenly over two windows."""
    step = 2 * limit.window_ms // count
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        clock.now += step
        assert backend.acquire_now((limit,), "m", 1, 0).admitted
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return grown


def test_a_large_limit_holds_the_same_memory_whatever_the_traffic() -> None:
    day = window_limit(REQUESTS, "day", 10**9, 86_400_000, 0)
    tokens = window_limit(TOKENS, "day", 10**9, 86_400_000, 0)
    for limit in (day, tokens):
        backend, clock = _backend()
        _grown(backend, clock, limit, 1_000)  # every sub-window touched
        assert _grown(backend, clock, limit, 20_000) < 8_192
