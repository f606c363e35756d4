"""Token estimates for when an upstream reports no usage (some never do in streams).

Four characters a token is the usual rule of thumb for English; the estimate only stands in
until the upstream's own count is known, and is never used when the upstream reports one.
"""

from __future__ import annotations

from typing import Any

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


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_length(item) for item in value)
    if isinstance(value, dict):
        return _text_length(value.get("text") or value.get("content") or "")
    return 0


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens of a chat, completion or embedding request; each message costs ~4 more.
    (A loop, not a generator: budgets estimate every request they admit.)"""
    if "messages" in body:
        messages = body.get("messages") or []
        chars = 0
        for message in messages:
            if type(message) is dict:
                content = message.get("content")
                chars += len(content) if type(content) is str else _text_length(content)
            elif isinstance(message, dict):
                chars += _text_length(message.get("content"))
        return estimate_tokens(chars) + 4 * len(messages)
    return estimate_tokens(_text_length(body.get("prompt", body.get("input", ""))))
