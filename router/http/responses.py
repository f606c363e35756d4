"""The router's own answers: a JSON body and an SSE stream, with their headers as the ASGI
server takes them, (name, value) byte pairs.

Starlette's `Response(headers=dict)` lower-cases and encodes every name and value of every
answer and scans the list for content-length and content-type. The router's own headers
have fixed names, and their values (model and provider names) come from the config, so the
names are encoded once here and the values once per distinct string; only the request id and
the rate-limit figures are encoded per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from router import errors
from router.http.disconnect import DisconnectWatch
from router.observability import logs
from router.observability.access import RequestRecord
from router.upstream.sse import ErrorFrame, error_frame

log = logs.get_logger("router")
RawHeaders = list[tuple[bytes, bytes]]
_SSE_TYPE = (b"content-type", b"text/event-stream; charset=utf-8")
JSON_TYPE = (b"content-type", b"application/json")
_ENCODED: dict[str, bytes] = {}
_ENCODED_MAX = 4096  # distinct model/provider names; a reload-heavy server starts over


def encoded(value: str) -> bytes:
    """`value` as latin-1 bytes, cached: for strings from the config, not from clients."""
    out = _ENCODED.get(value)
    if out is None:
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        out = _ENCODED[value] = value.encode("latin-1")
    return out


_ATTEMPTS = [str(n).encode() for n in range(16)]


def router_headers(call: Any, request_id: str, rate: RawHeaders) -> RawHeaders:
    """`x-request-id`, `x-router-*`, then the rate-limit headers (for a
    `router.routing.dispatch.Call`)."""
    target = call.target
    answered = call.answered_by or call.route
    provider = target.runtime.name if target else ""
    budget = call.budget.header_pairs() if call.budget is not None else ()
    return _pairs(request_id, answered.name, provider, len(call.attempts), rate, budget)


def attempt_headers(call: Any, target: Any, request_id: str, rate: RawHeaders) -> RawHeaders:
    """What `router_headers` will give if the attempt now under way at `target` answers."""
    route = call.trying or call.route
    begun = len(call.attempts) + call.running  # (those under way: a hedge racing it too)
    budget = call.budget.header_pairs() if call.budget is not None else ()
    return _pairs(request_id, route.name, target.runtime.name, begun, rate, budget)


def _pairs(
    request_id: str,
    model: str,
    provider: str,
    attempts: int,
    rate: RawHeaders,
    budget: RawHeaders | tuple[()],
) -> RawHeaders:
    return [
        (b"x-request-id", request_id.encode("latin-1")),
        (b"x-router-model", encoded(model)),
        (b"x-router-provider", encoded(provider)),
        (
            b"x-router-attempts",
            _ATTEMPTS[attempts] if attempts < len(_ATTEMPTS) else str(attempts).encode(),
        ),
        *rate,
        *budget,
    ]


class JsonAnswer(Response):
    """A JSON body with headers given as byte pairs (see the module doc)."""

    media_type = "application/json"

    def __init__(self, body: bytes, headers: RawHeaders) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append(JSON_TYPE)
        self.raw_headers = headers


class EventStream(Response):
    """An SSE answer sent frame by frame, which tells the request's `RequestRecord` how it
    ended: answered, ended by an error event after so many bytes, or left by its client.

    The client leaving is noticed by the request's `DisconnectWatch`, which cancels the
    task, so no task group runs beside the stream (Starlette's `StreamingResponse` starts
    one per stream on ASGI servers older than spec 2.4, uvicorn's among them). The drain
    interrupts a stream the same way; it ends with the drain's error event. So does a
    stream whose frames raised an exception nobody expected, the router's own failure.
    However it ends, the frames' generator is closed at once (its upstream connection with
    it, not whenever the garbage collector gets to it), then `on_close` runs, then the
    record is finished.
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
                await _close(self.frames)
                self.on_close()
            finally:
                self.record.finish()


async def _close(frames: AsyncIterator[bytes]) -> None:
    """Close an async generator of frames (a no-op when it ran to its end)."""
    aclose = getattr(frames, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:  # its own cleanup failed: the answer is over either way
            log.warning("stream_close_failed", error=repr(exc))
