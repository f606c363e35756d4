"""Token estimates for when an upstream reports no usage (some never do in streams).

Four characters a token is the usual rule of thumb for English; the estimate only stands in
until the upstream's own count is known, and is never used when the upstream reports one.
"""

from __future__ import annotations

from typing import Any

import orjson

CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    """A token per four characters, rounded up: 0 for none, at least 1 for any."""
    return -(-chars // CHARS_PER_TOKEN) if chars > 0 else 0


def completion_choices(body: dict[str, Any]) -> int:
    """How many completions a request asks for: its `n`, or a completion's `best_of` where
    that is more (the upstream makes, and bills, every one of them); 1 by default. Each may
    be as long as `max_tokens` allows, so estimates of what a request may use multiply by it."""
    n = body.get("n")
    count = n if type(n) is int and n > 1 else 1
    best = body.get("best_of")
    return best if type(best) is int and best > count else count


# An image part's tokens, by its `detail`: OpenAI bills a low-detail image 85 tokens and a
# high-detail one 85 plus 170 a 512-pixel tile of it scaled to 768 pixels on its short side:
# 765 for a square image, up to 1,445 for a long one. Its size is not read (a URL, or a data
# URL to decode), so a detailed image is taken for a square one.
LOW_DETAIL_IMAGE_TOKENS = 85
DETAILED_IMAGE_TOKENS = 765


def _image_length(part: dict[str, Any]) -> int:
    """An image part (`image_url`, which the Responses and Messages APIs' images translate
    to) as the characters of its estimated tokens."""
    image = part.get("image_url")
    low = isinstance(image, dict) and image.get("detail") == "low"
    return (LOW_DETAIL_IMAGE_TOKENS if low else DETAILED_IMAGE_TOKENS) * CHARS_PER_TOKEN


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_length(item) for item in value)
    if isinstance(value, dict):
        if value.get("type") == "image_url":
            return _image_length(value)
        return _text_length(value.get("text") or value.get("content") or "")
    return 0


def _json_length(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return 0


def _str_length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _calls_length(calls: Any) -> int:
    """The tool calls of an assistant message (or its legacy `function_call`) as the model
    reads them back: each function's name and arguments."""
    chars = 0
    for call in calls if isinstance(calls, list) else [calls]:
        if isinstance(call, dict):
            function = call.get("function", call)
            if isinstance(function, dict):
                arguments = function.get("arguments")
                chars += _str_length(function.get("name")) + (
                    len(arguments) if isinstance(arguments, str) else _json_length(arguments)
                )
    return chars


def _tool_length(tool: Any) -> int:
    """A tool definition as the model reads it: its name, description and parameter schema,
    the same in every API's shape of it (chat's `function`, the Responses API's and the
    Messages API's flat ones, whose schema is `input_schema`)."""
    if not isinstance(tool, dict):
        return 0
    spec = tool.get("function")
    if not isinstance(spec, dict):
        spec = tool
    schema = spec.get("parameters", spec.get("input_schema"))
    return (
        _str_length(spec.get("name"))
        + _str_length(spec.get("description"))
        + (_json_length(schema) if schema is not None else 0)
    )


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens of a chat, completion or embedding request: the messages' text and
    images, the tool calls they carry and the tools offered (which an agent's requests are
    mostly made of); each message costs ~4 more. (A loop, not a generator: budgets estimate
    every request they admit.)"""
    if "messages" in body:
        messages = body.get("messages") or []
        chars = 0
        for message in messages:
            if type(message) is dict:
                content = message.get("content")
                chars += len(content) if type(content) is str else _text_length(content)
            elif isinstance(message, dict):
                chars += _text_length(message.get("content"))
            else:
                continue
            if len(message) > 2:  # (a role and a content alone carry no calls)
                calls = message.get("tool_calls") or message.get("function_call")
                if calls:
                    chars += _calls_length(calls)
        tools = body.get("tools") or body.get("functions")
        if tools and isinstance(tools, list):
            for tool in tools:
                chars += _tool_length(tool)
        return estimate_tokens(chars) + 4 * len(messages)
    return estimate_tokens(_text_length(body.get("prompt", body.get("input", ""))))
