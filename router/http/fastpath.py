"""The API's POST endpoints without Starlette's per-request middleware and routing stack.

Every request of the OpenAI API used to walk five ASGI layers (server errors, drain,
exceptions, router, route) before reaching its handler, and each stream ran a task group to
watch for the client leaving: together about a fifth of the router's CPU per request under
load. `RouterApp` is the Starlette app, with one dictionary look-up in front of it: a POST to
an API path goes straight to its handler, with the same drain accounting and the same 500
answer for an unhandled error; everything else (GET endpoints, admin, metrics, 404 and 405
answers, lifespan) goes through Starlette as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from router import errors
from router.http.drain import Drain
from router.observability import logs
from router.observability.access import RequestRecord
from router.upstream.sse import ErrorFrame, error_frame

log = logs.get_logger("router")
Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
_SSE_TYPE = (b"content-type", b"text/event-stream; charset=utf-8")
WATCH_AFTER = 0.05  # seconds into a request before its client is watched (DisconnectWatch)


class DisconnectWatch:
    """Cancels the request's task when the client goes away, or when the drain's time is up
    (`interrupt`): one task per request, where awaiting each step against a second watcher
    task cost two tasks and an `asyncio.wait`.

    Start it once the body has been read (the watcher then owns `receive`), stop it before
    the last byte of the answer is sent (uvicorn then reports a disconnect of its own).
    Between the two it is among the drain's requests at work.

    The watcher task starts only once the request has run for `WATCH_AFTER` seconds: an
    answer faster than that (a cached or small model's, most embeddings) never pays for a
    task; a client that left sooner is noticed then, its disconnect being queued already.
    """

    __slots__ = ("_drain", "_receive", "_task", "_timer", "_watcher", "cause")

    def __init__(self, receive: Receive, drain: Drain) -> None:
        self.cause: errors.RouterError | None = None  # what the cancellation it caused means
        self._task = asyncio.current_task()
        self._receive = receive
        self._drain = drain
        drain.at_work.add(self)
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            WATCH_AFTER, self._start
        )

    @property
    def gone(self) -> bool:
        """The client left."""
        return isinstance(self.cause, errors.ClientDisconnected)

    def _start(self) -> None:
        self._timer = None
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
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
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


class EventStream(Response):
    """An SSE answer sent frame by frame, which tells the request's `RequestRecord` how it
    ended: answered, ended by an error event after so many bytes, or left by its client.

    The client leaving is noticed by the request's `DisconnectWatch`, which cancels the
    task, so no task group runs beside the stream (Starlette's `StreamingResponse` starts
    one per stream on ASGI servers older than spec 2.4, uvicorn's among them). The drain
    interrupts a stream the same way; it ends with the drain's error event. So does a
    stream whose frames raised an exception nobody expected, the router's own failure.
    `on_close` runs however it ends, before the record is finished.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        headers: list[tuple[bytes, bytes]],
        watch: DisconnectWatch,
        record: RequestRecord,
        on_close: Callable[[], None],
    ) -> None:
        self.frames = frames
        self.status_code = 200
        self.background = None
        self.watch = watch
        self.record = record
        self.on_close = on_close
        headers.append(_SSE_TYPE)  # raw pairs: encoded once (see `router.http.responses`)
        self.raw_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = self.watch
        first: float | None = None
        sent = 0
        failure: errors.RouterError | None = None  # the error event that ended the stream
        start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        opened = False
        try:
            cut: errors.RouterError | None = None
            try:
                await send(start)
                opened = True
                async for frame in self.frames:
                    if first is None:
                        first = time.perf_counter()
                    if type(frame) is ErrorFrame:
                        failure = frame.error
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                    sent += len(frame)
            except asyncio.CancelledError as exc:
                cut = watch.absorb(exc)
                if cut is None:
                    raise
                if watch.gone:
                    return
            except Exception as exc:
                log.error("unhandled_error", request_id=self.record.request_id, exc_info=exc)
                cut = errors.InternalError("internal error in the router; the answer is cut")
            if cut is not None:  # the client is told; no [DONE] follows
                failure = cut
                if not opened:  # (cut while the headers waited for the client to read)
                    await send(start)
                frame = error_frame(cut)
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                sent += len(frame)
            watch.stop()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watch.stop()
            self.record.streamed(sent, first, failure, watch.gone)
            try:
                self.on_close()
            finally:
                self.record.finish()


class RouterApp(Starlette):
    """Starlette, plus a direct path to the POST endpoints of the API (see the module doc)."""

    def setup_fast_path(
        self,
        endpoints: Mapping[str, Endpoint],
        drain: Drain,
        on_error: ErrorHandler,
    ) -> None:
        self.fast_endpoints = dict(endpoints)
        self.drain = drain
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.fast_endpoints.get(scope["path"])
            if endpoint is not None:
                await self._fast(endpoint, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _fast(self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        """What the middleware stack did for these endpoints: drain counting, then 500 on a
        crash. A draining router's refusal is the endpoint's, which logs it like any answer."""
        scope["app"] = self
        drain = self.drain
        drain.in_flight += 1
        try:
            request = Request(scope, receive)
            try:
                response = await endpoint(request)
            except Exception as exc:
                response = await self.on_error(request, exc)
                await response(scope, receive, send)
                raise
            await response(scope, receive, send)
        finally:
            drain.in_flight -= 1
