"""Noticing that a client left, or that the drain's time is up, and stopping its work."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable
from typing import Any

from starlette.types import Receive

from router import errors
from router.http.deadlines import Deadlines
from router.http.drain import Drain

WATCH_AFTER = 0.05  # seconds into a request before its client is watched (DisconnectWatch)


class DisconnectWatch:
    """Cancels the request's task when the client goes away, or when the drain's time is up
    (`interrupt`): one task per request, where awaiting each step against a second watcher
    task cost two tasks and an `asyncio.wait`.

    Start it once the body has been read (the watcher then owns `receive`), stop it before
    the last byte of the answer is sent (uvicorn then reports a disconnect of its own).
    Between the two it is among the drain's requests at work.

    The watcher task starts only once the request has run for `WATCH_AFTER` seconds (up to
    a `TICK` of `router.http.deadlines` later: the loop's one coarse timer starts it, not a
    timer of its own): an answer faster than that (a cached or small model's, most
    embeddings) never pays for a task; a client that left sooner is noticed then, its
    disconnect being queued already.
    """

    __slots__ = ("_drain", "_receive", "_starts", "_task", "_watcher", "cause")

    def __init__(self, receive: Receive, drain: Drain) -> None:
        self.cause: errors.RouterError | None = None  # what the cancellation it caused means
        self._task = asyncio.current_task()
        self._receive = receive
        self._drain = drain
        drain.at_work.add(self)
        self._watcher: asyncio.Task[None] | None = None
        self._starts: Deadlines[DisconnectWatch] | None = _starts_of(asyncio.get_running_loop())
        self._starts.watch(self, time.monotonic() + WATCH_AFTER)

    @property
    def gone(self) -> bool:
        """The client left."""
        return isinstance(self.cause, errors.ClientDisconnected)

    def _start(self) -> None:
        self._starts = None
        self._watcher = asyncio.get_running_loop().create_task(self._watch(self._receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._watcher = None
        self._cancel(errors.ClientDisconnected("the client closed the connection"))

    def interrupt(self, cause: errors.RouterError) -> None:
        """Stop the request's work now: the drain's time is up (`cause` says so)."""
        self._cancel(cause)

    def _cancel(self, cause: errors.RouterError) -> None:
        if self.cause is None and self._task is not None:  # (one cancellation per request)
            self.cause = cause
            self._task.cancel()

    def stop(self) -> None:
        self._drain.at_work.discard(self)
        starts, self._starts = self._starts, None
        if starts is not None:
            starts.forget(self)
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()

    def absorb(self, exc: BaseException) -> errors.RouterError | None:
        """What `exc` means if it is the cancellation this watch caused (it is then cleared):
        ClientDisconnected, or the drain's `shutting_down` error. None for any other."""
        if (
            self.cause is not None
            and isinstance(exc, asyncio.CancelledError)
            and self._task is not None
        ):
            self._task.uncancel()
            self._task = None  # absorbed once
            return self.cause
        return None

    async def run(self, work: Awaitable[Any]) -> Any:
        """Await `work`; ClientDisconnected if the client left meanwhile, ServiceUnavailable
        (`shutting_down`) if the drain interrupted it."""
        try:
            return await work
        except asyncio.CancelledError as exc:
            cause = self.absorb(exc)
            if cause is not None:
                raise cause from None
            raise


_starts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines[DisconnectWatch]] = (
    weakref.WeakKeyDictionary()
)


def _starts_of(loop: asyncio.AbstractEventLoop) -> Deadlines[DisconnectWatch]:
    """The watches of `loop` waiting for their `WATCH_AFTER` to pass."""
    starts = _starts.get(loop)
    if starts is None:
        starts = _starts[loop] = Deadlines(DisconnectWatch._start)
    return starts
