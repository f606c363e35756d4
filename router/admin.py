"""Admin endpoints under `/admin/`: off unless `server.admin_key` is configured.

Every admin route checks the admin key (Bearer or x-api-key) in constant time, and no admin
output ever contains a secret.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router import errors
from router.auth import presented_key
from router.breaker import breaker_states
from router.state import RouterState


def require_admin(request: Request) -> RouterState:
    """The router state, if the request carries the admin key; raises otherwise."""
    state: RouterState = request.app.state.router
    admin_key = state.graph.config.server.admin_key
    if admin_key is None:
        raise errors.NotFound(
            "admin endpoints are disabled (set server.admin_key)", code="not_found"
        )
    token = presented_key(request.headers)
    if token is None:
        raise errors.AuthenticationFailed("missing admin key", code="missing_api_key")
    expected = hashlib.sha256(admin_key.get_secret_value().encode()).digest()
    if not hmac.compare_digest(hashlib.sha256(token.encode()).digest(), expected):
        raise errors.AuthenticationFailed("invalid admin key")
    return state


async def breakers(request: Request) -> Response:
    """`GET /admin/breakers`: every target's circuit breaker, as plain data."""
    try:
        state = require_admin(request)
    except errors.RouterError as exc:
        return Response(exc.to_json(), status_code=exc.status, media_type="application/json")
    body = {"object": "list", "data": breaker_states(state.graph)}
    return Response(orjson.dumps(body), media_type="application/json")


def admin_routes() -> list[Route]:
    """Admin routes; each module that adds one lists it here."""
    from router.reload import reload_routes
    from router.spend.admin import usage_routes

    return [
        Route("/admin/breakers", breakers, methods=["GET"]),
        *reload_routes(),
        *usage_routes(),
    ]
