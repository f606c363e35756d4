"""Client keys of a config, compiled: digests, allow-lists and the `/v1/models` body each
key gets (each model with the operations it serves), and the anonymous identity of
`server.auth: none`."""

from __future__ import annotations

import fnmatch
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import orjson

from router.checkpoints import checkpoint
from router.config.loader import ConfigIssue, SourceMap, did_you_mean
from router.config.models import RouterConfig
from router.operations import names as operation_names
from router.types import ClientKey, Route


def model_object(name: str, created: int, route: Route | None) -> dict[str, Any]:
    """A model as `/v1/models` lists it: the OpenAI model object, and the operations its
    targets serve (`operations`, an extra field the OpenAI schema allows)."""
    ops = operation_names(route.operations) if route is not None else []
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "llm-switchyard",
        "operations": ops,
    }


def _models_body(objects: Mapping[str, dict[str, Any]], names: list[str]) -> bytes:
    return orjson.dumps({"object": "list", "data": [objects[n] for n in names]})


def _matching(pattern: str, models: Mapping[str, object]) -> list[str]:
    """The models `pattern` names: itself when it is one (a dict look-up), else the glob's."""
    if not any(ch in pattern for ch in "*?["):
        return [pattern] if pattern in models else []
    return fnmatch.filter(models, pattern)


def compile_keys(
    config: RouterConfig,
    source: SourceMap,
    issues: list[ConfigIssue],
    routes: Mapping[str, Route] | None = None,
) -> tuple[dict[bytes, ClientKey], ClientKey | None]:
    """The keys by digest, and the anonymous identity when `server.auth: none`."""
    created = int(time.time())
    found = routes or {}
    objects = {name: model_object(name, created, found.get(name)) for name in config.models}

    keys: dict[bytes, ClientKey] = {}
    matches: dict[str, list[str]] = {}  # per pattern: the models it names, matched once
    # Per allow-list: the one frozenset and `/v1/models` body its keys share, so that
    # 10,000 keys allowed `*` hold one list of the models, not 10,000; and per list of
    # patterns as written, that share, so that the models of `*` are gathered once, not
    # once per key (2,500 keys x 1,000 models were a third of a big config's compile).
    lists: dict[frozenset[str], tuple[frozenset[str], bytes]] = {}
    written: dict[tuple[str, ...], tuple[frozenset[str], bytes]] = {}
    for name, key in config.keys.items():
        checkpoint()
        patterns = tuple(key.models)
        for i, pattern in enumerate(patterns):
            matched = matches.get(pattern)
            if matched is None:
                matched = matches[pattern] = _matching(pattern, config.models)
            if not matched and not any(ch in pattern for ch in "*?["):
                issues.append(
                    source.issue(
                        ("keys", name, "models", i),
                        f"unknown model '{pattern}'{did_you_mean(pattern, config.models)}",
                    )
                )
        if key.key is not None:
            digest = hashlib.sha256(key.key.get_secret_value().encode()).digest()
        else:
            digest = bytes.fromhex(key.sha256 or "")
        if digest in keys:
            issues.append(
                source.issue(("keys", name), f"same key as '{keys[digest].name}'; keys must differ")
            )
            continue
        shared = written.get(patterns)
        if shared is None:
            names = frozenset(model for pattern in patterns for model in matches[pattern])
            shared = lists.get(names)
            if shared is None:
                shared = lists[names] = (names, _models_body(objects, sorted(names)))
            written[patterns] = shared
        keys[digest] = ClientKey(name, digest, *shared)

    anonymous = None
    if config.server.auth == "none":
        everything = frozenset(config.models)
        anonymous = ClientKey(
            "anonymous", b"", everything, _models_body(objects, sorted(everything))
        )
    elif not keys and not issues:
        issues.append(
            source.issue(
                ("server", "auth"),
                "authentication is on but no `keys` are configured "
                "(add keys, or set `server.auth: none` for a trusted network)",
            )
        )
    return keys, anonymous
