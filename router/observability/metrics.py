"""Metrics: counters and histograms for `GET /metrics`, mirrored to OTLP when configured.

The hot path pays a dict update per instrument (well under a microsecond); recording into
OpenTelemetry SDK instruments costs about 8 us each, so they are fed only when an OTLP
endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or `..._METRICS_ENDPOINT`, with
`llm-switchyard[otlp]` installed). `/metrics` renders the Prometheus text format itself: no
extra dependency.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.observability import logs

log = logs.get_logger("router.observability.metrics")
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)


def _otlp_meter() -> Any:
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if not (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    ):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
    except ImportError:
        log.warning("otlp_exporter_missing", hint="pip install 'llm-switchyard[otlp]'")
        return None
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    resource = Resource.create({"service.name": "llm-switchyard"})
    return MeterProvider(metric_readers=[reader], resource=resource).get_meter("llm_router")


_meter = _otlp_meter()
_all: list[Any] = []


class Counter:
    """A monotonic sum per combination of label values (given positionally)."""

    def __init__(self, name: str, description: str, labels: tuple[str, ...], unit: str = "1"):
        self.name, self.description, self.labels, self.unit = name, description, labels, unit
        self.values: dict[tuple[Any, ...], float] = {}
        self.otel = _meter.create_counter(name, unit, description) if _meter else None
        _all.append(self)

    def add(self, amount: float, *labels: Any) -> None:
        self.values[labels] = self.values.get(labels, 0) + amount
        if self.otel is not None:
            self.otel.add(amount, dict(zip(self.labels, map(str, labels), strict=True)))


class Histogram:
    """Bucket counts, sum and count per combination of label values."""

    def __init__(
        self,
        name: str,
        description: str,
        labels: tuple[str, ...],
        buckets: tuple[float, ...],
        unit: str = "1",
    ):
        self.name, self.description, self.labels, self.unit = name, description, labels, unit
        self.buckets = tuple(float(b) for b in buckets)  # float against float: the fast compare
        self.values: dict[tuple[Any, ...], list[float]] = {}  # [*bucket counts, sum, count]
        self.counted_as: CountOf | None = None  # a counter whose figures are this one's counts
        self.otel = (
            _meter.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=buckets
            )
            if _meter
            else None
        )
        _all.append(self)

    def record(self, value: float, *labels: Any) -> None:
        row = self.values.get(labels)
        if row is None:
            row = self.values[labels] = [0] * (len(self.buckets) + 3)
        row[bisect.bisect_left(self.buckets, value)] += 1
        row[-2] += value
        row[-1] += 1
        if self.otel is not None:
            attributes = dict(zip(self.labels, map(str, labels), strict=True))
            self.otel.record(value, attributes)
            if self.counted_as is not None and self.counted_as.otel is not None:
                self.counted_as.otel.add(1, attributes)


class CountOf:
    """A counter that is a histogram's count per label set. `/metrics` reads the histogram's
    rows, so a request records one instrument instead of two (OTLP gets its own counter)."""

    def __init__(self, name: str, description: str, histogram: Histogram) -> None:
        self.name, self.description, self.unit = name, description, "1"
        self.labels = histogram.labels
        self.histogram = histogram
        histogram.counted_as = self
        self.otel = _meter.create_counter(name, "1", description) if _meter else None
        _all.append(self)

    @property
    def values(self) -> dict[tuple[Any, ...], float]:
        return {key: row[-1] for key, row in self.histogram.values.items()}


class Gauge:
    """A value read when `/metrics` is scraped: the sum of its sources' (e.g. each running
    ledger's queue depth), so the hot path never updates it. Not exported over OTLP."""

    def __init__(self, name: str, description: str) -> None:
        self.name, self.description, self.unit, self.labels = name, description, "1", ()
        self.sources: list[Callable[[], float]] = []
        _all.append(self)


class LabeledGauge:
    """Values read when `/metrics` is scraped, one per label set: each source yields
    (label values, value) rows. Not exported over OTLP."""

    def __init__(self, name: str, description: str, labels: tuple[str, ...]) -> None:
        self.name, self.description, self.unit, self.labels = name, description, "1", labels
        self.sources: list[Callable[[], Iterable[tuple[tuple[Any, ...], float]]]] = []
        _all.append(self)


duration = Histogram(
    "llm_router.request.duration",
    "Time from request to last byte sent.",
    # (see router.observability.access for their values)
    ("model", "operation", "status", "outcome", "error"),
    _SECONDS,
    unit="s",
)
requests = CountOf("llm_router.requests", "Client requests by outcome and error.", duration)
time_to_first_token = Histogram(
    "llm_router.time_to_first_token",
    "Time from request to the first answer byte (streams: first chunk).",
    ("model", "stream"),
    _SECONDS,
    unit="s",
)
tokens = Histogram(
    "gen_ai.client.token.usage",
    "Tokens per request, by gen_ai.token.type (input or output).",
    ("model", "gen_ai.token.type"),
    _TOKENS,
    unit="{token}",
)
attempts = Counter(
    "llm_router.attempts", "Upstream attempts by target, outcome.", ("target", "outcome")
)
wasted_tokens = Counter(
    "llm_router.wasted_tokens",
    "Tokens spent upstream that no answer counts (streams cut, hedges cancelled), estimated.",
    ("model",),
)
fallbacks = Counter(
    "llm_router.fallbacks", "Requests answered by a fallback model.", ("model", "to")
)
rate_limit_rejections = Counter(
    "llm_router.rate_limit.rejections",
    "Requests the router itself refused with 429 (its own limits, not upstream's).",
    ("model", "key"),
)
rate_limit_backend_errors = Counter(
    "llm_router.rate_limit.backend_errors",
    "Rate-limit backend failures by kind: `unavailable` (unreachable or timed out: "
    "`on_error` applies) or `command` (Redis refused a command or script: 503).",
    ("kind",),
)
reloads = Counter("llm_router.config.reloads", "Config reloads by result.", ("result",))
plugin_errors = Counter(
    "llm_router.plugin_errors",
    "Exceptions raised by a provider plugin's own code, contained as failed attempts.",
    ("provider", "stage"),
)
connections_dropped = Counter(
    "llm_router.connections.dropped",
    "Client connections closed at a limit of the HTTP edge (slow or oversized requests, too "
    "many connections).",
    ("reason",),
)

# Breaker state lives on the active graph's targets, not here: the running router registers a
# source of `router.routing.breaker.breaker_states` rows, read at scrape time only, so the
# hot path pays nothing for it.
BreakerRows = Callable[[], Iterable[Mapping[str, Any]]]
_breaker_sources: list[BreakerRows] = []
_BREAKER_STATE = {"closed": 0, "half_open": 1, "open": 2}


def observe_breakers(source: BreakerRows) -> Callable[[], None]:
    """Show the breakers `source` yields at `/metrics`; returns the call that stops it."""
    _breaker_sources.append(source)

    def stop() -> None:
        if source in _breaker_sources:
            _breaker_sources.remove(source)

    return stop


def _breaker_text() -> list[str]:
    rows = [row for source in list(_breaker_sources) for row in source()]
    if not rows:
        return []
    state, moves = "llm_router_breaker_state", "llm_router_breaker_transitions_total"
    out = [
        f"# HELP {state} Circuit breaker per model and target: 0 closed, 1 half-open, 2 open.",
        f"# TYPE {state} gauge",
    ]
    names = ("model", "target")
    for row in rows:
        labels = _labels(names, (row["model"], row["target"]))
        out.append(f"{state}{labels} {_BREAKER_STATE[row['state']]}")
    out += [
        f"# HELP {moves} Circuit breaker transitions by the state entered.",
        f"# TYPE {moves} counter",
    ]
    for row in rows:
        for to, count in row["transitions"].items():
            labels = _labels((*names, "to"), (row["model"], row["target"], to))
            out.append(f"{moves}{labels} {count}")
    return out


# -- Prometheus text format --------------------------------------------------------------------

_BAD = re.compile(r"[^a-zA-Z0-9_:]")


def _name(name: str, unit: str) -> str:
    base = _BAD.sub("_", name)
    if unit == "s" and not base.endswith("_seconds"):
        base += "_seconds"
    return base


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf"
    return repr(value) if isinstance(value, float) else str(value)


def _labels(names: tuple[str, ...], values: tuple[Any, ...], extra: str = "") -> str:
    parts = [f'{_BAD.sub("_", n)}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text() -> str:
    """Everything recorded so far, in the Prometheus text exposition format 0.0.4."""
    out: list[str] = []
    for metric in _all:
        name = _name(metric.name, metric.unit)
        if isinstance(metric, Gauge):
            value = sum(source() for source in list(metric.sources))
            out += [f"# HELP {name} {metric.description}", f"# TYPE {name} gauge"]
            out.append(f"{name} {_number(value)}")
            continue
        if isinstance(metric, LabeledGauge):
            out += [f"# HELP {name} {metric.description}", f"# TYPE {name} gauge"]
            for source in list(metric.sources):
                for key, value in source():
                    out.append(f"{name}{_labels(metric.labels, key)} {_number(value)}")
            continue
        if isinstance(metric, Counter | CountOf):
            out += [f"# HELP {name}_total {metric.description}", f"# TYPE {name}_total counter"]
            for key, value in list(metric.values.items()):
                out.append(f"{name}_total{_labels(metric.labels, key)} {_number(value)}")
            continue
        out += [f"# HELP {name} {metric.description}", f"# TYPE {name} histogram"]
        for key, row in list(metric.values.items()):
            running = 0
            for bound, count in zip((*metric.buckets, math.inf), row[:-2], strict=True):
                running += count
                le = f'le="{_number(float(bound))}"'
                out.append(f"{name}_bucket{_labels(metric.labels, key, le)} {running}")
            out.append(f"{name}_sum{_labels(metric.labels, key)} {_number(row[-2])}")
            out.append(f"{name}_count{_labels(metric.labels, key)} {int(row[-1])}")
    out += _breaker_text()
    return "\n".join(out) + "\n"


async def metrics_endpoint(request: Request) -> Response:
    return Response(prometheus_text(), media_type="text/plain; version=0.0.4; charset=utf-8")


def metrics_routes() -> list[Route]:
    return [Route("/metrics", metrics_endpoint, methods=["GET"])]
