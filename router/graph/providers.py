"""Providers of a config, built: each plugin's class found, its settings validated, and its
provider object constructed once, with what its targets inherit (timeouts, continuation),
and a model's hedging as the request path reads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

import orjson
from pydantic import ValidationError

from router.config.loader import ConfigIssue, SourceMap, did_you_mean, validation_issues
from router.config.models import (
    ProviderConfigModel,
    TargetConfig,
    TimeoutOverrides,
    TimeoutsConfig,
)
from router.config.resilience import HedgeConfig
from router.operations import native_operations
from router.plugins import KNOWN_PLUGINS, install_hint, provider_plugins
from router.types import HedgePolicy, Operation, ProviderRuntime, Timeouts
from router.upstream.provider import Provider, ProviderConfig, ProviderConfigError


def _definition_digest(model: ProviderConfigModel) -> str:
    dump = model.model_dump(mode="json")
    dump["api_key"] = model.api_key.get_secret_value() if model.api_key else None
    return hashlib.sha256(orjson.dumps(dump, option=orjson.OPT_SORT_KEYS)).hexdigest()


def build_provider(
    name: str, spec: ProviderConfigModel, source: SourceMap, issues: list[ConfigIssue]
) -> ProviderRuntime | None:
    path = ("providers", name)
    plugins = provider_plugins()
    plugin = plugins.get(spec.plugin)
    if plugin is None:
        issues.append(
            source.issue(
                (*path, "plugin"),
                f"plugin '{spec.plugin}' is not installed"
                f"{did_you_mean(spec.plugin, {*plugins, *KNOWN_PLUGINS} - {spec.plugin})}; "
                f"{install_hint(spec.plugin)}",
            )
        )
        return None
    cls = plugin.provider_class
    try:
        settings = cls.settings_model.model_validate(spec.settings)
    except ValidationError as exc:
        issues.extend(validation_issues(exc, source, (*path, "settings"), model=cls.settings_model))
        return None
    base_url = spec.base_url or cls.default_base_url
    if base_url is None:
        issues.append(
            source.issue((*path, "base_url"), f"required: plugin '{spec.plugin}' has no default")
        )
        return None
    t = spec.timeouts
    timeouts = Timeouts(connect=t.connect, first_token=t.first_token, idle=t.idle, total=t.total)
    config = ProviderConfig(
        name=name,
        base_url=base_url,
        api_key=spec.api_key.get_secret_value() if spec.api_key else None,
        headers=dict(spec.headers),
        timeouts=timeouts,
        settings=settings,
    )
    try:
        provider = cls(config)
    except ProviderConfigError as exc:
        key_path = (*path, exc.key) if exc.key else path
        issues.append(source.issue(key_path, str(exc)))
        return None
    if spec.native:
        serve_natively(provider, native_operations(spec.native))
    return ProviderRuntime(
        name,
        provider,
        _definition_digest(spec),
        spec.max_connections,
        timeouts,
        max_answer_bytes=spec.max_answer_bytes,
    )


def serve_natively(provider: Provider, ops: Collection[Operation]) -> None:
    """Have `provider` serve `ops` itself, each at its own path below the base URL (before
    its first request, when it prepares its URLs)."""
    provider.operations = provider.operations.union(ops)
    for op in ops:
        provider.urls[op] = provider.base_url + provider.paths.get(op, op.upstream_path)


_OVERRIDABLE = ("first_token", "idle", "total")  # `connect` is the provider's alone


def resolve_timeouts(
    provider: TimeoutsConfig, model: TimeoutOverrides | None, target: TimeoutOverrides | None
) -> tuple[Timeouts, dict[str, str]]:
    """A target's effective timeouts, per field: its own, else its model's, else its
    provider's (`connect` is always the provider's); and where each value came from
    (`target`, `model`, `provider` or `default`), for `llm-switchyard explain`."""
    values: dict[str, float] = {"connect": provider.connect}
    origins = {"connect": "provider" if "connect" in provider.model_fields_set else "default"}
    for name in _OVERRIDABLE:
        for level, overrides in (("target", target), ("model", model)):
            value = getattr(overrides, name) if overrides is not None else None
            if value is not None:
                values[name], origins[name] = value, level
                break
        else:
            values[name] = getattr(provider, name)
            origins[name] = "provider" if name in provider.model_fields_set else "default"
    return Timeouts(**values), origins


def continues(spec: ProviderConfigModel, target: TargetConfig, runtime: ProviderRuntime) -> bool:
    """Whether a target may be sent an assistant prefill: its own `continuation`, else its
    provider's, else what the plugin declares (`Provider.supports_continuation`)."""
    if target.continuation is not None:
        return target.continuation
    if spec.continuation is not None:
        return spec.continuation
    return runtime.provider.supports_continuation


_PERCENTILES = {"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def hedge_policy(config: HedgeConfig | None) -> HedgePolicy | None:
    """A model's `hedge`, as the request path reads it."""
    if config is None:
        return None
    percentile = _PERCENTILES[config.percentile] if config.percentile else None
    return HedgePolicy(config.after, percentile, config.floor, config.max, config.min_samples)
