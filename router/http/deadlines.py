"""Time limits on many waits, checked by one coarse timer instead of a timer per wait.

Every request has a limit on how long its headers and its body may take. A uvloop timer
armed and cancelled costs about 5 us (a libuv handle each time), a cost every request would
pay although almost none ever reaches its limit. Here watching a wait costs a dict insert
and forgetting it a delete; one timer runs every `TICK` seconds, expiring whatever is
overdue, while anything is watched and for `LINGER_TICKS` more (a busy server's waits come
and go between two ticks: the timer would otherwise stop and start again at each). A limit
is thus enforced up to `TICK` late. All the `Deadlines` of a loop share its one timer (`_Ticker`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

TICK = 0.1  # seconds between checks while anything is watched
LINGER_TICKS = 10  # checks finding nothing watched before a `Deadlines` stops being checked
W = TypeVar("W", bound=Hashable)


class Deadlines(Generic[W]):
    """The waits of one event loop and their deadlines (`time.monotonic()` seconds);
    `on_expire(wait)` is called on the loop, once, when a wait's deadline has passed."""

    __slots__ = ("_due", "_idle", "_on_expire", "_ticker")

    def __init__(self, on_expire: Callable[[W], None]) -> None:
        self._due: dict[W, float] = {}
        self._on_expire = on_expire
        self._ticker: _Ticker | None = None  # while it is checked
        self._idle = 0  # checks in a row that found nothing watched

    def watch(self, wait: W, deadline: float) -> None:
        """Expire `wait` once `deadline` has passed (a second call moves its deadline)."""
        self._due[wait] = deadline
        self._idle = 0
        if self._ticker is None:
            self._ticker = _ticker_of(asyncio.get_running_loop())
            self._ticker.members.add(self)
            self._ticker.start()

    def forget(self, wait: W) -> None:
        self._due.pop(wait, None)

    def __len__(self) -> int:
        return len(self._due)

    def _check(self) -> bool:
        """Expire what is overdue; False once nothing was watched for `LINGER_TICKS` checks
        (it is then no longer checked, until it watches something again)."""
        due = self._due
        if not due:
            self._idle += 1
            if self._idle < LINGER_TICKS:
                return True
            self._ticker = None
            return False
        self._idle = 0
        now = time.monotonic()
        overdue = [wait for wait, deadline in due.items() if deadline <= now]
        for wait in overdue:
            del due[wait]
        for wait in overdue:
            self._on_expire(wait)
        return True


class _Ticker:
    """The one timer of an event loop that checks all its `Deadlines` (the body clock, the
    edge's header clock, the disconnect watches, the upstream head timers), every `TICK`
    seconds while any of them watches something: one timer for them all, not one each."""

    __slots__ = ("_loop", "_timer", "members")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self.members: set[Deadlines[Any]] = set()

    def start(self) -> None:
        if self._timer is None:
            self._timer = self._loop.call_later(TICK, self._tick)

    def _tick(self) -> None:
        self._timer = self._loop.call_later(TICK, self._tick)  # first: whatever a check raises
        for deadlines in list(self.members):
            if not deadlines._check():
                self.members.discard(deadlines)
        if not self.members:
            self._timer.cancel()
            self._timer = None


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticker] = (
    weakref.WeakKeyDictionary()
)


def _ticker_of(loop: asyncio.AbstractEventLoop) -> _Ticker:
    ticker = _tickers.get(loop)
    if ticker is None:
        ticker = _tickers[loop] = _Ticker(loop)
    return ticker
