"""Pure translation between OpenAI shapes and Telnyx Inference's, one quirk per function.

Every function takes the client's values and returns new ones; nested values are replaced,
never mutated, because the core shares the client's body across attempts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: Request fields that carry someone's credential for a model Telnyx proxies (OpenAI, xAI):
#: `openai_api_key` (2024-2025 schema) and `api_key_ref` (2026 schema).
CLIENT_KEY_FIELDS = ("openai_api_key", "api_key_ref")


def drop_client_keys(body: dict[str, Any]) -> None:
    """Remove client-supplied upstream credentials. Values are never read, let alone logged."""
    for name in CLIENT_KEY_FIELDS:
        body.pop(name, None)


def image_parts(messages: Any) -> Any:
    """Telnyx's content parts take `image_url` as a string; OpenAI sends `{"url": ...}`.

    Returns `messages` itself when nothing needs changing (the common, text-only case).
    """
    if not isinstance(messages, list):
        return messages
    out: list[Any] | None = None
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        parts = [_image_part(part) for part in content]
        if any(new is not old for new, old in zip(parts, content, strict=True)):
            if out is None:
                out = list(messages)
            out[i] = {**message, "content": parts}
    return messages if out is None else out


def _image_part(part: Any) -> Any:
    if not isinstance(part, dict) or part.get("type") != "image_url":
        return part
    image = part.get("image_url")
    if isinstance(image, dict) and isinstance(image.get("url"), str):
        return {**part, "image_url": image["url"]}
    return part


def response_format(body: dict[str, Any]) -> None:
    """Telnyx knows `text` and `json_object`; a `json_schema` format becomes `guided_json`.

    The vendor's docs point there themselves: "For control over the schema, use guided_json".
    A client's own `guided_json` wins.
    """
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    del body["response_format"]
    if isinstance(schema, dict) and "guided_json" not in body:
        body["guided_json"] = schema
    elif "guided_json" not in body:
        body["response_format"] = {"type": "json_object"}


def max_tokens(body: dict[str, Any]) -> None:
    """`max_completion_tokens` is not in Telnyx's schema (extra fields are ignored there), so
    the client's limit would silently vanish: send it as `max_tokens`."""
    if "max_completion_tokens" in body:
        value = body.pop("max_completion_tokens")
        if "max_tokens" not in body and value is not None:
            body["max_tokens"] = value


def tool_call_indexes(chunk: dict[str, Any]) -> None:
    """vLLM-style servers may omit `index` on streamed tool calls; OpenAI requires it."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        if isinstance(calls, list) and any(isinstance(c, dict) and "index" not in c for c in calls):
            delta["tool_calls"] = [
                {"index": i, **c} if isinstance(c, dict) and "index" not in c else c
                for i, c in enumerate(calls)
            ]


def created_seconds(value: Any) -> int:
    """`created` as unix seconds: an integer (2025 schema) or ISO-8601 text (2026 schema)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return 0
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp())
    return 0


def model_object(item: dict[str, Any]) -> dict[str, Any]:
    """A Telnyx `ModelMetadata` as an OpenAI model object; extra metadata is kept."""
    owner = item.get("owned_by") or item.get("organization") or "telnyx"
    return {
        **item,
        "object": "model",
        "created": created_seconds(item.get("created")),
        "owned_by": str(owner),
    }
