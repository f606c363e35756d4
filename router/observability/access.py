"""What one finished request leaves behind: one access-log line, its metrics, its span's end,
and, with the usage ledger on, its ledger row.

All three are fed from the request's `RequestRecord` in one place, after the last byte, so
a request costs one structlog call, a handful of instrument updates and, with tracing on,
one span end, whatever happened to it: answered, failed, client gone or stream failed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from router import errors
from router.observability import logs, metrics, tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logs.get_logger("router")


def _ms(seconds: float) -> float:
    """Milliseconds to two decimals: `round(x, 2)` formats and parses a decimal string,
    several times the cost of this for a non-negative duration."""
    return int(seconds * 100_000 + 0.5) / 100


ANSWERED = "answered"  # the whole answer went out
FAILED = "failed"  # an error answer went out (4xx/5xx in the OpenAI envelope)
CLIENT_GONE = "client_gone"  # the client left: before its answer (499), or during its stream
STREAM_FAILED = "stream_failed"  # a stream's headers went out, then it ended with an error event


def error_class(error: errors.RouterError) -> str:
    """The failure's class as the access log and the metrics name it: the router's own code
    for it, from a fixed set. An upstream's error code (which an upstream picks freely) stays
    in the client's error envelope, out of metric labels."""
    code = type(error).code if isinstance(error, errors.UpstreamError) else error.code
    return code or error.kind.value


class RequestRecord:
    """What one request did, left behind once, after its last byte: one access-log line,
    one sample of the request metrics, its span's end.

    The handler creates it first and tells it the outcome on every path; `finish` runs in
    the handler's `finally` (a stream's, for a streamed answer), and only its first call
    counts. A request whose handler never told it anything failed in a way nobody foresaw:
    it is recorded as the router's own 500.
    """

    __slots__ = (
        "_finished",
        "bytes_sent",
        "call",
        "error",
        "key_name",
        "ledger",
        "method",
        "operation",
        "outcome",
        "path",
        "rejected",
        "relay",
        "request_id",
        "span",
        "started",
        "status",
        "ttft",
    )

    def __init__(
        self, method: str, path: str, request_id: str, started: float, span: Span | None
    ) -> None:
        self.method, self.path, self.request_id = method, path, request_id
        self.started = started  # time.perf_counter()
        self.span = span
        self.call: Any = None  # the router.routing.dispatch.Call, once the request made one
        self.key_name: str | None = None
        self.status, self.outcome = 500, FAILED
        self.error: str | None = errors.InternalError.code
        self.bytes_sent: int | None = None  # streams only
        self.ttft: float | None = None  # time.perf_counter() of the first answer byte
        self.rejected = False  # refused by one of the router's own rate limits
        self.ledger: Any = None  # router.spend.ledger.Ledger, when the usage ledger is on
        self.relay: Any = None  # a stream's router.upstream.relay.StreamRelay, once it has ended
        self.operation = ""  # the API operation's name (`router.types.Operation.name`)
        self._finished = False

    def answered(self, ttft: float) -> None:
        self.status, self.outcome, self.error, self.ttft = 200, ANSWERED, None, ttft

    def failed(self, error: errors.RouterError) -> None:
        """An error answer (or none, for a client that left before its answer)."""
        self.status = error.status
        gone = isinstance(error, errors.ClientDisconnected)
        self.outcome = CLIENT_GONE if gone else FAILED
        self.error = error_class(error)
        self.rejected = isinstance(error, errors.RateLimited) and not isinstance(
            error, errors.UpstreamError
        )

    def streamed(
        self, sent: int, first: float | None, failure: errors.RouterError | None, gone: bool
    ) -> None:
        """A stream's end: `sent` body bytes went out (an error event included), the first
        at `first`; it ended with `failure`'s error event, or the client left (`gone`)."""
        self.status, self.bytes_sent, self.ttft = 200, sent, first
        if gone:
            self.outcome, self.error = CLIENT_GONE, errors.ClientDisconnected.code
        elif failure is not None:
            self.outcome, self.error = STREAM_FAILED, error_class(failure)
        else:
            self.outcome, self.error = ANSWERED, None

    def finish(self) -> None:
        """Log, count and close the request (once). Durations are `time.perf_counter()` based."""
        if self._finished:
            return
        self._finished = True
        started, call, status, outcome, error = (
            self.started,
            self.call,
            self.status,
            self.outcome,
            self.error,
        )
        seconds = time.perf_counter() - started
        model = call.route.name if call is not None else None
        metrics.duration.record(  # and `requests`
            seconds, model or "", self.operation, status, outcome, error or ""
        )
        if self.rejected:
            metrics.rate_limit_rejections.add(1, model or "", self.key_name or "")
        usage = call.usage if call is not None else None
        if call is not None:
            _call_metrics(call, usage, self.ttft, started)
        tracing.end_request(self.span, call, status)
        if call is not None and call.budget is not None:
            call.budget.settle(self, call)
        if self.ledger is not None:
            self.ledger.put(self, call, seconds)

        if not logs.info_enabled:
            return
        fields: dict[str, Any] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "operation": self.operation,
            "status": status,
            "outcome": outcome,
            "latency_ms": _ms(seconds),
            "key": self.key_name,
        }
        if error is not None:
            fields["error"] = error
        if self.bytes_sent is not None:
            fields["bytes_sent"] = self.bytes_sent
        if call is not None:
            fields["model"] = model
            fields["stream"] = call.stream
            if call.target is not None:
                fields["provider"] = call.target.runtime.name
                fields["upstream_model"] = call.target.model
            if call.answered_by is not None and call.answered_by is not call.route:
                fields["answered_by"] = call.answered_by.name
            fields["attempts"] = attempts = [
                {"target": a.target, "outcome": a.outcome, "ms": _ms(a.seconds)}
                for a in call.attempts
            ]
            wasted = 0
            for attempt, entry in zip(call.attempts, attempts, strict=True):
                if attempt.wasted:
                    entry["wasted_tokens"] = attempt.wasted
                    wasted += attempt.wasted
            if self.ttft is not None:
                fields["ttft_ms"] = _ms(self.ttft - started)
            if usage:
                fields["prompt_tokens"] = usage.get("prompt_tokens")
                fields["completion_tokens"] = usage.get("completion_tokens")
            if wasted:  # what the upstreams used in all: the answer's usage and the rest
                total = usage.get("total_tokens") if usage else None
                fields["spent_tokens"] = (total if isinstance(total, int) else 0) + wasted
        limits = call.limits if call is not None else None
        fields["rate_limit"] = limits.remaining() if limits is not None else None
        logs.info_line(log, "request", fields)


def _call_metrics(call: Any, usage: Any, ttft: float | None, started: float) -> None:
    model = call.route.name
    for attempt in call.attempts:
        metrics.attempts.add(1, attempt.target, attempt.outcome)
        if attempt.wasted:
            metrics.wasted_tokens.add(attempt.wasted, model)
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
