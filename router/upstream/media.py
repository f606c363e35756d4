"""One attempt at an operation whose answer is bytes (speech audio, a transcript as text or
subtitles): sent, then passed on as it arrives.

The attempt is primed like a stream: the upstream must answer 2xx and send its first bytes
within the first-token timeout, so any failure up to then can still be retried or fail over
(a multipart upload is sent again from its spool). The bytes then go to the client as they
arrive, with the upstream's content type, never gathered whole; the idle and total timeouts
apply between and across them. A failure after the first byte cannot be retried: the
client's answer is cut short (see `router.http.binary`), never made to look complete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from router import errors
from router.observability import tracing
from router.routing.breaker import record
from router.routing.strategies import record_latency
from router.types import Call, Target
from router.upstream import plugin_calls
from router.upstream.provider import UpstreamResponse

# The request-building steps every attempt shares with JSON answers and streams.
from router.upstream.relay import _note_limits, _request, _transport
from router.upstream.transport import UpstreamStream

DEFAULT_TYPE = "application/octet-stream"


async def open_binary(call: Call, target: Target, remaining: float) -> BinaryRelay:
    """An attempt whose answer is bytes, primed: its first bytes are in hand (or its body was
    empty) when this returns."""
    runtime = target.runtime
    provider = runtime.provider
    request = _request(runtime, call, dict(call.body), target.model, False)
    tracing.inject(request.headers)
    if call.prepare is not None:
        call.prepare(request, target)
    started = time.monotonic()
    timeouts = target.timeouts
    budget = min(timeouts.total, remaining)
    first_token = min(timeouts.first_token, budget)
    upstream: UpstreamStream | None = None
    try:
        async with asyncio.timeout(first_token):
            upstream = await _transport(runtime).open(request, timeouts.connect)
            if not 200 <= upstream.status < 300:
                content = await upstream.read(runtime.max_answer_bytes, runtime.name)
                raise plugin_calls.upstream_error(
                    provider, UpstreamResponse(upstream.status, upstream.headers, content)
                )
            _note_limits(target, provider, upstream.headers)
            first = await anext(upstream.chunks, b"")
    except TimeoutError:
        if upstream is not None:
            upstream.close()
        raise errors.UpstreamTimeout(
            f"upstream '{provider.name}' sent no answer within {first_token:g}s",
            provider=provider.name,
        ) from None
    except BaseException as exc:
        if upstream is not None:
            upstream.close()
        if isinstance(exc, errors.RouterError):
            runtime.redactor.scrub(exc)
        raise
    record_latency(target, time.monotonic() - started)
    relay = BinaryRelay(call, target, upstream, first, started + budget)
    relay.hold()
    return relay


class BinaryRelay:
    """Passes one upstream answer's bytes on as they arrive, with its content type."""

    def __init__(
        self, call: Call, target: Target, upstream: UpstreamStream, first: bytes, deadline: float
    ) -> None:
        self.call = call
        self.target = target
        self.upstream = upstream
        self.first = first
        self.deadline = deadline
        self.content_type = upstream.headers.get("content-type") or DEFAULT_TYPE
        self.holding = False

    def hold(self) -> None:
        """Count the answer in its target's `in_flight` until `close` (as streams are)."""
        self.target.in_flight += 1
        self.holding = True

    def close(self) -> None:
        """Let go of the upstream connection and the target's count; safe to call again."""
        if self.holding:
            self.holding = False
            self.target.in_flight -= 1
        self.upstream.close()

    async def _next(self) -> bytes | None:
        name = self.target.runtime.name
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise errors.UpstreamTimeout(
                f"upstream '{name}' answer exceeded its total time budget", provider=name
            )
        idle = min(self.target.timeouts.idle, left)
        try:
            return await self.upstream.next_within(idle)
        except TimeoutError:
            raise errors.UpstreamTimeout(
                f"upstream '{name}' answer stalled for {idle:g}s", provider=name
            ) from None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The answer's bytes; raises the `UpstreamError` that cut it short, if one did."""
        try:
            if self.first:
                yield self.first
            while (chunk := await self._next()) is not None:
                yield chunk
        except errors.RouterError as exc:
            self.target.runtime.redactor.scrub(exc)
            self.call.attempts[-1].outcome = f"ok_then_{exc.code or exc.kind.value}"
            record(self.target, exc.kind)
            raise
        finally:
            self.close()
