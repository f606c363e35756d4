"""Metrics: OpenTelemetry instruments, read at `GET /metrics` and pushed over OTLP if configured.

One MeterProvider per process. An in-memory reader serves the Prometheus text format on
scrape (no extra dependency); when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the metrics-specific
variable) is set and the OTLP exporter is installed, a periodic reader pushes the same data.
Instruments are created once at import; the hot path only calls `add`/`record`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    MetricReader,
    Sum,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router import logs

log = logs.get_logger("router.metrics")
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)


def _otlp_reader() -> MetricReader | None:
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if not (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    ):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    except ImportError:
        log.warning("otlp_exporter_missing", hint="pip install 'llm-router[otlp]'")
        return None
    return PeriodicExportingMetricReader(OTLPMetricExporter())


_scrape = InMemoryMetricReader()
_readers: list[MetricReader] = [_scrape]
if (_otlp := _otlp_reader()) is not None:
    _readers.append(_otlp)
provider = MeterProvider(metric_readers=_readers)
meter = provider.get_meter("llm_router")

requests = meter.create_counter(
    "llm_router.requests", unit="{request}", description="Client requests by outcome."
)
duration = meter.create_histogram(
    "llm_router.request.duration",
    unit="s",
    description="Time from request to last byte sent.",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
time_to_first_token = meter.create_histogram(
    "llm_router.time_to_first_token",
    unit="s",
    description="Time from request to the first answer byte (streams: first chunk).",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
tokens = meter.create_histogram(
    "gen_ai.client.token.usage",
    unit="{token}",
    description="Tokens per request, by gen_ai.token.type (input or output).",
    explicit_bucket_boundaries_advisory=_TOKENS,
)
attempts = meter.create_counter(
    "llm_router.attempts", unit="{attempt}", description="Upstream attempts by target, outcome."
)
fallbacks = meter.create_counter(
    "llm_router.fallbacks", unit="{request}", description="Requests answered by a fallback model."
)
rate_limit_rejections = meter.create_counter(
    "llm_router.rate_limit.rejections",
    unit="{request}",
    description="Requests the router itself refused with 429 (its own limits, not upstream's).",
)
reloads = meter.create_counter(
    "llm_router.config.reloads", unit="{reload}", description="Config reloads by result."
)

# Breaker state lives in another module; it registers a source yielding (target, state) pairs,
# state 0 closed, 1 half-open, 2 open.
_breaker_sources: list[Callable[[], Iterable[tuple[str, int]]]] = []


def observe_breakers(source: Callable[[], Iterable[tuple[str, int]]]) -> None:
    _breaker_sources.append(source)


def _breaker_observations(options: CallbackOptions) -> Iterable[Observation]:
    for source in _breaker_sources:
        for target, state in source():
            yield Observation(state, {"target": target})


meter.create_observable_gauge(
    "llm_router.breaker.state",
    callbacks=[_breaker_observations],
    description="Circuit breaker per target: 0 closed, 1 half-open, 2 open.",
)


# -- Prometheus text format --------------------------------------------------------------------

_BAD = re.compile(r"[^a-zA-Z0-9_:]")


def _name(name: str, unit: str) -> str:
    base = _BAD.sub("_", name)
    if unit == "s" and not base.endswith("_seconds"):
        base += "_seconds"
    return base


def _labels(attributes: Any, extra: dict[str, str] | None = None) -> str:
    items = {**dict(attributes or {}), **(extra or {})}
    if not items:
        return ""
    parts = []
    for key, value in sorted(items.items()):
        text = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{_BAD.sub("_", key)}="{text}"')
    return "{" + ",".join(parts) + "}"


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf"
    return repr(value) if isinstance(value, float) else str(value)


def prometheus_text() -> str:
    """Everything collected so far, in the Prometheus text exposition format 0.0.4."""
    data = _scrape.get_metrics_data()
    out: list[str] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                name = _name(metric.name, metric.unit or "")
                points = metric.data
                if isinstance(points, Sum):
                    kind = "counter" if points.is_monotonic else "gauge"
                    full = name + "_total" if points.is_monotonic else name
                    out.append(f"# HELP {full} {metric.description}")
                    out.append(f"# TYPE {full} {kind}")
                    for p in points.data_points:
                        out.append(f"{full}{_labels(p.attributes)} {_number(p.value)}")
                elif isinstance(points, Gauge):
                    out.append(f"# HELP {name} {metric.description}")
                    out.append(f"# TYPE {name} gauge")
                    for p in points.data_points:
                        out.append(f"{name}{_labels(p.attributes)} {_number(p.value)}")
                elif isinstance(points, Histogram):
                    out.append(f"# HELP {name} {metric.description}")
                    out.append(f"# TYPE {name} histogram")
                    for p in points.data_points:
                        running = 0
                        bounds = [*p.explicit_bounds, math.inf]
                        for bound, count in zip(bounds, p.bucket_counts, strict=True):
                            running += count
                            le = {"le": _number(float(bound))}
                            out.append(f"{name}_bucket{_labels(p.attributes, le)} {running}")
                        out.append(f"{name}_sum{_labels(p.attributes)} {_number(p.sum)}")
                        out.append(f"{name}_count{_labels(p.attributes)} {p.count}")
    return "\n".join(out) + "\n"


async def metrics_endpoint(request: Request) -> Response:
    return Response(prometheus_text(), media_type="text/plain; version=0.0.4; charset=utf-8")


def metrics_routes() -> list[Route]:
    return [Route("/metrics", metrics_endpoint, methods=["GET"])]
