"""Mid-stream recovery: finish a broken streamed answer from another target.

When a stream fails after the client got its first bytes and the route says
`stream_recovery: continue`, the router asks another target, whose provider can continue a
trailing assistant message, for the rest of the answer, and relays it under the same chunk
id, so the client reads one whole answer (translated to the client's API like any other, see
`StreamRelay.frames`). Only transient failures qualify (a content-policy
stop is never routed around), and when no target can continue, the client gets the
*original* failure as the error event, never a fallback's refusal.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

from router import errors
from router.routing.breaker import record
from router.routing.dispatch import fallback_chain
from router.routing.failure import Step
from router.types import Attempt, Call, Operation, Route, RoutingGraph, Target
from router.upstream import plugin_calls
from router.upstream.relay import StreamRelay, open_stream

_RECOVERABLE = (Step.RETRY, Step.NEXT)


def enable(graph: RoutingGraph, call: Call, relay: StreamRelay) -> None:
    """Arm `relay` for recovery if its route allows it; called once the stream is primed."""
    route = call.answered_by or call.route
    if relay.text is None or (call.body.get("n") or 1) != 1:
        return  # the requested model does not continue, or this answer cannot be

    async def recover(broken: StreamRelay, failure: errors.RouterError) -> AsyncIterator[bytes]:
        async for frame in _continue(graph, call, route, broken, failure):
            yield frame

    relay.recover = recover


def _candidates(
    graph: RoutingGraph, call: Call, route: Route, failed: Target
) -> list[tuple[Route, Target]]:
    """Other targets of the answering route, then its fallbacks' targets, that can continue
    (only the fallbacks the call's key may use)."""
    out = []
    for each in fallback_chain(graph, route, call.key):
        for target in each.strategy(each.targets):
            provider = target.provider
            if target is failed or not provider.supports_continuation:
                continue
            if Operation.CHAT in provider.operations:
                out.append((each, target))
    return out


async def _continue(
    graph: RoutingGraph,
    call: Call,
    route: Route,
    broken: StreamRelay,
    failure: errors.RouterError,
) -> AsyncIterator[bytes]:
    step = route.steps.get(failure.kind, Step.NEXT)
    if broken.text is None or not broken.chunk_id or step not in _RECOVERABLE:
        yield broken.failure_frame(failure)
        return
    partial = "".join(broken.text)
    for fallback_route, target in _candidates(graph, call, route, broken.target):
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            break
        breaker = target.breaker
        if breaker is not None and not breaker.allow(time.monotonic()):
            continue
        started = time.monotonic()
        verdict = False  # as in `dispatch.execute`: the probe slot is freed on every way out
        target.in_flight += 1  # the attempt; once primed, the stream counts itself
        try:
            body = plugin_calls.continuation_body(target.provider, dict(call.body), partial)
            attempt_call = dataclasses.replace(call, body=body, usage=None)
            relay = await open_stream(
                attempt_call, target, remaining, continues=broken.chunk_id, frames=broken.frames
            )
        except errors.UpstreamError as exc:
            outcome = f"continue_{exc.code or exc.kind.value}"
            call.attempts.append(Attempt(target.label, outcome, time.monotonic() - started))
            record(target, exc.kind)
            verdict = True
            continue
        else:
            record(target, None)
            verdict = True
        finally:
            target.in_flight -= 1
            if not verdict and breaker is not None:
                breaker.release()
        call.attempts.append(Attempt(target.label, "continued", time.monotonic() - started))
        call.answered_by, call.target = fallback_route, target
        broken.successor = relay  # closed with the answer, however it ends
        try:
            async for frame in relay:
                yield frame
        finally:
            relay.close()
            call.usage = attempt_call.usage  # the answering attempt's usage, and only its
        return
    yield broken.failure_frame(failure)
