"""YAML shapes for rate-limit policies, their backend, and header rewrite rules.

Shapes and ranges only: policy names, placeholders and header names that depend on the rest
of the graph are checked when it is compiled (`router.limits.policies.compile_limits`,
`router.graph.rewrites`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from router.config.strict import Strict

Count = Annotated[int, Field(ge=1, le=10**12)]


class RateLimitPolicyConfig(Strict):
    """A named budget. Attached to a key, model, provider or globally; each attachment point
    (each key, each model, each provider, the whole router) gets its own counters."""

    requests_per_second: Count | None = Field(None, description="Requests in any 1 s window.")
    requests_per_minute: Count | None = Field(None, description="Requests in any 60 s window.")
    requests_per_hour: Count | None = Field(None, description="Requests in any hour.")
    requests_per_day: Count | None = Field(None, description="Requests in any 24 h window.")
    tokens_per_minute: Count | None = Field(
        None,
        description="Prompt plus completion tokens in any 60 s window: estimated before the "
        "call (prompt estimate + `max_tokens` for each of its `n` answers), corrected with the "
        "upstream's reported usage.",
    )
    tokens_per_day: Count | None = Field(None, description="Tokens in any 24 h window.")
    max_concurrent: int | None = Field(
        None, ge=1, le=10**6, description="Requests in flight at once (streams until they end)."
    )
    on_limit: Literal["reject", "wait", "fallback"] = Field(
        "reject",
        description="When the budget is spent: `reject` with 429; for provider policies also "
        "`wait` (up to `max_wait`, never past the request deadline) or `fallback` (try the "
        "next target or fallback model). Key, model and global policies always reject.",
    )
    max_wait: float = Field(
        10.0, gt=0, le=3600, description="Longest wait in seconds for `on_limit: wait`."
    )
    on_error: Literal["open", "closed"] | None = Field(
        None,
        description="When the shared backend is unreachable: `open` admits, `closed` rejects "
        "with 503. Default: `server.rate_limit_backend.on_error`.",
    )

    @model_validator(mode="after")
    def _some_limit(self) -> RateLimitPolicyConfig:
        counts = (
            self.requests_per_second,
            self.requests_per_minute,
            self.requests_per_hour,
            self.requests_per_day,
            self.tokens_per_minute,
            self.tokens_per_day,
            self.max_concurrent,
        )
        if all(c is None for c in counts):
            raise ValueError(
                "a policy needs at least one limit (requests_per_*, tokens_per_* or max_concurrent)"
            )
        return self


class RateLimitBackendConfig(Strict):
    """Where counters live: in this process (default) or in Redis, shared by all replicas."""

    url: str | None = Field(
        None,
        description="`redis://host:port/db` (or `rediss://`) to share budgets across replicas; "
        "unset keeps counters in memory (one process, exact). Needs `llm-switchyard[redis]`.",
    )
    on_error: Literal["open", "closed"] = Field(
        "open",
        description="When Redis is unreachable: `open` admits requests, `closed` rejects them "
        "with 503. Either way a warning is logged and counted; Redis is retried by itself.",
    )
    key_prefix: str = Field(
        "llm-switchyard",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:{}\-]+$",
        description="Prefix of every Redis key, so several routers can share one Redis.",
    )
    timeout: float = Field(
        0.5, gt=0, le=10, description="Seconds to wait for Redis before treating it as down."
    )
    lease_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Life of a `max_concurrent` slot in Redis, renewed every third of it "
        "while its request lives: a replica that dies holds its slots at most this long. "
        "At least 3 x `timeout`.",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _renewable(self) -> RateLimitBackendConfig:
        if self.lease_seconds < 3 * self.timeout:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must be at least 3 x timeout "
                f"({self.timeout:g}): a renewal that times out must leave time for the next"
            )
        return self


Scope = Literal["global", "provider", "model", "key"]


class HeaderRewriteConfig(Strict):
    """One header rule. Values may use `${ENV}` and the placeholders `{key}`, `{request_id}`,
    `{model}`, `{provider}` and `{upstream_model}` (`{{` and `}}` for literal braces)."""

    scope: Scope = Field(
        "global",
        description="Which requests the rule applies to: `global`, or those of one "
        "`provider`, `model` (public model) or client `key`, named by `name`.",
    )
    name: str | None = Field(
        None, description="The provider, model or key name; required unless `scope: global`."
    )
    direction: Literal["request", "response"] = Field(
        "request",
        description="`request`: headers sent upstream; `response`: headers returned to the client.",
    )
    set: dict[str, str] | None = Field(None, description="Headers to set (replacing any).")
    append: dict[str, str] | None = Field(
        None, description="Values to append to a header (comma-joined), or to set if absent."
    )
    remove: list[str] | None = Field(None, description="Headers to remove.")
    rename: dict[str, str] | None = Field(None, description="`old: new` header renames.")
    copy_: dict[str, str] | None = Field(
        None, alias="copy", description="`from: to`: copy a header's value to another header."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_action(self) -> HeaderRewriteConfig:
        actions = [self.set, self.append, self.remove, self.rename, self.copy_]
        if sum(a is not None for a in actions) != 1:
            raise ValueError("give exactly one of set, append, remove, rename, copy")
        if (self.scope == "global") != (self.name is None):
            raise ValueError("`name` is required for provider/model/key scope, and only there")
        return self
