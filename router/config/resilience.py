"""Config for what happens when a target fails: failure steps, circuit breakers, recovery.

Each field's type lists only the steps that make sense for its failure class, so a config
cannot ask for, say, a retry of a content-policy refusal or a resend of an over-long prompt
to the same model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from router.config.strict import PositiveSeconds, Strict

Transient = Literal["retry", "next", "fail"]
Persistent = Literal["next", "fail"]


class FailureSteps(Strict):
    """The next step per failure class. `retry`: the same target again after a backoff
    (bounded by `retries.attempts`); `next`: the next target, then the fallbacks; `fail`: the
    client gets the error now; `context`: the model's `context_fallback`."""

    rate_limited: Transient = Field(
        "retry",
        description="Upstream 429 (not quota): waits out `Retry-After`, or at least 0.5 s.",
    )
    server: Transient = Field("retry", description="Upstream 5xx.")
    connection: Transient = Field(
        "retry", description="Connection refused or reset, or the stream closed before any data."
    )
    timeout: Transient = Field(
        "next",
        description="Connect, first-token or total timeout; `next` by default so a slow target "
        "is not waited on twice.",
    )
    malformed: Transient = Field(
        "retry", description="A body or stream chunk the provider could not parse."
    )
    insufficient_quota: Persistent = Field(
        "next", description="Balance or quota exhausted (402, `insufficient_quota`)."
    )
    authentication: Persistent = Field(
        "next", description="The upstream refused the router's provider credentials (401)."
    )
    permission: Persistent = Field("next", description="The upstream said 403.")
    not_found: Persistent = Field(
        "next", description="The upstream does not know the target's model (404)."
    )
    context_length: Literal["context", "fail"] = Field(
        "context",
        description="Prompt too long: `context` goes to `context_fallback` (and fails without "
        "one); the same model never gets the same request again.",
    )
    content_policy: Persistent = Field(
        "fail",
        description="The provider's content filter refused; `fail` passes its reason to the "
        "client, `next` lets another target judge.",
    )
    invalid_request: Persistent = Field(
        "fail", description="Any other 4xx about the request; the provider's reason is passed on."
    )


class BreakerConfig(Strict):
    """A circuit breaker on each of the model's targets: after enough failures the target is
    skipped for `open_for` seconds, then one probe request decides whether it closes again.
    Failures are 5xx, timeouts, connection and malformed-response errors, auth/permission/
    not-found/quota refusals and streams that break after they started; 429s (which have
    their own cool-down) and client errors are not."""

    consecutive_failures: int = Field(
        5, ge=1, le=1000, description="Opens after this many failed attempts in a row."
    )
    failure_rate: float | None = Field(
        0.5,
        gt=0,
        le=1,
        description="Also opens when this share of the attempts within `window` failed "
        "(`null`: consecutive failures only).",
    )
    window: PositiveSeconds = Field(
        30.0, description="Seconds over which `failure_rate` is measured."
    )
    min_requests: int = Field(
        10,
        ge=1,
        le=1_000_000,
        description="The failure rate is only judged once the window holds this many attempts.",
    )
    open_for: PositiveSeconds = Field(
        30.0,
        description="Seconds a tripped breaker skips its target before the probe: the one "
        "request then let through. A probe that never reaches the upstream (its provider's "
        "quota refuses it, the client leaves) lets the next request probe.",
    )


StreamRecovery = Literal["error", "continue", "regenerate", "continue_or_regenerate"]


class HedgeConfig(Strict):
    """A second attempt started beside a first that has not begun its answer in time (a
    stream's first token, a JSON answer); whichever begins first is served, the other is
    cancelled. Hedges pass the same limits and breakers as any attempt, and cost what the
    cancelled attempt had used upstream."""

    after: PositiveSeconds = Field(
        description="Seconds to wait for the first token before hedging (with `percentile`: "
        "until the target has `min_samples` observed first tokens)."
    )
    percentile: Literal["p50", "p75", "p90", "p95", "p99"] | None = Field(
        None,
        description="Hedge after this percentile of the target's own observed times to first "
        "token (its latest 100), never sooner than `floor`.",
    )
    floor: float = Field(
        0.5, ge=0, le=86400, description="Seconds: the shortest wait `percentile` may give."
    )
    min_samples: int = Field(
        20, ge=1, le=100, description="Observed first tokens needed before `percentile` applies."
    )
    max: int = Field(1, ge=1, le=5, description="Hedges at most per request.")
