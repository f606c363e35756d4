"""Process settings from the environment (`LLM_ROUTER_*`), separate from the routing graph.

A plain pydantic model filled from `os.environ`: pydantic-settings did the same for these
flat fields but cost 6 MB of resident memory at start-up (it pulls in dotenv and more).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

PREFIX = "LLM_ROUTER_"


class Settings(BaseModel):
    """What the process needs before it can read the config file.

    Each field reads `LLM_ROUTER_<FIELD>` (any case); keyword arguments take precedence.
    """

    model_config = ConfigDict(extra="ignore")

    config: str | None = None
    host: str | None = None
    port: int | None = None
    workers: int = 1
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = True

    def __init__(self, **values: Any) -> None:
        env = {
            name[len(PREFIX) :].lower(): value
            for name, value in os.environ.items()
            if name.upper().startswith(PREFIX)
        }
        super().__init__(**{**env, **values})
