"""The HTTP service: the OpenAI API in front of the routing graph.

Handlers read the active graph once per request and do no config work: routes, keys and
model lists were resolved when the graph was compiled.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from router import continuation, edge, errors, gctune, logs, observe, tracing
from router.admin import admin_routes
from router.answer import JsonAnswer, RawHeaders, attempt_headers, router_headers
from router.auth import authenticate
from router.body import parse_json, read_body
from router.dispatch import Call, execute
from router.drain import Drain, DrainMiddleware, install_sigterm
from router.fastpath import DisconnectWatch, EventStream, RouterApp
from router.graph import RoutingGraph, Target, load_graph
from router.limiter import CallLimits, admit
from router.metrics import metrics_routes
from router.provider import Operation
from router.relay import open_stream, send_json
from router.reload import Reloader
from router.rewrites import apply, prepare_request, request_values
from router.settings import Settings
from router.state import RouterState
from router.validate import check_body

log = logs.get_logger("router")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
JSON = "application/json"
_STREAM_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


def _request_id(headers: Mapping[str, str]) -> str:
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


def _preparer(graph: RoutingGraph, call: Call, client: Any) -> Callable[[Any, Any], None]:
    """Sets an upstream request's headers. It holds the call's names, not the call: a call
    that held a closure holding the call would be a reference cycle per request, left for
    the garbage collector (whose pauses show in tail latency) instead of freed at once."""
    key, model, request_id = call.key.name, call.route.name, call.request_id

    def prepare(request: Any, target: Any) -> None:
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


def _access_log(
    call: Call | None,
    request: Request,
    request_id: str,
    status: int,
    started: float,
    key_name: str | None,
    error: errors.RouterError | None,
    ttft: float | None = None,
    span: Any = None,
) -> None:
    observe.request_done(
        call,
        request.scope["method"],
        request.scope["path"],
        request_id,
        status,
        started,
        key_name,
        error,
        ttft,
        span,
    )


def _endpoint(op: Operation, state: RouterState):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        graph = state.graph
        headers = _header_dict(request.scope)
        request_id = _request_id(headers)
        span = tracing.start_request(headers, request.scope["path"])
        call: Call | None = None
        key_name = None
        limits: CallLimits | None = None
        watch: DisconnectWatch | None = None
        streaming = False
        try:
            key = authenticate(graph, headers)
            key_name = key.name
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
            call.prepare = _preparer(graph, call, headers)
            call.limits = limits = await admit(state.limiter, graph.limits, call)
            watch = DisconnectWatch(request.receive)  # cancels the work if the client leaves
            if stream:
                # The answer is built while the upstream works on its first token (see
                # `_stream_answer`); `ready` holds the one for the attempt under way.
                ready: list[tuple[Any, Response]] = []
                answer = _stream_answer(graph, call, request, started, span, watch)

                def prepare(relay: Any) -> None:
                    ready[:] = [(relay, answer(relay))]

                attempt = tracing.traced_attempt(
                    call, lambda t, left: open_stream(call, t, left, on_open=prepare)
                )
                relay = await watch.run(execute(graph, call, attempt))
                continuation.enable(graph, call, relay)
                response = ready[0][1] if ready and ready[0][0] is relay else answer(relay)
                streaming = True
                return response
            json_attempt = tracing.traced_attempt(call, lambda t, left: send_json(call, t, left))
            answer = await watch.run(execute(graph, call, json_attempt))
            watch.stop()
            ttft = time.perf_counter()
            response = JsonAnswer(answer.content, _router_headers(call, request_id, limits))
            _access_log(call, request, request_id, 200, started, key_name, None, ttft, span)
            return _finish_headers(response, graph, request_id, key_name, call, None)
        except errors.RouterError as exc:
            _access_log(call, request, request_id, exc.status, started, key_name, exc, None, span)
            response = error_response(exc, request_id, state)
            return _finish_headers(response, graph, request_id, key_name, call, limits)
        finally:
            if not streaming:  # a stream's own end stops its watch and releases its limits
                if watch is not None:
                    watch.stop()
                if limits is not None and not limits.finish_now(call.usage if call else None):
                    await limits.finish(call.usage if call else None)

    endpoint.__name__ = f"{op.value}_endpoint"
    return endpoint


def _stream_answer(
    graph: RoutingGraph,
    call: Call,
    request: Request,
    started: float,
    span: Any,
    watch: DisconnectWatch,
) -> Callable[[Any], Response]:
    """Builds a stream's answer for the attempt under way, once its upstream said 2xx: its
    headers say who answers, on which attempt, with what budget left, and none of that
    waits for the first token, so the router does not either, once it has arrived."""
    limits = call.limits
    done = limits.finish_soon if limits else (lambda usage: None)
    key_name, request_id = call.key.name, call.request_id

    def close(first_frame: float | None) -> None:
        done(call.usage)
        _access_log(call, request, request_id, 200, started, key_name, None, first_frame, span)

    def answer(relay: Any) -> Response:
        target = relay.target
        rate = limits.header_pairs() if limits else []
        headers = attempt_headers(call, target, request_id, rate)
        headers += _STREAM_HEADERS
        response = EventStream(relay.__aiter__(), headers, watch, on_close=close)
        return _finish_headers(response, graph, request_id, key_name, call, None, target)

    return answer


async def list_models(request: Request) -> Response:
    state: RouterState = request.app.state.router
    request_id = _request_id(request.headers)
    try:
        key = authenticate(state.graph, request.headers)
    except errors.RouterError as exc:
        return error_response(exc, request_id, state)
    return Response(key.models_body, media_type=JSON, headers={"x-request-id": request_id})


async def get_model(request: Request) -> Response:
    state: RouterState = request.app.state.router
    request_id = _request_id(request.headers)
    model = request.path_params["model"]
    try:
        key = authenticate(state.graph, request.headers)
        if model not in key.allowed:
            raise errors.NotFound(f"model '{model}' does not exist", param="model")
    except errors.RouterError as exc:
        return error_response(exc, request_id, state)
    body = {
        "id": model,
        "object": "model",
        "created": int(state.graph.loaded_at),
        "owned_by": "llm-router",
    }
    return Response(orjson.dumps(body), media_type=JSON, headers={"x-request-id": request_id})


async def health(request: Request) -> Response:
    state: RouterState = request.app.state.router
    body = {"status": "ok", "models": len(state.graph.routes), "config": state.graph.config_hash}
    return Response(orjson.dumps(body), media_type=JSON)


async def liveliness(request: Request) -> Response:
    return Response(b'{"status":"alive"}', media_type=JSON)


async def readiness(request: Request) -> Response:
    state: RouterState = request.app.state.router
    if not state.ready:
        return Response(b'{"status":"not ready"}', status_code=503, media_type=JSON)
    return Response(b'{"status":"ready"}', media_type=JSON)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    state: RouterState = request.app.state.router
    error: errors.RouterError
    if exc.status_code == 405:
        error = errors.MethodNotAllowed(
            f"method {request.method} is not allowed on {request.url.path}"
        )
    elif exc.status_code == 404:
        error = errors.NotFound(
            f"no route for {request.method} {request.url.path}", code="not_found"
        )
    else:
        error = errors.RouterError(str(exc.detail), status=exc.status_code)
    response = error_response(error, _request_id(request.headers), state)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, exc_info=exc)
    state: RouterState = request.app.state.router
    error = errors.RouterError("internal error in the router", code="internal_error")
    return error_response(error, _request_id(request.headers), state)


def _routes(state: RouterState) -> list[Route]:
    chat, completions, embeddings = (
        _endpoint(op, state) for op in (Operation.CHAT, Operation.COMPLETIONS, Operation.EMBEDDINGS)
    )
    routes: list[Route] = []
    for prefix in ("/v1", ""):
        routes += [
            Route(f"{prefix}/chat/completions", chat, methods=["POST"]),
            Route(f"{prefix}/completions", completions, methods=["POST"]),
            Route(f"{prefix}/embeddings", embeddings, methods=["POST"]),
            Route(f"{prefix}/models", list_models, methods=["GET"]),
            Route(f"{prefix}/models/{{model:path}}", get_model, methods=["GET"]),
        ]
    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/health/liveliness", liveliness, methods=["GET"]),
        Route("/health/liveness", liveliness, methods=["GET"]),
        Route("/health/readiness", readiness, methods=["GET"]),
    ]
    return routes + metrics_routes() + admin_routes()


def _fast_endpoints(routes: list[Route]) -> dict[str, Callable[[Request], Any]]:
    """The POST endpoints `RouterApp` serves without Starlette's routing (same handlers)."""
    return {r.path: r.endpoint for r in routes if r.methods == {"POST"}}


def create_app(graph: RoutingGraph) -> Starlette:
    """The ASGI app serving `graph`; transports open at start-up and close at shutdown."""
    state = RouterState(graph)
    drain = Drain()
    reloader = Reloader(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        await reloader.start()
        install_sigterm(state, drain)
        try:
            yield
        finally:
            await reloader.stop()
            await state.stop()

    routes = _routes(state)
    app = RouterApp(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(DrainMiddleware, drain=drain)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.setup_fast_path(_fast_endpoints(routes), drain, server_error)
    app.state.router = state
    app.state.reloader = reloader
    app.state.drain = drain
    return app


def create_app_from_env() -> Starlette:
    """uvicorn's factory: the config path and logging come from LLM_ROUTER_* variables."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    tracing.configure()  # on only if an OTLP endpoint is configured
    if not settings.config:
        raise SystemExit("LLM_ROUTER_CONFIG is not set: give the path of a config file")
    graph = load_graph(settings.config)
    edge.configure(edge.EdgeLimits.of(graph.config.server))  # before uvicorn accepts anything
    if not settings.access_log:
        logs.configure("warning", settings.log_format)
    app = create_app(graph)
    gctune.tune()
    return app
