"""`GET /v1/models` and `/v1/models/{id}` as Anthropic's API answers them, for clients that
send `anthropic-version` (the `anthropic` SDKs always do): model objects of `type: model`
with `display_name` and `created_at`, a page of them (`limit`, `after_id`, `before_id`)
with `first_id`, `last_id` and `has_more`, as the SDKs read and page through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from router import errors

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def wants_anthropic(headers: Mapping[str, str]) -> bool:
    """The request comes from an Anthropic client (it names the API version it speaks)."""
    return "anthropic-version" in headers


def model_info(name: str, created: float) -> dict[str, Any]:
    """Anthropic's `ModelInfo` for a public model (its name is also its display name)."""
    at = datetime.fromtimestamp(int(created), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": name, "display_name": name, "created_at": at}


def _limit(query: Mapping[str, str]) -> int:
    text = query.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise errors.InvalidRequest(
            f"limit: must be an integer from 1 to {MAX_LIMIT}", param="limit"
        )
    return int(text)


def models_page(names: list[str], created: float, query: Mapping[str, str]) -> dict[str, Any]:
    """One page of `names` (sorted) after `after_id` or before `before_id`, `limit` long."""
    limit = _limit(query)
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise errors.InvalidRequest("give after_id or before_id, not both", param="before_id")
    if before is not None:
        end = _position(names, before, "before_id")
        start = max(0, end - limit)
        more = start > 0
    else:
        start = _position(names, after, "after_id") + 1 if after is not None else 0
        end = min(len(names), start + limit)
        more = end < len(names)
    page = [model_info(name, created) for name in names[start:end]]
    return {
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": more,
    }


def _position(names: list[str], name: str, param: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        raise errors.InvalidRequest(f"{param}: no model '{name}'", param=param) from None
