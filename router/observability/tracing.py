"""Tracing: a span per request, a child span per upstream attempt, GenAI attributes.

Tracing is on only when an exporter is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, with the OTLP exporter installed), or when a test calls
`configure(exporter)`. Off, no span object is ever created: a request costs one context
variable set, and the client's `traceparent`/`tracestate` are passed to the upstream as-is so
the trace still joins up across the router. Off, OpenTelemetry is not even imported (about
3 MB of the router's resident memory): `configure` imports it when tracing is turned on.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from router import errors
from router.observability import logs

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

T = TypeVar("T")
log = logs.get_logger("router.observability.tracing")
_propagator: Any = None  # the W3C propagator, once tracing is on
_tracer: Tracer | None = None
# The client's trace headers, for propagation when tracing is off.
_incoming: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar(
    "llm_router_traceparent", default=None
)


def enabled() -> bool:
    return _tracer is not None


def configure(exporter: SpanExporter | None = None, batch: bool = True) -> None:
    """Turn tracing on with `exporter` (or OTLP from the environment); None and no env: off."""
    global _tracer, _propagator
    if exporter is None:
        exporter = _otlp_exporter()
        if exporter is None:
            _tracer = None
            return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _propagator = TraceContextTextMapPropagator()
    provider = TracerProvider(resource=Resource.create({"service.name": "llm-switchyard"}))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    _tracer = provider.get_tracer("llm_router")


def _otlp_exporter() -> SpanExporter | None:
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if not (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.warning("otlp_exporter_missing", hint="pip install 'llm-switchyard[otlp]'")
        return None
    return OTLPSpanExporter()


def start_request(headers: Mapping[str, str], path: str) -> Span | None:
    """The request's span (None when tracing is off), current for the rest of the task."""
    traceparent = headers.get("traceparent")
    if _tracer is None:
        if traceparent is not None:
            _incoming.set((traceparent, headers.get("tracestate")))
        return None
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    parent = _propagator.extract(headers) if traceparent is not None else None
    span = _tracer.start_span(f"POST {path}", context=parent, kind=SpanKind.SERVER)
    otel_context.attach(trace.set_span_in_context(span))
    return span


def inject(headers: MutableMapping[str, str]) -> None:
    """Put the current trace context on an upstream request's headers."""
    if _tracer is None:
        incoming = _incoming.get()
        if incoming is not None:
            headers["traceparent"] = incoming[0]
            if incoming[1]:
                headers["tracestate"] = incoming[1]
        return
    _propagator.inject(headers)


def traced_attempt(
    call: Any, attempt: Callable[[Any, float], Awaitable[T]]
) -> Callable[[Any, float], Awaitable[T]]:
    """`attempt` with a child span per upstream try; unchanged when tracing is off."""
    tracer = _tracer
    if tracer is None:
        return attempt
    from opentelemetry.trace import SpanKind, Status, StatusCode

    async def run(target: Any, remaining: float) -> T:
        attributes = {
            "gen_ai.operation.name": "chat" if call.op.value == "chat" else call.op.value,
            "gen_ai.system": system_of(target.provider),
            "gen_ai.request.model": target.model,
            "llm_router.provider": target.runtime.name,
            "llm_router.public_model": call.route.name,
        }
        with tracer.start_as_current_span(
            f"{attributes['gen_ai.operation.name']} {target.model}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await attempt(target, remaining)
            except errors.RouterError as exc:
                span.set_attribute("error.type", exc.code or exc.kind.value)
                span.set_status(Status(StatusCode.ERROR, exc.kind.value))
                raise
            data = getattr(result, "data", None)  # a JSON answer's (streams: none)
            if isinstance(data, dict):
                _set_response(span, data.get("model"), data.get("usage"))
            return result

    return run


@functools.cache
def _systems() -> dict[type, str]:
    from router.plugins import provider_plugins

    return {p.provider_class: name for name, p in provider_plugins().items()}


def system_of(provider: Any) -> str:
    """`gen_ai.system`: the plugin name serving this provider (`openai`, `mock`, ...)."""
    return _systems().get(type(provider), "openai")


def _set_response(span: Span, model: Any, usage: Any) -> None:
    if isinstance(model, str):
        span.set_attribute("gen_ai.response.model", model)
    if isinstance(usage, dict):
        if isinstance(usage.get("prompt_tokens"), int):
            span.set_attribute("gen_ai.usage.input_tokens", usage["prompt_tokens"])
        if isinstance(usage.get("completion_tokens"), int):
            span.set_attribute("gen_ai.usage.output_tokens", usage["completion_tokens"])


def end_request(span: Span | None, call: Any, status: int) -> None:
    """Finish the request span with what the request ended up doing."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", status)
    if call is not None:
        span.set_attribute("gen_ai.request.model", call.route.name)
        if call.target is not None:
            span.set_attribute("gen_ai.system", system_of(call.target.provider))
            span.set_attribute("llm_router.provider", call.target.runtime.name)
            span.set_attribute("gen_ai.response.model", call.target.model)
        _set_response(span, None, call.usage)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
