"""Graceful shutdown for a sidecar: on SIGTERM, stop taking work, let work in flight finish.

SIGTERM turns readiness false and makes the router answer new requests with 503 (health
probes still answer), then waits until no request or stream is in flight, or until
`server.drain_seconds` have passed, and only then hands the signal to uvicorn, which closes
the listener and exits. A second SIGTERM skips the wait.

What is still at work when the time is up is interrupted, not cut: a stream ends with an
OpenAI error event (`code: shutting_down`) instead of `[DONE]`, and a request still waiting
for its upstream is answered 503 `shutting_down`, so that no client mistakes a partial
answer for a whole one.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from router import errors
from router.http.routing import route_path
from router.http.state import RouterState
from router.observability import logs

log = logs.get_logger("router.http.drain")
REFUSED = "the router is shutting down; retry on another instance"
INTERRUPTED = "the router shut down before this request finished; retry on another instance"


def shutting_down(message: str = REFUSED) -> errors.ServiceUnavailable:
    """The error of a request the draining router refuses or interrupts (a new one each time:
    it is raised)."""
    return errors.ServiceUnavailable(
        message, code="shutting_down", headers={"connection": "close", "retry-after": "1"}
    )


_SHUTTING_DOWN = shutting_down()
CUT_GRACE = 1.0  # seconds the interrupted requests get to send their last bytes


class Interruptible(Protocol):
    def interrupt(self, cause: errors.RouterError) -> None: ...


class Drain:
    """Counts requests in flight, knows whether the router is draining, and holds the
    requests at work that it interrupts when `server.drain_seconds` are up (each API
    request's `router.http.disconnect.DisconnectWatch` adds itself while it waits or streams)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.draining = False
        self.at_work: set[Interruptible] = set()


async def refuse(send: Send) -> None:
    """The 503 a draining router answers with, closing the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"connection", b"close"),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _SHUTTING_DOWN.to_json()})


class DrainMiddleware:
    """Plain ASGI: counts HTTP requests until their last byte, refuses new ones while draining
    but for the health probes and the paths in `own`, the API's endpoints, which refuse
    for themselves so that the refusal has its access-log line like any answer."""

    def __init__(self, app: ASGIApp, drain: Drain, own: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.drain = drain
        self.own = own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        drain = self.drain
        if drain.draining and not (
            scope["path"].startswith("/health") or route_path(scope) in self.own
        ):
            await refuse(send)
            return
        drain.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            drain.in_flight -= 1


async def drain(state: RouterState, counter: Drain, then: Callable[[], None]) -> None:
    """Turn readiness off, wait for the requests in flight (bounded), then call `then`."""
    counter.draining = True
    state.ready = False
    limit = state.graph.config.server.drain_seconds
    deadline = time.monotonic() + limit
    log.info("draining", in_flight=counter.in_flight, drain_seconds=limit)
    await _wait(counter, deadline)
    interrupted = len(counter.at_work)
    if interrupted:
        for request in list(counter.at_work):
            request.interrupt(shutting_down(INTERRUPTED))
        await _wait(counter, time.monotonic() + CUT_GRACE)
    log.info("drained", left_in_flight=counter.in_flight, interrupted=interrupted)
    then()


async def _wait(counter: Drain, deadline: float) -> None:
    while counter.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def install_sigterm(state: RouterState, counter: Drain) -> None:
    """Put the drain in front of the server's own SIGTERM handling (main thread only)."""
    previous: Any = signal.getsignal(signal.SIGTERM)
    loop = asyncio.get_running_loop()

    def hand_over() -> None:
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)
        if callable(previous):
            previous(signal.SIGTERM, None)  # uvicorn: should_exit
        else:
            signal.raise_signal(signal.SIGTERM)

    def on_sigterm() -> None:
        if counter.draining:
            hand_over()
            return
        task = loop.create_task(drain(state, counter, hand_over))
        task.add_done_callback(lambda t: t.exception())

    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
