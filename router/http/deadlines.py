"""Time limits on many waits, checked by one coarse timer instead of a timer per wait.

Every request has a limit on how long its headers and its body may take. A uvloop timer
armed and cancelled costs about 5 us (a libuv handle each time), a cost every request would
pay although almost none ever reaches its limit. Here watching a wait costs a dict insert
and forgetting it a delete; one timer runs every `TICK` seconds, expiring whatever is
overdue, while anything is watched and for `LINGER_TICKS` more (a busy server's waits come
and go between two ticks: the timer would otherwise stop and start again at each). A limit
is thus enforced up to `TICK` late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

TICK = 0.1  # seconds between checks while anything is watched
LINGER_TICKS = 10  # checks finding nothing watched before the timer stops
W = TypeVar("W", bound=Hashable)


class Deadlines(Generic[W]):
    """The waits of one event loop and their deadlines (`time.monotonic()` seconds);
    `on_expire(wait)` is called on the loop, once, when a wait's deadline has passed."""

    __slots__ = ("_due", "_idle", "_on_expire", "_timer")

    def __init__(self, on_expire: Callable[[W], None]) -> None:
        self._due: dict[W, float] = {}
        self._on_expire = on_expire
        self._timer: asyncio.TimerHandle | None = None
        self._idle = 0  # checks in a row that found nothing watched

    def watch(self, wait: W, deadline: float) -> None:
        """Expire `wait` once `deadline` has passed (a second call moves its deadline)."""
        self._due[wait] = deadline
        self._idle = 0
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(TICK, self._check, loop)

    def forget(self, wait: W) -> None:
        self._due.pop(wait, None)

    def __len__(self) -> int:
        return len(self._due)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        due = self._due
        if not due:
            self._idle += 1
            self._timer = (
                loop.call_later(TICK, self._check, loop) if self._idle < LINGER_TICKS else None
            )
            return
        self._idle = 0
        now = time.monotonic()
        overdue = [wait for wait, deadline in due.items() if deadline <= now]
        for wait in overdue:
            del due[wait]
        self._timer = loop.call_later(TICK, self._check, loop)
        for wait in overdue:
            self._on_expire(wait)
