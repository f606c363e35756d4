"""A process's Redis script calls sent together: one round trip for all that are waiting.

Every admission is a script call and so is every finish: two round trips a request, each a
read and a write in Redis's one thread and in the router's. Here a call made while none is on
its way goes at once, alone, as before; the calls made while one is on its way wait for it,
then go together in one pipeline (EVALSHA after EVALSHA, no MULTI: each script is still
atomic on its own and sees what the ones before it did). Under load a request's admission
and the finishes of the requests before it share one round trip, so round trips per request
fall well below one while each call's answer is its own.

A call whose caller was cancelled before its batch left is not sent (the request it was for
is gone); once sent, it runs, as a call cancelled mid-flight always did.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis import exceptions as rx

_Queued = tuple[Any, list[str], list[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """Sends `call`s through `client`, batching those made while one is under way."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._queue: list[_Queued] = []
        self._sending = False
        self._drainer: asyncio.Task[None] | None = None  # (held: the loop keeps weak refs)
        self.round_trips = 0  # calls and pipelines sent (what Redis's reads count)

    async def call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """`script(keys=keys, args=args)`: its answer, or the error it raised."""
        if self._sending:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((script, keys, args, future))
            return await future
        self._sending = True
        try:
            self.round_trips += 1
            return await script(keys=keys, args=args)  # (loads the script if Redis lacks it)
        finally:
            if self._queue:
                self._drainer = asyncio.get_running_loop().create_task(self._drain())
            else:
                self._sending = False

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = [queued for queued in self._queue if not queued[3].cancelled()]
                self._queue = []
                if batch:
                    await self._send(batch)
        finally:
            self._sending = False
            self._drainer = None
            for *_, future in self._queue:  # (only if this task itself was cancelled)
                if not future.done():
                    future.set_exception(rx.ConnectionError("the router is shutting down"))
            self._queue = []

    async def _send(self, batch: list[_Queued]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        self.round_trips += 1
        try:
            results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection: every call of the batch failed with it
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (script, keys, args, future), result in zip(batch, results, strict=True):
            if isinstance(result, rx.NoScriptError):  # Redis restarted: the Script loads it
                try:
                    self.round_trips += 1
                    result = await script(keys=keys, args=args)
                except Exception as exc:
                    result = exc
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
