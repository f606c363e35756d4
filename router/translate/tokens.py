"""Token counts for the Responses and Messages APIs, from chat completions' own.

`ChatUsage` reads a chat `usage` object once (vLLM sends `null` details, others leave them
out); each API then reports it in its own fields. The prompt estimates use the router's one
estimator (`router.upstream.usage`, the one its limits use) on the request's chat translation, so
`count_tokens` and `input_tokens` agree with what a limit will count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.translate.common import PLAIN, as_dict
from router.translate.messages_request import chat_messages
from router.translate.responses_request import responses_to_chat
from router.upstream.usage import estimate_prompt_tokens, estimate_tokens


@dataclass(frozen=True, slots=True)
class ChatUsage:
    """`prompt` includes `cached` and `cache_write`, as in chat completions."""

    prompt: int
    completion: int
    total: int
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0

    @classmethod
    def read(cls, usage: Any) -> ChatUsage | None:
        """The counts in a chat `usage` object; None when there is none."""
        if not isinstance(usage, dict):
            return None
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
        total = _count(usage.get("total_tokens")) or prompt + completion
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        cached = cache_write = reasoning = 0
        if isinstance(prompt_details, dict):
            cached = _count(prompt_details.get("cached_tokens"))
            cache_write = _count(prompt_details.get("cache_write_tokens"))
        if isinstance(completion_details, dict):
            reasoning = _count(completion_details.get("reasoning_tokens"))
        return cls(prompt, completion, total, cached, cache_write, reasoning)

    @classmethod
    def estimate(cls, prompt_tokens: int, completion_chars: int) -> ChatUsage:
        """For a stream whose upstream never reported usage."""
        completion = estimate_tokens(completion_chars)
        return cls(prompt_tokens, completion, prompt_tokens + completion)


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def responses_prompt_tokens(body: Any) -> int:
    """The router's prompt-token estimate for a Responses request (raises InvalidRequest)."""
    return estimate_prompt_tokens(responses_to_chat(body, PLAIN))


def messages_prompt_tokens(body: Any) -> int:
    """The router's prompt-token estimate for a Messages request (raises InvalidRequest).

    Also what `count_tokens` reports: the messages and the tools (server tools too, by
    name); `max_tokens` and the other settings are not read."""
    body = as_dict(body, "body")
    return estimate_prompt_tokens({"messages": chat_messages(body), "tools": body.get("tools")})


def count_tokens(body: Any) -> dict[str, int]:
    """`POST /v1/messages/count_tokens`: `{"input_tokens": N}`, the router's estimate."""
    return {"input_tokens": messages_prompt_tokens(body)}


def input_tokens(body: Any) -> dict[str, Any]:
    """`POST /v1/responses/input_tokens`: OpenAI's `response.input_tokens` object with the
    router's estimate, the one its limits count for the same request."""
    return {"object": "response.input_tokens", "input_tokens": responses_prompt_tokens(body)}


def chat_usage(
    prompt: Any, completion: Any, cached: Any = 0, cache_write: Any = 0
) -> dict[str, Any]:
    """A chat `usage` object, what the router's limits, logs and ledger read, from another
    API's counts (a native target's answer)."""
    prompt, completion = _count(prompt), _count(completion)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached, cache_write = _count(cached), _count(cache_write)
    if cached or cache_write:
        usage["prompt_tokens_details"] = {
            "cached_tokens": cached,
            "cache_write_tokens": cache_write,
        }
    return usage


def usage_of_response(usage: Any) -> dict[str, Any] | None:
    """The chat usage of a Responses `usage` object (None when there is none)."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return chat_usage(usage.get("input_tokens"), usage.get("output_tokens"), cached)


def usage_of_message(usage: Any) -> dict[str, Any] | None:
    """The chat usage of a Messages `usage` object: Anthropic leaves cache reads and writes
    out of `input_tokens`, chat counts them in."""
    if not isinstance(usage, dict):
        return None
    read = _count(usage.get("cache_read_input_tokens"))
    write = _count(usage.get("cache_creation_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + read + write
    return chat_usage(prompt, usage.get("output_tokens"), read, write)
