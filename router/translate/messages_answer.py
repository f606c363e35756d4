"""A chat completion as an Anthropic Messages `message`.

    message.reasoning_content (or `reasoning`) → a `thinking` block (empty `signature`),
                               only when the request enabled thinking, as Anthropic does
    message.content          → a `text` block (none for empty text)
    message.refusal          → a `text` block, and `stop_reason: "refusal"`
    message.tool_calls       → `tool_use` blocks: the chat call's id, `input` parsed from
                               its arguments (invalid JSON is a `MalformedResponse`)
    finish_reason            → stop_reason: stop → end_turn, or stop_sequence when the
                               upstream names the stop string it matched (vLLM's
                               `choices[].stop_reason`, SGLang's `matched_stop`) and it is
                               one of the request's `stop_sequences`; length → max_tokens;
                               tool_calls → tool_use; content_filter → refusal
    usage                    → input_tokens (prompt tokens less cache reads and writes, as
                               Anthropic counts them), output_tokens,
                               cache_read_input_tokens, cache_creation_input_tokens;
                               estimated as the router does when the answer has none

`model` is the upstream's, as in the router's chat answers. Only choice 0 is read.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.errors import MalformedResponse
from router.translate.common import new_id
from router.translate.messages_request import show_thinking
from router.translate.tokens import ChatUsage
from router.upstream.normalize import answer_text

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_sequences(request: dict[str, Any]) -> frozenset[str]:
    stops = request.get("stop_sequences")
    if not isinstance(stops, list):
        return frozenset()
    return frozenset(s for s in stops if isinstance(s, str))


def stop_reason(choice: dict[str, Any], stops: frozenset[str]) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for a chat choice that finished."""
    finish = choice.get("finish_reason")
    reason = _STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    if reason == "end_turn" and stops:
        matched = choice.get("stop_reason")  # vLLM: the stop string (an int for a stop token)
        if not isinstance(matched, str):
            matched = choice.get("matched_stop")  # SGLang
        if isinstance(matched, str) and matched in stops:
            return "stop_sequence", matched
    return reason, None


def messages_usage(usage: ChatUsage) -> dict[str, int]:
    return {
        "input_tokens": max(0, usage.prompt - usage.cached - usage.cache_write),
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cached,
        "output_tokens": usage.completion,
    }


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON arguments as the `input` object Anthropic gives."""
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        value = None
    if not isinstance(value, dict):
        raise MalformedResponse(
            "the upstream gave a tool call whose arguments are not a JSON object"
        )
    return value


def chat_to_message(
    answer: dict[str, Any], request: dict[str, Any], *, prompt_tokens: int = 0
) -> dict[str, Any]:
    """The `message` for a non-streamed chat completion `answer` to the Messages `request`.

    `prompt_tokens`: the estimate reported if the answer has no usage."""
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    chars = 0
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning and show_thinking(request):
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    for text in (answer_text(message.get("content")), message.get("refusal")):
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
            chars += len(text)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        chars += len(arguments or "")
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name") or "",
                "input": tool_input(arguments),
            }
        )
    reason, sequence = stop_reason(choice, stop_sequences(request))
    if reason == "end_turn" and message.get("refusal"):
        reason = "refusal"
    usage = ChatUsage.read(answer.get("usage")) or ChatUsage.estimate(prompt_tokens, chars)
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": answer.get("model") or request.get("model") or "",
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": messages_usage(usage),
    }
