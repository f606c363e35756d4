"""How late the event loop runs what is due: the router's own queueing, apart from its
upstreams'.

A timer due every `INTERVAL` seconds records how long after its time it ran. Everything the
process does runs on that loop, so while it is busy (thousands of streams' chunks, a long
step of Python, a stopped or CPU-starved process) every request waits about as long: the
histogram tells that wait from an upstream's slowness, which the request durations cannot.
One timer, no task: a few microseconds a second.
"""

from __future__ import annotations

import asyncio
import time

from router.observability import metrics

INTERVAL = 0.1  # seconds between two measurements

lag = metrics.Histogram(
    "llm_router.event_loop.lag",
    f"How late the event loop ran a timer due every {INTERVAL:g} s: how long any request "
    "waited for the router's own process then.",
    (),
    (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    unit="s",
)


class LagWatch:
    """Measures `lag` while started (one per event loop: `start` in its lifespan)."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0  # time.monotonic() the next timer is due at

    def start(self) -> None:
        self._due = time.monotonic() + self.interval
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        # monotonic, not the loop's clock: uvloop's is the time its iteration began
        now = time.monotonic()
        late = now - self._due
        lag.record(late if late > 0 else 0.0)
        self._due = now + self.interval
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
