"""The API's endpoints: one handler per operation, from the request's headers and body to
the answer, through authentication, admission, dispatch and the upstream. The steps are
`Exchange`'s, shared with the endpoints of the APIs served by translation
(`router.http.translated`).

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

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Scope

from router import errors
from router.graph.rewrites import prepare_request
from router.http.auth import authenticate
from router.http.binary import BinaryAnswer
from router.http.body import parse_json, read_body
from router.http.disconnect import DisconnectWatch
from router.http.drain import Drain, shutting_down
from router.http.finish import finish_headers as _finish_headers
from router.http.finish import stream_answer
from router.http.responses import (
    JsonAnswer,
    RawHeaders,
    router_headers,
)
from router.http.state import RouterState
from router.http.uploads import Form, is_form, read_form
from router.http.validate import check_body, check_form
from router.limits.admission import CallLimits, admit
from router.limits.units import images_asked
from router.observability import access, logs, tracing
from router.operations import names as names_of
from router.routing import recovery
from router.routing.dispatch import execute
from router.spend import metered
from router.spend.budget_admission import admit as admit_budgets
from router.spend.budget_admission import admit_now as admit_budgets_now
from router.types import Call, ClientKey, Operation, Route, RoutingGraph, Target
from router.upstream.media import BinaryRelay, open_binary
from router.upstream.relay import JsonAnswerBody, StreamRelay, open_stream, send_json
from router.upstream.transport import Sendable

log = logs.get_logger("router")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
JSON = "application/json"
Endpoint = Callable[[Request], Awaitable[Response]]
Render = Callable[[errors.RouterError], tuple[int, bytes]]  # an error's status and body

# The operations answered with images, priced per image (`router.spend.prices.METERED`).
IMAGE_OPERATIONS = frozenset({Operation.IMAGES, Operation.IMAGE_EDITS, Operation.IMAGE_VARIATIONS})


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


def error_response(
    error: errors.RouterError,
    request_id: str,
    state: RouterState,
    render: Render | None = None,
) -> Response:
    """The error answer: the OpenAI envelope, or the API's own shape (`render`)."""
    headers = {"x-request-id": request_id, **error.headers}
    status, body = (error.status, error.to_json()) if render is None else render(error)
    if isinstance(error, errors.UpstreamError):
        body = state.redact(body)
    if getattr(error, "retry_after", None) and "retry-after" not in headers:
        headers["retry-after"] = str(max(1, round(error.retry_after)))  # type: ignore[attr-defined]
    return Response(body, status_code=status, headers=headers, media_type=JSON)


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


def find_route(graph: RoutingGraph, key: ClientKey, model: str, op: Operation) -> Route:
    """The route of `model`, if it exists, `key` may use it, and it serves `op`."""
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


OpenAttempt = Callable[[Target, float, Callable[[StreamRelay], None]], Awaitable[StreamRelay]]
SendAttempt = Callable[[Target, float], Awaitable[JsonAnswerBody]]


class Exchange:
    """One API request on its way through the handler's steps (`respond` runs them): what
    each step leaves for the next, and for the end, which accounts the request once in its
    `RequestRecord` and releases what it holds, whatever happened to it.

    The steps are shared by every API the router serves: `api_endpoint` (the OpenAI API)
    and `router.http.translated` (the APIs translated to it) differ only in the attempts
    they make and in how they render an error (`render`)."""

    __slots__ = (
        "call",
        "drain",
        "form",
        "graph",
        "headers",
        "limits",
        "record",
        "relay",
        "render",
        "request",
        "request_id",
        "state",
        "streaming",
        "watch",
    )

    def __init__(
        self,
        state: RouterState,
        drain: Drain,
        request: Request,
        op: Operation,
        render: Render | None = None,
    ) -> None:
        started = time.perf_counter()
        self.state, self.drain, self.request, self.render = state, drain, request, render
        self.graph = state.graph  # read once: a reload during the request does not move it
        scope = request.scope
        self.headers = headers = _header_dict(scope)
        self.request_id = request_id = request_id_of(headers)
        span = tracing.start_request(headers, scope["path"])
        # Told the outcome on every path below; finished once, after the last byte.
        record = access.RequestRecord(scope["method"], scope["path"], request_id, started, span)
        record.operation = op.name
        record.ledger = state.ledger
        self.record = record
        self.call: Call | None = None
        self.limits: CallLimits | None = None
        self.watch: DisconnectWatch | None = None
        self.relay: StreamRelay | None = None
        self.form: Form | None = None  # a multipart request's fields and spooled files
        self.streaming = False

    async def respond(self, serve: Callable[[Exchange], Awaitable[Response]]) -> Response:
        """`serve(self)`'s answer, or the error answer; then the request's end (a stream's
        own end does that, once its last byte is sent)."""
        try:
            return await serve(self)
        except (errors.RouterError, ClientDisconnect) as exc:
            error = _client_left() if isinstance(exc, ClientDisconnect) else exc
            self.record.failed(error)
            response = error_response(error, self.request_id, self.state, self.render)
            return self.finish_headers(response, self.record.key_name, self.limits)
        except Exception as exc:  # a bug: the client gets a 500, the log its traceback
            path = self.request.scope["path"]
            log.error("unhandled_error", path=path, request_id=self.request_id, exc_info=exc)
            error = errors.InternalError("internal error in the router")
            self.record.failed(error)
            return error_response(error, self.request_id, self.state, self.render)
        finally:
            if not self.streaming:  # a stream's own end stops its watch and releases its limits
                await self._end()

    async def _end(self) -> None:
        if self.form is not None:  # (a binary answer closes it when it ends)
            self.form.close()
        if self.relay is not None:  # primed, but its answer is not going out
            self.relay.close()
        if self.watch is not None:
            self.watch.stop()
        limits, call = self.limits, self.call
        try:
            self.record.finish()
        finally:
            if limits is not None and not limits.finish_now(call.usage if call else None):
                await limits.finish(call.usage if call else None)

    async def read(self, op: Operation) -> tuple[ClientKey, Any, str, bool]:
        """The client's key, and its body with the body's model and stream flag: the key
        authenticated, the body read (within its size limit) and checked."""
        if self.drain.draining:
            raise shutting_down()
        key = authenticate(self.graph, self.headers)
        self.record.key_name = key.name
        graph = self.graph
        limits = graph.operation_body_limits.get(op, graph.body_limits)
        if op.body == "multipart" or (op.body == "either" and is_form(self.headers)):
            self.form = form = await read_form(self.request, self.headers, limits.max_bytes)
            model, stream = check_form(op, form.fields)
            return key, form.fields, model, stream
        raw = await read_body(self.request.receive, self.headers, limits, self.state.body_clock)
        body = parse_json(raw, limits.max_depth)
        del raw  # (a big body's bytes need not outlive the parse)
        model, stream = check_body(op, body)
        return key, body, model, stream

    async def start(
        self, op: Operation, body: dict[str, Any], stream: bool, key: ClientKey, route: Route
    ) -> Call:
        """The request's `Call`, admitted by the spend budgets (which may send it to a cheaper
        model) and the rate limits, then watched for its client leaving (or the drain)."""
        deadline = time.monotonic() + route.retries.deadline
        call = Call(op, body, stream, key, self.request_id, route, deadline)
        self.record.call = self.call = call
        call.prepare = _preparer(self.graph, call, self.headers)
        budget = admit_budgets_now(self.state.limiter, self.graph, call)
        if budget is False:  # a shared backend, a spent budget, ...: see `admit_budgets`
            budget = await admit_budgets(self.state.limiter, self.graph, call)  # (may reroute)
        call.budget = budget
        call.limits = self.limits = await admit(self.state.limiter, self.graph.limits, call)
        self.watch = DisconnectWatch(self.request.receive, self.drain)
        return call

    async def answer(self, call: Call, attempt: SendAttempt) -> Response:
        """A JSON answer: `attempt` along the route until one succeeds."""
        watch = self.watch
        assert watch is not None
        answer = await watch.run(execute(self.graph, call, tracing.traced_attempt(call, attempt)))
        watch.stop()
        op = call.op
        if op in IMAGE_OPERATIONS:  # priced per image
            call.units = metered.images_in(answer.data)
        ttft = time.perf_counter()
        headers = _router_headers(call, self.request_id, self.limits)
        response = self.finish_headers(JsonAnswer(answer.content, headers), call.key.name, None)
        self.record.answered(ttft)
        return response

    async def stream(self, call: Call, attempt: OpenAttempt) -> Response:
        """A streamed answer: the first stream `attempt` primed along the route; it goes
        out frame by frame and ends the request itself."""
        watch = self.watch
        assert watch is not None
        graph = self.graph
        # The answer is built while the upstream works on its first token (see
        # `_stream_answer`); `ready` holds the one for the attempt under way.
        ready: list[tuple[StreamRelay, Response]] = []
        answer = stream_answer(graph, call, watch, self.record)

        def prepare(relay: StreamRelay) -> None:
            ready[:] = [(relay, answer(relay))]

        opened = tracing.traced_attempt(call, lambda t, left: attempt(t, left, prepare))
        self.relay = relay = await watch.run(execute(graph, call, opened))
        attempted = relay.call  # the call as the attempt made it (see `router.http.translated`)
        if attempted is not call:
            attempted.answered_by, attempted.target = call.answered_by, call.target
        recovery.enable(graph, attempted, relay)
        # (Prepared for the attempt that answers, unless a hedge raced it: then it is made
        # again, once the race has decided and the loser is counted.)
        prepared = ready and ready[0][0] is relay and call.hedged is None
        response = ready[0][1] if prepared else answer(relay)
        self.streaming = True  # the stream's own end records it, stops its watch, etc.
        return response

    async def binary(self, call: Call) -> Response:
        """An answer of bytes, passed on as the upstream sends them (`router.upstream.media`):
        the attempt that answers has sent its first bytes when this returns; the answer's end
        records the request, releases its limits and closes the request's form."""
        watch = self.watch
        assert watch is not None
        attempt = tracing.traced_attempt(call, lambda t, left: open_binary(call, t, left))
        relay: BinaryRelay = await watch.run(execute(self.graph, call, attempt))
        limits, form = call.limits, self.form
        headers = _router_headers(call, call.request_id, limits)
        headers.append((b"content-type", relay.content_type.encode("latin-1", "replace")))

        chunks = relay.__aiter__()
        op = call.op
        if op is Operation.TRANSCRIPTIONS or op is Operation.TRANSLATIONS:  # per audio second
            chunks = metered.metered_transcript(call, chunks, relay.content_type)
        elif op is Operation.SPEECH:  # priced per character spoken
            call.units = metered.characters(call.body)
        elif op in IMAGE_OPERATIONS:  # streamed: the images asked
            call.units = images_asked(call.body)

        def closed() -> None:
            relay.close()
            if form is not None:
                form.close()
            if limits is not None:
                limits.finish_soon(call.usage)

        response = BinaryAnswer(chunks, headers, watch, self.record, on_close=closed)
        self.form = None  # closed by the answer, when it ends
        self.streaming = True  # (as for a stream: the answer's end ends the request)
        return self.finish_headers(response, call.key.name, None)

    def local(self, content: bytes) -> Response:
        """A JSON answer the router makes itself, with no upstream and no call."""
        response = JsonAnswer(content, [(b"x-request-id", self.request_id.encode("latin-1"))])
        self.record.answered(time.perf_counter())
        return self.finish_headers(response, self.record.key_name, None)

    def finish_headers(
        self, response: Response, key_name: str | None, limits: CallLimits | None
    ) -> Response:
        return _finish_headers(response, self.graph, self.request_id, key_name, self.call, limits)


def api_endpoint(op: Operation, state: RouterState, drain: Drain) -> Endpoint:
    """The handler of one operation's POST path."""

    async def serve(exchange: Exchange) -> Response:
        key, body, model, stream = await exchange.read(op)
        route = find_route(exchange.graph, key, model, op)
        call = await exchange.start(op, body, stream, key, route)
        if stream and op.passes_streams:  # (events of their own, passed on as they come)
            return await exchange.binary(call)
        if stream:
            return await exchange.stream(
                call, lambda target, left, ready: open_stream(call, target, left, on_open=ready)
            )
        if op.answer == "binary":
            return await exchange.binary(call)
        return await exchange.answer(call, lambda target, left: send_json(call, target, left))

    async def endpoint(request: Request) -> Response:
        return await Exchange(state, drain, request, op).respond(serve)

    endpoint.__name__ = f"{op.value}_endpoint"
    return endpoint


def _client_left() -> errors.ClientDisconnected:
    """Starlette's word for a client that left while sending its body, as the router's."""
    return errors.ClientDisconnected("the client closed the connection before its body was sent")
