"""One timer per stream for the idle gap between upstream reads and the stream's total budget.

`asyncio.timeout` around every read of a stream arms and cancels a timer per chunk: a
twentieth of a streamed answer's CPU in the router. A `StallTimer` arms one timer when the
stream starts reading and, when it fires, looks at how long the read in progress has waited:
if less than the idle gap (chunks kept coming), it re-arms for the rest of that gap; if the
gap or the total budget is used up, it cancels the reading task, and `read` turns that
cancellation into `StallTimeout`. Each read costs one clock look-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator


class StallTimeout(Exception):
    """The read waited longer than the idle gap (`total` False) or the stream's total budget
    ran out (`total` True)."""

    def __init__(self, total: bool) -> None:
        super().__init__("total" if total else "idle")
        self.total = total


class StallTimer:
    """Reads `chunks` with an idle gap of `idle` seconds each and a `deadline` for all of
    them (`time.monotonic()` based). Call `close` when the stream ends, however it ends."""

    __slots__ = (
        "_chunks",
        "_deadline",
        "_fired",
        "_idle",
        "_loop",
        "_read_since",
        "_task",
        "_timer",
    )

    def __init__(self, chunks: AsyncIterator[bytes], idle: float, deadline: float) -> None:
        self._chunks = chunks
        self._idle = idle
        self._deadline = deadline  # loop time once `_start` has run
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_since: float | None = None  # loop time the read in progress began
        self._fired: bool | None = None  # set when the timer cancelled a read: total or not

    def _start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        now = loop.time()
        self._deadline = now + (self._deadline - time.monotonic())
        self._timer = loop.call_at(min(now + self._idle, self._deadline), self._check)

    def _check(self) -> None:
        assert self._loop is not None and self._task is not None
        now = self._loop.time()
        since = self._read_since
        if since is not None and (now >= self._deadline or now - since >= self._idle):
            self._timer = None
            self._fired = now >= self._deadline
            self._task.cancel()
            return
        # Chunks kept coming: wait until the current (or next) read has waited `idle`.
        start = since if since is not None else now
        self._timer = self._loop.call_at(min(start + self._idle, self._deadline), self._check)

    async def read(self) -> bytes | None:
        """The next chunk, None at the end of the body; raises `StallTimeout`."""
        if self._loop is None:
            self._start()
        assert self._loop is not None and self._task is not None
        now = self._loop.time()
        if now >= self._deadline:
            raise StallTimeout(total=True)
        self._read_since = now
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None
        except asyncio.CancelledError:
            fired = self._fired
            if fired is not None and self._task.uncancel() == 0:
                self._fired = None
                raise StallTimeout(total=fired) from None
            raise  # someone else's cancellation (the client left, the server stops)
        finally:
            self._read_since = None

    def close(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
