"""Admin endpoints under `/admin/`: off unless `server.admin_key` is configured.

`GET /admin/config` (the active config, masked, and how its reloads went), `POST
/admin/reload`, `GET /admin/breakers` and `GET /admin/usage` (the usage ledger's report).
Every admin route checks the admin key (Bearer or x-api-key) in constant time, and no admin
output ever contains a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router import errors
from router.graph.masked import masked_config
from router.graph.reload import Reloader
from router.http.auth import presented_key
from router.http.state import RouterState
from router.observability import logs
from router.routing.breaker import breaker_states
from router.spend.report import DEFAULT_BY, ReportError, as_json, parse_by, period, usage_report

JSON = "application/json"
FLUSH_SECONDS = 2.0  # `/admin/usage` writes this process's queued rows first, if it can


def _refused(error: errors.RouterError) -> Response:
    return Response(error.to_json(), status_code=error.status, media_type=JSON)


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
        return _refused(exc)
    body = {"object": "list", "data": breaker_states(state.graph)}
    return Response(orjson.dumps(body), media_type=JSON)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


async def admin_config(request: Request) -> Response:
    try:
        state = require_admin(request)
    except errors.RouterError as exc:
        return _refused(exc)
    reloader: Reloader = request.app.state.reloader
    status = reloader.status
    body = {
        "path": status.path,
        "hash": status.file_hash,
        "loaded_at": _iso(status.loaded_at),
        "reloads": {"ok": status.reloads_ok, "failed": status.reloads_failed},
        "last_error": status.last_error
        and {**status.last_error, "at": _iso(status.last_error["at"])},
        "restart_needed": status.restart_needed,
        "config": masked_config(state.graph),
    }
    text = logs.mask(orjson.dumps(body).decode())
    return Response(text, media_type=JSON)


async def admin_reload(request: Request) -> Response:
    try:
        require_admin(request)
    except errors.RouterError as exc:
        return _refused(exc)
    reloader: Reloader = request.app.state.reloader
    outcome = await reloader.reload("admin", force=True)
    if outcome["result"] == "failed":
        detail = "\n".join(outcome["issues"])
        error: errors.RouterError
        if outcome["code"] == "invalid_config":
            error = errors.InvalidRequest(
                "the config is invalid; the active one keeps serving:\n" + detail,
                code="invalid_config",
            )
        else:  # not the file's fault (a plugin raising, say): a 500, as any internal error
            error = errors.RouterError(
                "the reload failed; the active config keeps serving:\n" + detail,
                code="reload_failed",
            )
        return _refused(error)
    return Response(orjson.dumps(outcome), media_type=JSON)


async def admin_usage(request: Request) -> Response:
    """`?since=7d&until=...&by=key,model`, as `llm-switchyard usage` takes them."""
    log = logs.get_logger("router.ledger")
    try:
        state = require_admin(request)
        ledger = state.ledger
        if ledger is None:
            raise errors.NotFound("the usage ledger is off (set `spend.ledger`)", code="not_found")
        query = request.query_params
        try:
            by = parse_by(query.get("by", DEFAULT_BY))
            since, until = period(query.get("since"), query.get("until"))
        except ReportError as exc:
            raise errors.InvalidRequest(str(exc)) from None
        await ledger.flush(FLUSH_SECONDS)
        url, timeout = ledger.config.url, ledger.config.timeout
        try:
            report = await usage_report(url, by, since, until, ledger.currency, timeout)
        except ReportError as exc:
            raise errors.InvalidRequest(str(exc)) from None
        except Exception as exc:  # the database: down, unreachable, not a ledger
            log.warning("ledger_report_failed", ledger=ledger.store.where, error=str(exc))
            raise errors.ServiceUnavailable(
                f"cannot read the usage ledger ({ledger.store.where}): {type(exc).__name__}: "
                f"{logs.mask(str(exc))}"
            ) from None
    except errors.RouterError as exc:
        return _refused(exc)
    return Response(orjson.dumps(as_json(report)), media_type=JSON)


def admin_routes() -> list[Route]:
    """Every admin route."""
    return [
        Route("/admin/config", admin_config, methods=["GET"]),
        Route("/admin/reload", admin_reload, methods=["POST"]),
        Route("/admin/breakers", breakers, methods=["GET"]),
        Route("/admin/usage", admin_usage, methods=["GET"]),
    ]
