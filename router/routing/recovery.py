"""Mid-stream recovery: finish a broken streamed answer from another target.

When a stream fails after the client got its first bytes, the requested model's
`stream_recovery` says what the router may do:

- `continue`: ask another target that can continue an assistant message (its
  `continuation`, else its provider's, else the plugin's default) for the rest of the
  answer, sending the text so far as a trailing assistant message (a prefill);
- `regenerate`: ask another target for the whole answer again (the original request),
  hold the regenerated text back until it has reproduced exactly what the client already
  received (`router.upstream.verify`), and forward only the rest;
- `continue_or_regenerate`: continuation first, then regeneration.

Either way the rest goes out under the same chunk id and `model`, so the client reads one
whole answer (translated to the client's API like any other, see `StreamRelay.frames`).
Every such attempt is admitted like any other (`router.routing.attempts`: breaker, provider
quota, span, access log). Only transient failures qualify (a content-policy stop is never
routed around), and when nothing rescues the answer the client gets the *original* failure
as the error event: never a fallback's refusal, never text that departs from what was sent.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from router import errors
from router.observability import tracing
from router.routing.attempts import Skipped, attempt_at
from router.routing.dispatch import fallback_chain
from router.routing.failure import Step
from router.types import Call, Operation, Route, RoutingGraph, Target
from router.upstream import plugin_calls
from router.upstream.relay import Rescue, StreamRelay, open_stream
from router.upstream.usage import estimate_tokens
from router.upstream.verify import Departed, Verifier

_RECOVERABLE = (Step.RETRY, Step.NEXT)
_CONTINUES = ("continue", "continue_or_regenerate")
_REGENERATES = ("regenerate", "continue_or_regenerate")


def enable(graph: RoutingGraph, call: Call, relay: StreamRelay) -> None:
    """Arm `relay` for recovery if its route allows it; called once the stream is primed."""
    route = call.answered_by or call.route
    if relay.text is None or (call.body.get("n") or 1) != 1:
        return  # the requested model does not recover streams, or this answer cannot be

    async def recover(broken: StreamRelay, failure: errors.RouterError) -> AsyncIterator[bytes]:
        async for frame in _rescue(graph, call, route, broken, failure):
            yield frame

    relay.recover = recover


def _candidates(
    graph: RoutingGraph, call: Call, route: Route, failed: Target, continuing: bool
) -> list[tuple[Route, Target]]:
    """Other targets of the answering route, then its fallbacks' targets, that serve chat
    (and, `continuing`, can continue an assistant message); only the fallbacks the call's
    key may use."""
    out = []
    for each in fallback_chain(graph, route, call.key):
        for target in each.strategy(each.targets):
            if target is failed or (continuing and not target.continues):
                continue
            if Operation.CHAT in target.operations:
                out.append((each, target))
    return out


async def _rescue(
    graph: RoutingGraph,
    call: Call,
    route: Route,
    broken: StreamRelay,
    failure: errors.RouterError,
) -> AsyncIterator[bytes]:
    step = route.steps.get(failure.kind, Step.NEXT)
    mode = call.route.stream_recovery
    if broken.text is None or not broken.chunk_id or step not in _RECOVERABLE:
        yield broken.failure_frame(failure)
        return
    partial = "".join(broken.text)
    opened = None
    if mode in _CONTINUES:
        shift = estimate_tokens(len(partial))
        rescue = Rescue(broken.model, broken.completion_chars, shift=shift)

        def prefilled(target: Target) -> dict[str, Any]:
            return plugin_calls.continuation_body(target.provider, dict(call.body), partial)

        candidates = _candidates(graph, call, route, broken.target, continuing=True)
        opened = await _open(call, broken, candidates, prefilled, rescue, "continue")
    if opened is None and mode in _REGENERATES:
        verifier = Verifier(partial, broken.provider.name)
        rescue = Rescue(broken.model, broken.completion_chars, verifier=verifier)
        candidates = _candidates(graph, call, route, broken.target, continuing=False)
        opened = await _open(
            call, broken, candidates, lambda _: dict(call.body), rescue, "regenerate"
        )
    if opened is None:
        yield broken.failure_frame(failure)
        return
    relay, attempt_call = opened
    broken.successor = relay  # closed with the answer, however it ends
    if relay.rescue is not None and relay.rescue.verifier is not None:
        relay.recover = _original(broken, failure)
    try:
        async for frame in relay:
            yield frame
    finally:
        relay.close()
        call.usage = attempt_call.usage  # what the client got, counted once (see `Rescue`)


async def _open(
    call: Call,
    broken: StreamRelay,
    candidates: list[tuple[Route, Target]],
    body_for: Callable[[Target], dict[str, Any]],
    rescue: Rescue,
    kind: str,
) -> tuple[StreamRelay, Call] | None:
    """The first candidate's stream that primes, admitted like any attempt; None if none."""
    for fallback_route, target in candidates:
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            break
        attempt_call = dataclasses.replace(call, usage=None)

        async def opener(
            target: Target, left: float, attempt_call: Call = attempt_call
        ) -> StreamRelay:
            attempt_call.body = body_for(target)
            return await open_stream(
                attempt_call,
                target,
                left,
                continues=broken.chunk_id,
                frames=broken.frames,
                rescue=rescue,
            )

        traced = tracing.traced_attempt(attempt_call, opener)
        try:
            relay = await attempt_at(
                call, fallback_route, target, remaining, traced, f"{kind}_", f"{kind}d"
            )
        except Skipped:
            continue
        except Departed:
            return None  # the regenerated answer is another: none is spliced in
        except errors.UpstreamError:
            continue
        call.answered_by, call.target = fallback_route, target
        return relay, attempt_call
    return None


def _original(
    broken: StreamRelay, failure: errors.RouterError
) -> Callable[[StreamRelay, errors.RouterError], AsyncIterator[bytes]]:
    """How a regenerated stream ends when it fails: with the original failure if its text
    departed from what was sent (the client's answer stays as it was), else with its own."""

    async def recover(relay: StreamRelay, error: errors.RouterError) -> AsyncIterator[bytes]:
        yield (
            broken.failure_frame(failure)
            if isinstance(error, Departed)
            else relay.failure_frame(error)
        )

    return recover
