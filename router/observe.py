"""What one finished request leaves behind: one access-log line, its metrics, its span's end.

All three are fed from the same `Call` in one place, after the last byte, so a request costs
one structlog call, a handful of instrument updates and, with tracing on, one span end.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from router import errors, logs, metrics, tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logs.get_logger("router")


def _ms(seconds: float) -> float:
    """Milliseconds to two decimals: `round(x, 2)` formats and parses a decimal string,
    several times the cost of this for a non-negative duration."""
    return int(seconds * 100_000 + 0.5) / 100


def request_done(
    call: Any,
    method: str,
    path: str,
    request_id: str,
    status: int,
    started: float,
    key_name: str | None,
    error: errors.RouterError | None,
    ttft: float | None = None,
    span: Span | None = None,
) -> None:
    """Log, count and close one request. `started` and `ttft` are `time.perf_counter()` based."""
    seconds = time.perf_counter() - started
    model = call.route.name if call is not None else None
    outcome = "ok" if error is None else (error.code or error.kind.value)
    metrics.duration.record(seconds, model or "", status, outcome)  # and `requests` with it
    if isinstance(error, errors.RateLimited) and not isinstance(error, errors.UpstreamError):
        metrics.rate_limit_rejections.add(1, model or "", key_name or "")
    usage = call.usage if call is not None else None
    if call is not None:
        _call_metrics(call, usage, ttft, started)
    tracing.end_request(span, call, status)

    if not logs.info_enabled:
        return
    fields: dict[str, Any] = {
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "latency_ms": _ms(seconds),
        "key": key_name,
    }
    if call is not None:
        fields["model"] = model
        fields["stream"] = call.stream
        if call.target is not None:
            fields["provider"] = call.target.runtime.name
            fields["upstream_model"] = call.target.model
        if call.answered_by is not None and call.answered_by is not call.route:
            fields["answered_by"] = call.answered_by.name
        fields["attempts"] = [
            {"target": a.target, "outcome": a.outcome, "ms": _ms(a.seconds)} for a in call.attempts
        ]
        if ttft is not None:
            fields["ttft_ms"] = _ms(ttft - started)
        if usage:
            fields["prompt_tokens"] = usage.get("prompt_tokens")
            fields["completion_tokens"] = usage.get("completion_tokens")
    limits = call.limits if call is not None else None
    fields["rate_limit"] = limits.remaining() if limits is not None else None
    if error is not None:
        fields["error"] = outcome
    logs.info_line(log, "request", fields)


def _call_metrics(call: Any, usage: Any, ttft: float | None, started: float) -> None:
    model = call.route.name
    for attempt in call.attempts:
        metrics.attempts.add(1, attempt.target, attempt.outcome)
    if call.answered_by is not None and call.answered_by is not call.route:
        metrics.fallbacks.add(1, model, call.answered_by.name)
    if ttft is not None:
        metrics.time_to_first_token.record(
            ttft - started, model, "true" if call.stream else "false"
        )
    if usage:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int):
            metrics.tokens.record(prompt, model, "input")
        if isinstance(completion, int):
            metrics.tokens.record(completion, model, "output")
