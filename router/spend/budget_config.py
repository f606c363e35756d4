"""YAML shape of a budget policy (`budgets:`): money or tokens per period, and what happens
when it is spent. Names, fallback models and prices are checked when the graph is compiled
(`router.spend.budget_table`)."""

from __future__ import annotations

import zoneinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class BudgetConfig(BaseModel):
    """A named budget. Attached globally (`server.budgets`), to a key, a model or a
    provider; each place it is attached (each key, each model, ...) spends its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: float | None = Field(
        None,
        gt=0,
        le=1_000_000_000,
        description="Money per period, in `spend.currency`: every target the budget applies "
        "to needs a price. Give `amount` or `tokens`.",
    )
    tokens: int | None = Field(
        None,
        ge=1,
        le=10**15,
        description="Prompt plus completion tokens per period (an operation without tokens "
        "counts its own unit, as `tokens_per_*` rate limits do).",
    )
    period: Literal["day", "week", "month"] | None = Field(
        None,
        description="A calendar period in `timezone`: it starts afresh at midnight, on "
        "Monday, on the 1st. Give `period` or `window`.",
    )
    timezone: str = Field(
        "UTC", description="IANA time zone of `period` (`Europe/Paris`, `America/New_York`)."
    )
    window: int | None = Field(
        None,
        ge=60,
        le=366 * 86_400,
        description="A rolling window in seconds instead of a calendar period: what was spent "
        "in any such window.",
    )
    on_exceeded: Literal["reject", "fallback"] = Field(
        "reject",
        description="When the budget cannot pay for a request: `reject` with 429 "
        "`budget_exceeded` and `Retry-After` at the period's reset; `fallback` sends it to "
        "`fallback` (a cheaper model) instead, if the key may use it, else rejects. Provider "
        "budgets with `fallback` skip that provider's targets.",
    )
    fallback: str | None = Field(
        None, description="The model `on_exceeded: fallback` sends requests to."
    )
    output_tokens: int = Field(
        1024,
        ge=0,
        le=10_000_000,
        description="Completion tokens a request is assumed to use at admission when it sets "
        "no `max_tokens` (or `max_completion_tokens`); its reported usage then replaces the "
        "estimate.",
    )
    on_error: Literal["open", "closed"] | None = Field(
        None,
        description="When the shared backend is unreachable: `open` admits, `closed` rejects "
        "with 503. Default: `server.rate_limit_backend.on_error`.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (an IANA name: Europe/Paris)") from None
        return value

    @model_validator(mode="after")
    def _complete(self) -> BudgetConfig:
        if (self.amount is None) == (self.tokens is None):
            raise ValueError("give exactly one of `amount` (money) or `tokens`")
        if (self.period is None) == (self.window is None):
            raise ValueError("give exactly one of `period` (day, week, month) or `window`")
        if self.fallback is not None and self.on_exceeded != "fallback":
            raise ValueError("`fallback` is the model for `on_exceeded: fallback`, and only it")
        return self
