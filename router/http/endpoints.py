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
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from router import errors
from router.graph.rewrites import apply, prepare_request, request_values
from router.http.auth import authenticate
from router.http.binary import BinaryAnswer
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
from router.http.uploads import Form, read_form
from router.http.validate import check_body, check_form
from router.limits.admission import CallLimits, admit
from router.observability import access, logs, tracing
from router.operations import names as names_of
from router.routing import recovery
from router.routing.dispatch import execute
from router.types import Call, ClientKey, Operation, Route, RoutingGraph, Target
from router.upstream.media import BinaryRelay, open_binary
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


async def _read_body(request: Request, headers: Mapping[str, str], limit: int) -> bytes:
    """The request's body, refused past `limit` bytes before more is read."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise errors.InvalidRequest("invalid Content-Length header")
        if int(declared) > limit:
            raise errors.PayloadTooLarge(f"request body is larger than {limit} bytes")
        return await _whole_body(request.receive)
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise errors.PayloadTooLarge(f"request body is larger than {limit} bytes")
        parts.append(part)
    return b"".join(parts)


async def _whole_body(receive: Receive) -> bytes:
    """`Request.body()` without its async generator: usually one message holds it all."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                chunks.append(body)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequest(
            f"the request body is not valid JSON: {exc}", param="body"
        ) from None


def _route(graph: RoutingGraph, key: ClientKey, op: Operation, model: str) -> Route:
    """The route of `model` for `key`: 404 for a model it does not know, 403 for one it may
    not use, 400 for one whose targets do not serve `op`."""
    route = graph.routes.get(model)
    if route is None or model not in key.allowed:
        if route is None:
            names = ", ".join(sorted(key.allowed)) or "(none)"
            raise errors.NotFound(
                f"model '{model}' does not exist; available models: {names}", param="model"
            )
        raise errors.PermissionDenied(f"this key may not use model '{model}'", param="model")
    if op not in route.operations:
        serves = ", ".join(names_of(route.operations)) or "nothing"
        raise errors.InvalidRequest(
            f"model '{model}' does not serve {op.name} (POST /v1{op.path}); it serves: {serves}",
            param="model",
            code="unsupported_operation",
        )
    return route


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
        form: Form | None = None  # a multipart request's fields and spooled files
        streaming = False
        try:
            if drain.draining:
                raise shutting_down()
            key = authenticate(graph, headers)
            record.key_name = key.name
            limit = graph.body_limits.get(op, graph.max_body_bytes)
            if op.body == "multipart":
                form = await read_form(request, headers, limit)
                body = form.fields
                model, stream = check_form(op, body)
            else:
                body = _parse_json(await _read_body(request, headers, limit))
                model, stream = check_body(op, body)
            route = _route(graph, key, op, model)
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
            if op.answer == "binary":
                response = await _binary_answer(graph, call, watch, record, form)
                form = None  # closed by the answer, when it ends
                streaming = True  # (as for a stream)
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
            if form is not None:
                form.close()
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


async def _binary_answer(
    graph: RoutingGraph,
    call: Call,
    watch: DisconnectWatch,
    record: access.RequestRecord,
    form: Form | None,
) -> Response:
    """An answer of bytes, passed on as the upstream sends them (`router.upstream.media`):
    the attempt that answers has sent its first bytes when this returns; the answer's end
    records the request, releases its limits and closes its form."""
    attempt = tracing.traced_attempt(call, lambda t, left: open_binary(call, t, left))
    relay: BinaryRelay = await watch.run(execute(graph, call, attempt))
    limits = call.limits
    headers = _router_headers(call, call.request_id, limits)
    headers.append((b"content-type", relay.content_type.encode("latin-1", "replace")))

    def closed() -> None:
        relay.close()
        if form is not None:
            form.close()
        if limits is not None:
            limits.finish_soon(call.usage)

    response = BinaryAnswer(relay.__aiter__(), headers, watch, record, on_close=closed)
    return _finish_headers(response, graph, call.request_id, call.key.name, call, None)
