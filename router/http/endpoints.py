"""The API's endpoints: one handler per operation, from the request's headers and body to
the answer, through authentication, admission, dispatch and the upstream.

Handlers read the active graph once per request and do no config work: routes, keys and
model lists were resolved when the graph was compiled. Every request is accounted once in
its `RequestRecord`, whatever happens to it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Scope

from router import errors
from router.graph.rewrites import apply, prepare_request, request_values
from router.http.auth import authenticate
from router.http.body import parse_json, read_body
from router.http.disconnect import DisconnectWatch
from router.http.drain import Drain, shutting_down
from router.http.responses import (
    EventStream,
    JsonAnswer,
    RawHeaders,
    attempt_headers,
    router_headers,
)
from router.http.state import RouterState
from router.http.validate import check_body
from router.limits.admission import CallLimits, admit
from router.observability import access, logs, tracing
from router.routing import recovery
from router.routing.dispatch import execute
from router.types import Call, Operation, RoutingGraph, Target
from router.upstream.relay import StreamRelay, open_stream, send_json
from router.upstream.transport import Sendable

log = logs.get_logger("router")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
JSON = "application/json"
_STREAM_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
Endpoint = Callable[[Request], Awaitable[Response]]


def request_id_of(headers: Mapping[str, str]) -> str:
    """The client's `x-request-id` if it is a sane one, else a new random id."""
    given = headers.get("x-request-id")
    if given and _REQUEST_ID.match(given):
        return given
    return os.urandom(12).hex()


def _header_dict(scope: Scope) -> dict[str, str]:
    """The request's headers as a plain dict, decoded once: the API handlers look up five or
    so, and a Starlette `Headers` look-up scans the whole list (raising for each miss).
    ASGI servers give lower-case names; of a repeated header the last one counts."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def error_response(error: errors.RouterError, request_id: str, state: RouterState) -> Response:
    headers = {"x-request-id": request_id, **error.headers}
    body = error.to_json()
    if isinstance(error, errors.UpstreamError):
        body = state.redact(body)
    if getattr(error, "retry_after", None) and "retry-after" not in headers:
        headers["retry-after"] = str(max(1, round(error.retry_after)))  # type: ignore[attr-defined]
    return Response(body, status_code=error.status, headers=headers, media_type=JSON)


def _router_headers(call: Call, request_id: str, limits: CallLimits | None) -> RawHeaders:
    """The router's own answer headers, then the rate-limit ones, as raw byte pairs."""
    return router_headers(call, request_id, limits.header_pairs() if limits else [])


def _preparer(
    graph: RoutingGraph, call: Call, client: Mapping[str, str]
) -> Callable[[Sendable, Target], None]:
    """Sets an upstream request's headers. It holds the call's names, not the call: a call
    that held a closure holding the call would be a reference cycle per request, left for
    the garbage collector (whose pauses show in tail latency) instead of freed at once."""
    key, model, request_id = call.key.name, call.route.name, call.request_id

    def prepare(request: Sendable, target: Target) -> None:
        prepare_request(
            graph,
            request,
            target.runtime.name,
            target.model,
            key,
            model,
            request_id,
            client,
        )

    return prepare


def _finish_headers(
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


def api_endpoint(op: Operation, state: RouterState, drain: Drain) -> Endpoint:
    """The handler of one operation's POST path."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        graph = state.graph
        scope = request.scope
        headers = _header_dict(scope)
        request_id = request_id_of(headers)
        span = tracing.start_request(headers, scope["path"])
        # Told the outcome on every path below; finished once, after the last byte.
        record = access.RequestRecord(scope["method"], scope["path"], request_id, started, span)
        record.ledger = state.ledger
        call: Call | None = None
        limits: CallLimits | None = None
        watch: DisconnectWatch | None = None
        relay: StreamRelay | None = None
        streaming = False
        try:
            if drain.draining:
                raise shutting_down()
            key = authenticate(graph, headers)
            record.key_name = key.name
            body_limits = graph.body_limits
            raw = await read_body(request.receive, headers, body_limits, state.body_clock)
            body = parse_json(raw, body_limits.max_depth)
            model, stream = check_body(op, body)
            route = graph.routes.get(model)
            if route is None or model not in key.allowed:
                if route is None:
                    names = ", ".join(sorted(key.allowed)) or "(none)"
                    raise errors.NotFound(
                        f"model '{model}' does not exist; available models: {names}",
                        param="model",
                    )
                raise errors.PermissionDenied(
                    f"this key may not use model '{model}'", param="model"
                )
            if op not in route.operations:
                raise errors.InvalidRequest(
                    f"model '{model}' does not support {op.value}", param="model"
                )
            call = Call(
                op, body, stream, key, request_id, route, time.monotonic() + route.retries.deadline
            )
            record.call = call
            call.prepare = _preparer(graph, call, headers)
            call.limits = limits = await admit(state.limiter, graph.limits, call)
            # Cancels the work if the client leaves, or when the drain's time is up.
            watch = DisconnectWatch(request.receive, drain)
            if stream:
                # The answer is built while the upstream works on its first token (see
                # `_stream_answer`); `ready` holds the one for the attempt under way.
                ready: list[tuple[StreamRelay, Response]] = []
                answer = _stream_answer(graph, call, watch, record)

                def prepare(relay: StreamRelay) -> None:
                    ready[:] = [(relay, answer(relay))]

                attempt = tracing.traced_attempt(
                    call, lambda t, left: open_stream(call, t, left, on_open=prepare)
                )
                relay = await watch.run(execute(graph, call, attempt))
                recovery.enable(graph, call, relay)
                response = ready[0][1] if ready and ready[0][0] is relay else answer(relay)
                streaming = True  # the stream's own end records it, stops its watch, etc.
                return response
            json_attempt = tracing.traced_attempt(call, lambda t, left: send_json(call, t, left))
            answer = await watch.run(execute(graph, call, json_attempt))
            watch.stop()
            ttft = time.perf_counter()
            response = JsonAnswer(answer.content, _router_headers(call, request_id, limits))
            response = _finish_headers(response, graph, request_id, key.name, call, None)
            record.answered(ttft)
            return response
        except (errors.RouterError, ClientDisconnect) as exc:
            error = _client_left() if isinstance(exc, ClientDisconnect) else exc
            record.failed(error)
            response = error_response(error, request_id, state)
            return _finish_headers(response, graph, request_id, record.key_name, call, limits)
        except Exception as exc:  # a bug: the client gets a 500, the log its traceback
            log.error("unhandled_error", path=scope["path"], request_id=request_id, exc_info=exc)
            error = errors.InternalError("internal error in the router")
            record.failed(error)
            return error_response(error, request_id, state)
        finally:
            if not streaming:  # a stream's own end stops its watch and releases its limits
                if relay is not None:  # primed, but its answer is not going out
                    relay.close()
                if watch is not None:
                    watch.stop()
                try:
                    record.finish()
                finally:
                    if limits is not None and not limits.finish_now(call.usage if call else None):
                        await limits.finish(call.usage if call else None)

    endpoint.__name__ = f"{op.value}_endpoint"
    return endpoint


def _client_left() -> errors.ClientDisconnected:
    """Starlette's word for a client that left while sending its body, as the router's."""
    return errors.ClientDisconnected("the client closed the connection before its body was sent")


def _stream_answer(
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
            close()

        response = EventStream(relay.__aiter__(), headers, watch, record, on_close=closed)
        return _finish_headers(response, graph, request_id, key_name, call, None, target)

    return answer
