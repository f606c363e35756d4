"""The YAML routing graph as pydantic models. Unknown keys are errors everywhere.

These models check shapes and ranges only; cross-references (providers, models, plugins,
fallback cycles) are checked when the graph is compiled, where all names are known.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from router.checkpoints import checkpoint
from router.config.policies import (
    HeaderRewriteConfig,
    RateLimitPolicyConfig,
)
from router.config.resilience import BreakerConfig, FailureSteps, HedgeConfig, StreamRecovery
from router.config.server import ServerConfig
from router.config.strict import PositiveSeconds, Strict
from router.spend.budget_config import BudgetConfig
from router.spend.config import PriceConfig, SpendConfig
from router.upstream.connection import DEFAULT_MAX_ANSWER_BYTES

FIRST_TOKEN = (
    "From sending the request to the first token of a stream; for a request that does not "
    "stream, to the first byte of the answer (its headers, which most upstreams send when the "
    "whole answer is ready)."
)
TOTAL = "For one whole attempt, streamed or not."


class TimeoutsConfig(Strict):
    """Upstream timeouts in seconds. A silent upstream never holds a client longer."""

    connect: PositiveSeconds = Field(5.0, description="To open a connection to the upstream.")
    first_token: PositiveSeconds = Field(60.0, description=FIRST_TOKEN)
    idle: PositiveSeconds = Field(30.0, description="Longest gap between two stream chunks.")
    total: PositiveSeconds = Field(300.0, description=TOTAL)


class TimeoutOverrides(Strict):
    """A model's or a target's own upstream timeouts, in seconds; an unset field keeps the
    next level's (target, then model, then provider). `connect` is not here: connections are
    pooled per provider and shared by its models, so it is set on the provider only."""

    first_token: float | None = Field(None, gt=0, le=86400, description=FIRST_TOKEN)
    idle: float | None = Field(
        None, gt=0, le=86400, description="Longest gap between two stream chunks."
    )
    total: float | None = Field(None, gt=0, le=86400, description=TOTAL)

    @model_validator(mode="before")
    @classmethod
    def _no_connect(cls, data: Any) -> Any:
        if isinstance(data, dict) and "connect" in data:
            raise ValueError(
                "`connect` is set per provider (`providers.<name>.timeouts.connect`): "
                "connections are pooled per provider and shared by its models"
            )
        return data


class ProviderConfigModel(Strict):
    """A named upstream endpoint served by a provider plugin."""

    plugin: str = Field(description="Provider plugin name, e.g. `openai`, `mock`, `telkom`.")
    base_url: str | None = Field(
        None,
        description="Upstream base URL including any base path, e.g. `https://api.openai.com/v1`. "
        "Optional when the plugin has a default.",
    )
    api_key: SecretStr | None = Field(
        None, description="Upstream credential; use `${ENV_VAR}` rather than writing it inline."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra headers sent with every upstream request.",
        repr=False,  # credentials, often
    )
    timeouts: TimeoutsConfig = Field(
        default_factory=TimeoutsConfig,  # type: ignore[arg-type]
        description="Upstream timeouts for this provider.",
    )
    max_connections: int = Field(
        256, ge=1, le=10000, description="Connection pool size for this upstream."
    )
    max_answer_bytes: int = Field(
        DEFAULT_MAX_ANSWER_BYTES,
        ge=64 * 1024,
        le=4 * 1024**3,
        description="Largest answer read whole from this upstream (a JSON answer, as sent "
        "and once decompressed), and largest event of a stream it sends; beyond it the "
        "attempt fails as a malformed answer (502, or the next target), rather than memory "
        "filling up with an upstream's endless or decompression-bomb answer.",
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Plugin-specific settings, validated by the plugin's own settings model.",
    )
    rate_limits: list[str] = Field(
        default_factory=list,
        description="Policies for this upstream's quota, shared by every model routed to it; "
        "checked before each attempt.",
    )
    budgets: list[str] = Field(
        default_factory=list,
        description="Names of `budgets` for this upstream, checked before each attempt.",
    )
    prices: dict[str, PriceConfig] = Field(
        default_factory=dict,
        description="Prices per upstream model id, for every target of this provider and "
        "model that has no `price` of its own.",
    )
    continuation: bool | None = Field(
        None,
        description="Whether this upstream continues a request ending in an assistant message "
        "(a prefill), which `stream_recovery: continue` sends; unset: the plugin's default. "
        "A target that cannot continue is never sent one.",
    )
    native: list[Literal["responses", "messages"]] = Field(
        default_factory=list,
        description="APIs this upstream serves itself, below `base_url`: `responses` "
        "(`/responses`, and `/responses/compact`, which only such a target serves), "
        "`messages` (`/messages`). Their requests pass to it untranslated; by default they "
        "are translated to chat completions.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("headers")
    @classmethod
    def _clean_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if any(ch in name + header_value for ch in "\r\n\0"):
                raise ValueError(f"header '{name}' contains a line break or NUL")
        return value


class TargetConfig(Strict):
    """One place a public model can be served from."""

    provider: str = Field(description="Name of a provider under `providers`.")
    model: str = Field(min_length=1, description="The model id the upstream expects.")
    weight: float = Field(1.0, gt=0, description="Share of traffic for the `weighted` strategy.")
    timeouts: TimeoutOverrides | None = Field(
        None,
        description="This target's own `first_token`, `idle` and `total`, each overriding the "
        "model's and the provider's.",
    )
    price: PriceConfig | None = Field(
        None,
        description="What this target's tokens cost; unset: its provider's `prices` for the "
        "upstream model, if any.",
    )
    continuation: bool | None = Field(
        None,
        description="Whether this target continues an assistant prefill (see the provider's "
        "`continuation`); unset: its provider's.",
    )


class RetryConfig(Strict):
    """Retries of the same target: exponential backoff with full jitter."""

    attempts: int = Field(
        2, ge=0, le=10, description="Retries on the same target after the first try."
    )
    backoff_initial: PositiveSeconds = Field(0.25, description="First backoff ceiling, seconds.")
    backoff_max: PositiveSeconds = Field(8.0, description="Largest backoff, seconds.")
    max_retry_after: PositiveSeconds = Field(
        30.0,
        description="Longest upstream `Retry-After` the router waits out; longer moves on.",
    )
    deadline: PositiveSeconds = Field(
        120.0, description="Total budget for a request across all attempts and fallbacks."
    )


Strategy = Literal["priority", "weighted", "round_robin", "least_busy", "lowest_latency"]


class ModelConfig(Strict):
    """A public model name that clients ask for, and where it is served."""

    targets: list[TargetConfig] = Field(
        min_length=1, description="Provider targets, in priority order."
    )
    strategy: Strategy = Field(
        "priority",
        description="How to pick among targets: `priority` (in order), `weighted` (random by "
        "weight), `round_robin`, `least_busy` (fewest requests in flight, a stream counting "
        "until it ends), `lowest_latency` (moving average of time to first token).",
    )
    retries: RetryConfig = Field(
        default_factory=RetryConfig,  # type: ignore[arg-type]
        description="Retries of the same target, and the whole request's deadline.",
    )
    fallbacks: list[str] = Field(
        default_factory=list,
        description="Other public models to try, in order, when every target failed.",
    )
    context_fallback: str | None = Field(
        None,
        description="A larger-context public model to use when a request exceeds the context "
        "length; without it such a request fails with the provider's reason.",
    )
    on_failure: FailureSteps = Field(
        default_factory=FailureSteps,  # type: ignore[arg-type]
        description="What to do next, per failure class; unlisted classes keep their defaults.",
    )
    breaker: BreakerConfig | None = Field(
        None,
        description="A circuit breaker on each target of this model; without this key, none.",
    )
    timeouts: TimeoutOverrides | None = Field(
        None,
        description="This model's own `first_token`, `idle` and `total` for all its targets, "
        "each overriding the provider's; a target's own `timeouts` override these.",
    )
    stream_recovery: StreamRecovery = Field(
        "error",
        description="When a stream fails after the client got its first bytes: `error` ends it "
        "with an error event; `continue` asks another target that can continue (its "
        "`continuation`) for the rest of the answer; `regenerate` asks another target for the "
        "whole answer again and forwards only what follows the text already sent, once it has "
        "reproduced that text exactly; `continue_or_regenerate` tries continuation first. When "
        "none succeeds the stream ends with the original error, never with mixed text.",
    )
    hedge: HedgeConfig | None = Field(
        None,
        description="Start the next candidate beside a target that has not begun its answer "
        "in time, and serve whichever begins first; without this key, no hedging.",
    )
    description: str | None = Field(None, description="Free text, shown by `llm-switchyard check`.")
    rate_limits: list[str] = Field(
        default_factory=list, description="Policies for this public model (its own budget)."
    )
    budgets: list[str] = Field(
        default_factory=list, description="Names of `budgets` for this public model."
    )


class KeyConfig(Strict):
    """A client key: either the key itself (from the environment) or its sha256 digest."""

    key: SecretStr | None = Field(
        None, description="The client key, usually `${ENV_VAR}`; mutually exclusive with sha256."
    )
    sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="Hex sha256 digest of the client key, so the key itself is never stored.",
    )
    models: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Public models this key may use; `*` and shell-style globs allowed.",
    )
    rate_limits: list[str] = Field(
        default_factory=list, description="Policies for this client key (its own budget)."
    )
    budgets: list[str] = Field(
        default_factory=list, description="Names of `budgets` for this client key."
    )

    @model_validator(mode="after")
    def _one_secret(self) -> KeyConfig:
        checkpoint()  # (once a key: a paced reload may pause in a big config's validation)
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("give exactly one of `key` or `sha256`")
        return self


class RouterConfig(Strict):
    """The whole routing graph."""

    server: ServerConfig = Field(
        default_factory=ServerConfig,  # type: ignore[arg-type]
        description="How the router listens and authenticates.",
    )
    providers: dict[str, ProviderConfigModel] = Field(
        min_length=1, description="Upstream endpoints by name."
    )
    models: dict[str, ModelConfig] = Field(
        min_length=1, description="Public model names clients ask for."
    )
    keys: dict[str, KeyConfig] = Field(
        default_factory=dict, description="Client keys by name (the name appears in logs)."
    )
    rate_limits: dict[str, RateLimitPolicyConfig] = Field(
        default_factory=dict, description="Named rate-limit policies, attached by name."
    )
    budgets: dict[str, BudgetConfig] = Field(
        default_factory=dict, description="Named spend budgets, attached by name."
    )
    header_rewrites: list[HeaderRewriteConfig] = Field(
        default_factory=list,
        description="Header rules, applied in order: global, provider, model, key scope, each "
        "in file order.",
    )
    spend: SpendConfig = Field(
        default_factory=SpendConfig,  # type: ignore[arg-type]
        description="The currency of prices, and the usage ledger.",
    )
