"""YAML shapes for prices and the usage ledger (`spend:`)."""

from __future__ import annotations

import importlib.util

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PER_MILLION = "Per million {} tokens, in `spend.currency`"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceConfig(_Strict):
    """What one target's answers cost, in `spend.currency`: its tokens per million, and for
    the operations that do not count tokens, per image, per second of audio transcribed and
    per million characters spoken."""

    input: float | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description=PER_MILLION.format("prompt")
        + "; required unless a `per_*` price is given (then unset means 0).",
    )
    cached_input: float | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description=PER_MILLION.format("cached prompt")
        + " (the upstream's `prompt_tokens_details.cached_tokens`); unset: the `input` price.",
    )
    output: float | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description=PER_MILLION.format("completion")
        + " (`0` for embeddings); required unless a `per_*` price is given (then unset means 0).",
    )
    per_image: float | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="Per image generated, edited or varied (`/v1/images/generations`, "
        "`/v1/images/edits`, `/v1/images/variations`: each item of the answer's `data`, or "
        "for a streamed answer the images asked for), in `spend.currency`; unset: images are "
        "not priced.",
    )
    per_audio_second: float | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="Per second of audio transcribed or translated "
        "(`/v1/audio/transcriptions`, `/v1/audio/translations`), in `spend.currency`: the "
        "seconds the upstream's answer reports (`usage.seconds`, else `duration`), else the "
        "upload's own length; unset: transcriptions and translations are not priced.",
    )
    per_million_characters: float | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="Per million characters of `input` spoken (`/v1/audio/speech`), in "
        "`spend.currency`; unset: speech is not priced.",
    )

    @model_validator(mode="after")
    def _tokens_or_units(self) -> PriceConfig:
        units = (self.per_image, self.per_audio_second, self.per_million_characters)
        if all(u is None for u in units) and (self.input is None or self.output is None):
            raise ValueError(
                "give `input` and `output` (per million tokens), or a `per_image`, "
                "`per_audio_second` or `per_million_characters` price"
            )
        return self


DEFAULT_LEDGER_URL = "sqlite:///llm-switchyard-usage.db"


class LedgerConfig(_Strict):
    """Where the usage ledger is written: one row per request, off the request path."""

    url: str = Field(
        DEFAULT_LEDGER_URL,
        description="`sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (a file, "
        "created with its folder if missing; the default is relative to the working "
        "directory), or `postgresql://user:pass@host:5432/db` for many replicas (needs "
        "`llm-switchyard[postgres]`).",
    )
    batch_size: int = Field(
        500, ge=1, le=100_000, description="Rows written per database round trip, at most."
    )
    flush_interval: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="Seconds a row may wait before it is written when fewer than "
        "`batch_size` are queued.",
    )
    queue_size: int = Field(
        100_000,
        ge=1,
        le=10_000_000,
        description="Rows held in memory while the database is slow or down; beyond it the "
        "oldest are dropped, counted in `llm_router_ledger_rows_dropped_total` and logged.",
    )
    timeout: float = Field(
        5.0, gt=0, le=300, description="Seconds to wait for the database on each write."
    )
    shutdown_flush: float = Field(
        5.0,
        ge=0,
        le=600,
        description="On shutdown, seconds to go on writing the rows still queued.",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value.startswith("sqlite:///"):
            if value == "sqlite:///":
                raise ValueError("give a file: `sqlite:///usage.db`")
            return value
        if value.startswith(("postgresql://", "postgres://")):
            if importlib.util.find_spec("asyncpg") is None:
                raise ValueError(
                    "a PostgreSQL ledger needs asyncpg: pip install 'llm-switchyard[postgres]'"
                )
            return value
        raise ValueError("must start with sqlite:/// or postgresql://")


class SpendConfig(_Strict):
    """Prices' currency and the usage ledger."""

    currency: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of every price and cost (`USD`, `EUR`, ...); prices are "
        "not converted.",
    )
    ledger: LedgerConfig | None = Field(
        None,
        description="The usage ledger: off without this key; `ledger: {}` writes to "
        f"`{DEFAULT_LEDGER_URL.removeprefix('sqlite:///')}` in the working directory.",
    )
