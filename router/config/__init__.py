"""Config: pydantic models of the YAML routing graph and their loader."""

from router.config.loader import ConfigError, ConfigIssue, load_config, load_config_text
from router.config.models import RouterConfig

__all__ = ["ConfigError", "ConfigIssue", "RouterConfig", "load_config", "load_config_text"]
