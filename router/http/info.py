"""The API's GET endpoints (models, health, readiness) and the answers for requests no
endpoint takes (404, 405) or that fail in a way no endpoint caught (500), all in the OpenAI
error envelope, and in Anthropic's shape for Anthropic clients (models and errors alike)."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from router import errors
from router.graph.keys import model_object
from router.http.anthropic_models import model_info, models_page, wants_anthropic
from router.http.auth import authenticate
from router.http.endpoints import JSON, Render, error_response, request_id_of
from router.http.state import RouterState
from router.observability import logs
from router.translate.apis import MESSAGES_API

log = logs.get_logger("router")


def _render(anthropic: bool) -> Render | None:
    """How an error is shaped: Anthropic's for an Anthropic client, else the OpenAI envelope."""
    return MESSAGES_API.error if anthropic else None


async def list_models(request: Request) -> Response:
    """The OpenAI model list (made when the config was compiled), or for an Anthropic
    client a page of Anthropic's."""
    state: RouterState = request.app.state.router
    request_id = request_id_of(request.headers)
    anthropic = wants_anthropic(request.headers)
    try:
        key = authenticate(state.graph, request.headers)
        if anthropic:
            page = models_page(sorted(key.allowed), state.graph.loaded_at, request.query_params)
    except errors.RouterError as exc:
        return error_response(exc, request_id, state, _render(anthropic))
    body = orjson.dumps(page) if anthropic else key.models_body
    return Response(body, media_type=JSON, headers={"x-request-id": request_id})


async def get_model(request: Request) -> Response:
    state: RouterState = request.app.state.router
    request_id = request_id_of(request.headers)
    model = request.path_params["model"]
    anthropic = wants_anthropic(request.headers)
    try:
        key = authenticate(state.graph, request.headers)
        if model not in key.allowed:
            raise errors.NotFound(f"model '{model}' does not exist", param="model")
    except errors.RouterError as exc:
        return error_response(exc, request_id, state, _render(anthropic))
    graph = state.graph
    if anthropic:
        body = model_info(model, graph.loaded_at)
    else:
        body = model_object(model, int(graph.loaded_at), graph.routes.get(model))
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
    render = _render(wants_anthropic(request.headers))
    response = error_response(error, request_id_of(request.headers), state, render)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, exc_info=exc)
    state: RouterState = request.app.state.router
    error = errors.RouterError("internal error in the router", code="internal_error")
    render = _render(wants_anthropic(request.headers))
    return error_response(error, request_id_of(request.headers), state, render)
