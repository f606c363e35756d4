"""What validates of an invalid config, so that its references can still be checked.

pydantic rejects a config as a whole, but `llm-switchyard check` should list every problem in
one run: an unknown plugin or fallback must not wait until a typo elsewhere is fixed. So
each entry (the server block, a provider, a model, a key, a policy, a budget, a header rule) is
validated on its own. An invalid entry keeps its valid keys when that is enough to validate
it, and otherwise becomes an inert stand-in under its own name, so that references to it
still resolve. The paths replaced are returned: the reference checks skip anything inside
them, because their schema errors already say what is wrong there.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from router.config.models import (
    KeyConfig,
    ModelConfig,
    ProviderConfigModel,
    RouterConfig,
    ServerConfig,
)
from router.config.policies import HeaderRewriteConfig, RateLimitPolicyConfig
from router.spend.budget_config import BudgetConfig

Path_ = tuple[str | int, ...]

# Per section: the entry model, and a stand-in that validates, references nothing, and
# makes the graph's checks report nothing of its own.
_SECTIONS: dict[str, tuple[type[BaseModel], Callable[[], BaseModel]]] = {
    "providers": (
        ProviderConfigModel,
        lambda: ProviderConfigModel.model_validate({"plugin": "mock"}),
    ),
    "models": (ModelConfig, lambda: ModelConfig.model_construct(targets=[])),
    # A random digest: two stand-ins never count as the same key.
    "keys": (
        KeyConfig,
        lambda: KeyConfig.model_validate({"sha256": secrets.token_hex(32), "models": []}),
    ),
    "rate_limits": (
        RateLimitPolicyConfig,
        lambda: RateLimitPolicyConfig.model_validate({"max_concurrent": 1}),
    ),
    "budgets": (
        BudgetConfig,
        lambda: BudgetConfig.model_validate({"tokens": 1, "period": "day"}),
    ),
}


def _entry(
    model: type[BaseModel],
    raw: Any,
    path: Path_,
    replaced: set[Path_],
    stand_in: Callable[[], BaseModel],
) -> BaseModel:
    """`raw` validated; else without its invalid keys; else the stand-in."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    bad = {err["loc"][0] for err in errors if err["loc"]}
    if isinstance(raw, dict) and all(err["loc"] for err in errors):
        try:
            kept = model.model_validate({k: v for k, v in raw.items() if k not in bad})
        except ValidationError:
            pass
        else:
            replaced.update((*path, key) for key in bad)
            return kept
    replaced.add(path)
    return stand_in()


def salvage(data: dict[str, Any]) -> tuple[RouterConfig, frozenset[Path_]]:
    """A config of the valid parts of `data` (which failed validation), and what was replaced."""
    replaced: set[Path_] = set()
    fields: dict[str, Any] = {}
    if "server" in data:
        server = data["server"]
        fields["server"] = _entry(
            ServerConfig, server, ("server",), replaced, lambda: ServerConfig.model_validate({})
        )
    for section, (model, stand_in) in _SECTIONS.items():
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            replaced.add((section,))
            raw = {}
        fields[section] = {
            str(name): _entry(model, entry, (section, str(name)), replaced, stand_in)
            for name, entry in raw.items()
        }
    rules = data.get("header_rewrites", [])
    if not isinstance(rules, list):
        replaced.add(("header_rewrites",))
        rules = []
    fields["header_rewrites"] = [
        _entry(
            HeaderRewriteConfig,
            rule,
            ("header_rewrites", i),
            replaced,
            lambda: HeaderRewriteConfig.model_validate({"set": {}}),
        )
        for i, rule in enumerate(rules)
    ]
    return RouterConfig.model_construct(**fields), frozenset(replaced)
