"""The end of an answer's way out: the headers every answer gets last (rate limits, then the
response header rules), and a stream's answer, built while its upstream works on the first
token and ending the request itself once its last byte is sent.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from router.graph.rewrites import apply, request_values
from router.http.disconnect import DisconnectWatch
from router.http.responses import EventStream, attempt_headers
from router.limits.admission import CallLimits
from router.observability import access
from router.types import Call, RoutingGraph, Target
from router.upstream.relay import StreamRelay

_STREAM_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


def finish_headers(
    response: Response,
    graph: RoutingGraph,
    request_id: str,
    key_name: str | None,
    call: Call | None,
    limits: CallLimits | None,
    target: Target | None = None,
) -> Response:
    """Rate-limit headers, then the response header rules (`target`: the one answering,
    when `call.target` does not say yet)."""
    if limits is not None:
        for name, value in limits.headers().items():
            response.headers.setdefault(name, value)
    rules = graph.rewrites.response
    if rules.active:
        target = target or (call.target if call else None)
        provider, upstream = (target.runtime.name, target.model) if target else ("", "")
        model = call.route.name if call else ""
        values = request_values(key_name or "", request_id, model, provider, upstream)
        apply(rules.chain(provider, model, key_name or ""), response.headers, values)
    return response


def stream_answer(
    graph: RoutingGraph,
    call: Call,
    watch: DisconnectWatch,
    record: access.RequestRecord,
) -> Callable[[StreamRelay], Response]:
    """Builds a stream's answer for the attempt under way, once its upstream said 2xx: its
    headers say who answers, on which attempt, with what budget left, and none of that
    waits for the first token, so the router does not either, once it has arrived."""
    limits = call.limits
    done = limits.finish_soon if limits else (lambda usage: None)
    key_name, request_id = call.key.name, call.request_id

    def close() -> None:
        done(call.usage)

    def answer(relay: StreamRelay) -> Response:
        target = relay.target
        rate = limits.header_pairs() if limits else []
        headers = attempt_headers(call, target, request_id, rate)
        headers += _STREAM_HEADERS

        def closed() -> None:
            relay.close()  # even if no frame was read: the stream holds its target till here
            record.relay = relay  # what it relayed, for a ledger row without usage
            attempted = relay.call
            if attempted is not call:  # the call as the attempt made it: what it found out
                call.usage = attempted.usage
                call.answered_by, call.target = attempted.answered_by, attempted.target
            close()

        response = EventStream(relay.__aiter__(), headers, watch, record, on_close=closed)
        return finish_headers(response, graph, request_id, key_name, call, None, target)

    return answer
