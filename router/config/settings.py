"""Process settings from the environment (`LLM_ROUTER_*`), separate from the routing graph."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the process needs before it can read the config file."""

    model_config = SettingsConfigDict(env_prefix="LLM_ROUTER_", extra="ignore")

    config: str | None = None
    host: str | None = None
    port: int | None = None
    workers: int = 1
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = True
