"""The active config as admin output shows it: keys as written, every secret as `***`."""

from __future__ import annotations

from typing import Any

from router.config.secrets import (
    is_sensitive_header,
    mask_paths,
    mask_url_password,
    secret_settings,
)
from router.observability import logs
from router.types import RoutingGraph


def masked_config(graph: RoutingGraph) -> dict[str, Any]:
    """The active config as JSON, keys as written, secrets as `***`: SecretStr fields (a
    plugin's settings' too), credential headers, URL passwords, and every value that came
    from `${ENV}`, however short."""
    dump = graph.config.model_dump(mode="json", by_alias=True)
    for name, provider in dump.get("providers", {}).items():
        if provider.get("api_key") is not None:
            provider["api_key"] = logs.MASK
        provider["base_url"] = mask_url_password(provider.get("base_url"), logs.MASK)
        headers = provider.get("headers") or {}
        for header in headers:
            if is_sensitive_header(header):
                headers[header] = logs.MASK
        runtime = graph.providers.get(name)
        if runtime is not None:
            settings = secret_settings(runtime.provider.settings)
            mask_paths(provider.get("settings"), (path for path, _ in settings), logs.MASK)
    for rule in dump.get("header_rewrites", []):
        for values in (rule.get("set") or {}, rule.get("append") or {}):
            for header in values:
                if is_sensitive_header(header):
                    values[header] = logs.MASK
    for key in dump.get("keys", {}).values():
        if key.get("key") is not None:
            key["key"] = logs.MASK
    server = dump.get("server", {})
    if server.get("admin_key") is not None:
        server["admin_key"] = logs.MASK
    backend = server.get("rate_limit_backend", {})
    backend["url"] = mask_url_password(backend.get("url"), logs.MASK)
    mask_paths(dump, graph.from_env, logs.MASK)
    return dump
