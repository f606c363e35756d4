"""The HTTP service: the OpenAI API (and the APIs translated to it, `router.http.translated`)
in front of the routing graph, as a Starlette app.

The app is plain Starlette: its middleware (server errors, the drain, exceptions, and any a
user adds) runs for every request; `ApiRouter` at the bottom dispatches the API's POST paths
by dictionary. `create_app_from_env` is what `llm-switchyard serve` runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from router.config.settings import Settings
from router.graph.load import load_graph_once
from router.graph.reload import Reloader
from router.http import edge, gctune, malloctune
from router.http.admin import admin_routes
from router.http.drain import Drain, DrainMiddleware, install_sigterm
from router.http.endpoints import Endpoint, api_endpoint
from router.http.info import (
    get_model,
    health,
    http_error,
    list_models,
    liveliness,
    readiness,
    server_error,
)
from router.http.routing import ApiRouter
from router.http.state import RouterState
from router.http.translated import translated_endpoint
from router.observability import logs, tracing
from router.observability.metrics import metrics_routes
from router.operations import registered
from router.types import RoutingGraph

log = logs.get_logger("router")


def _routes(state: RouterState, drain: Drain) -> list[Route]:
    routes: list[Route] = []
    for op in registered():  # each operation's POST path, with and without `/v1`
        make = api_endpoint if op.upstream is None else translated_endpoint
        endpoint = make(op, state, drain)
        routes += [Route(prefix + op.path, endpoint, methods=["POST"]) for prefix in ("/v1", "")]
    for prefix in ("/v1", ""):
        routes += [
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


def _posts(routes: list[Route]) -> dict[str, Endpoint]:
    """The API's POST endpoints by path, for `ApiRouter`'s look-up (the same handlers)."""
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

    routes = _routes(state, drain)
    posts = _posts(routes)
    app = Starlette(
        middleware=[Middleware(DrainMiddleware, drain=drain, own=frozenset(posts))],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.router = ApiRouter(routes, posts, lifespan=lifespan)
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
    graph = load_graph_once(settings.config)  # (`serve` has compiled it already)
    edge.configure(edge.EdgeLimits.of(graph.config.server))  # before uvicorn accepts anything
    if not settings.access_log:
        logs.configure("warning", settings.log_format)
    app = create_app(graph)
    for warning in graph.warnings:
        log.warning("config_warning", issue=str(warning))
    gctune.tune()
    malloctune.tune()
    return app
