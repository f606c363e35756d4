"""Bring LiteLLM's answers back to the OpenAI shapes clients validate against.

Observed on LiteLLM 1.106.2: responses drop `logprobs` and move `refusal` into
`provider_specific_fields`; stream chunks omit `finish_reason` until the last one and the
usage chunk carries `choices: [{"index": 0, "delta": {}}]` instead of `[]`. `usage.cost`
and `completion_tokens_details.text_tokens` are extra fields the OpenAI schema allows, so
they pass through.
"""

from __future__ import annotations

from typing import Any

_EXTRA = "provider_specific_fields"


def chat_response(data: dict[str, Any]) -> dict[str, Any]:
    """A `chat.completion` with LiteLLM's `provider_specific_fields` folded back: a refusal
    it moved there returns to `message.refusal`. (The core adds whatever else the OpenAI
    schema requires and is still missing, such as `logprobs`.)"""
    choices = data.get("choices")
    if not isinstance(choices, list):
        return data
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        choice.pop(_EXTRA, None)
        message = choice.get("message")
        if isinstance(message, dict):
            extra = message.pop(_EXTRA, None)
            if "refusal" not in message and isinstance(extra, dict) and "refusal" in extra:
                message["refusal"] = extra["refusal"]
    return data


def _is_usage_only(choice: Any) -> bool:
    return (
        isinstance(choice, dict)
        and not choice.get("delta")
        and choice.get("finish_reason") is None
        and not choice.get("text")
    )


def chunk(data: dict[str, Any]) -> dict[str, Any]:
    """A stream chunk: the usage chunk gets `choices: []`, tool calls get their `index`.

    The core has already filled in missing `finish_reason` and `delta` keys.
    """
    choices = data.get("choices")
    if not choices:
        return data
    if data.get("usage") and all(_is_usage_only(c) for c in choices):
        data["choices"] = []
        return data
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        choice.pop(_EXTRA, None)
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            continue
        delta.pop(_EXTRA, None)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict) and "index" not in call:
                    call["index"] = position
    return data
