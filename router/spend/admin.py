"""`GET /admin/usage`: the usage report as JSON, from the ledger this router writes to."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router import errors
from router.observability import logs
from router.spend.report import DEFAULT_BY, ReportError, as_json, parse_by, period, usage_report

FLUSH_SECONDS = 2.0  # this process's queued rows are written first, if the database answers
JSON = "application/json"


async def admin_usage(request: Request) -> Response:
    """`?since=7d&until=...&by=key,model`, as `llm-router usage` takes them."""
    from router.http.admin import require_admin

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
        return Response(exc.to_json(), status_code=exc.status, media_type=JSON)
    return Response(orjson.dumps(as_json(report)), media_type=JSON)


def usage_routes() -> list[Route]:
    return [Route("/admin/usage", admin_usage, methods=["GET"])]
