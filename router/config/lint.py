"""Warnings: configs that are valid but almost surely wrong.

`llm-switchyard check` prints them and `serve` logs them, at start-up and on each reload; with
`llm-switchyard check --strict` or `server.strict_config: true` each one is an error. They are
looked for once a config has no errors, since a config with errors is checked only in part.
"""

from __future__ import annotations

import fnmatch

from router.checkpoints import checkpoint
from router.config.loader import ConfigIssue, SourceMap, by_line
from router.config.models import RouterConfig
from router.config.secrets import secret_fields
from router.spend.prices import price_warnings

MIN_ADMIN_KEY = 16


def _reference_hint(path: tuple[str | int, ...]) -> str:
    """How the secret at `path` is written as a reference."""
    match path:
        case ("keys", _, "key"):
            return "reference it, `key: ${APP_KEY}`, or give its `sha256` instead"
        case ("server", "admin_key"):
            return "reference it, `admin_key: ${LLM_ROUTER_ADMIN_KEY}`"
        case ("providers", _, "headers", _) | ("header_rewrites", _, _, _):
            return "reference it, e.g. `Bearer ${UPSTREAM_TOKEN}`"
        case ("providers", _, "base_url"):
            return "reference the password, `https://user:${UPSTREAM_PASSWORD}@host/v1`"
        case ("server", _, _):
            return "reference the URL or its password, `redis://:${REDIS_PASSWORD}@host:6379/0`"
        case ("spend", "ledger", "url"):
            return "reference the password, `postgresql://user:${LEDGER_PASSWORD}@host/db`"
    return "reference it, `api_key: ${UPSTREAM_API_KEY}`"


def _inline_secrets(config: RouterConfig, source: SourceMap) -> list[ConfigIssue]:
    return [
        source.issue(path, f"a secret written inline: {_reference_hint(path)}", "warning")
        for path, _ in secret_fields(config)
        if path not in source.referenced
    ]


def _keys_without_models(config: RouterConfig, source: SourceMap) -> list[ConfigIssue]:
    names_some: dict[str, bool] = {}  # per pattern, matched once however many keys share it

    def matches(pattern: str) -> bool:
        checkpoint()  # (once a key's pattern)
        found = names_some.get(pattern)
        if found is None:
            if any(ch in pattern for ch in "*?["):
                found = bool(fnmatch.filter(config.models, pattern))
            else:
                found = pattern in config.models
            names_some[pattern] = found
        return found

    return [
        source.issue(
            ("keys", name, "models"),
            "matches no model, so this key can call nothing",
            "warning",
        )
        for name, key in config.keys.items()
        if not any(matches(pattern) for pattern in key.models)
    ]


def _unattached(
    config: RouterConfig, source: SourceMap, field: str, what: str
) -> list[ConfigIssue]:
    """The named `rate_limits` policies or `budgets` (`field`) that neither the server nor
    any provider, model or key names: they apply to nothing."""
    attached = set(getattr(config.server, field))
    for owners in (config.providers, config.models, config.keys):
        for owner in owners.values():
            attached.update(getattr(owner, field))
    return [
        source.issue(
            (field, name),
            f"{what}: name it in `server.{field}` or in a provider's, model's or key's `{field}`",
            "warning",
        )
        for name in getattr(config, field)
        if name not in attached
    ]


def _short_admin_key(config: RouterConfig, source: SourceMap) -> list[ConfigIssue]:
    key = config.server.admin_key
    if key is None or len(key.get_secret_value()) >= MIN_ADMIN_KEY:
        return []
    message = (
        f"shorter than {MIN_ADMIN_KEY} characters: use a long random key "
        "(e.g. `openssl rand -hex 32`)"
    )
    return [source.issue(("server", "admin_key"), message, "warning")]


def config_warnings(config: RouterConfig, source: SourceMap) -> list[ConfigIssue]:
    """Every warning for a config that has no errors, sorted by line."""
    return by_line(
        [
            *_inline_secrets(config, source),
            *_keys_without_models(config, source),
            *_unattached(config, source, "rate_limits", "policy attached to nothing"),
            *_unattached(
                config, source, "budgets", "budget attached to nothing, so it limits nothing"
            ),
            *_short_admin_key(config, source),
            *price_warnings(config, source),
        ]
    )
