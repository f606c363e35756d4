"""The base every config model shares: unknown keys are errors and a loaded config is frozen."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveSeconds = Annotated[float, Field(gt=0, le=86400)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
