"""Token counts: estimates agree with the router's limit estimator; chat usage is read once."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import MessageTokensCount

import router.translate
from router.errors import InvalidRequest
from router.translate import (
    count_tokens,
    messages_prompt_tokens,
    messages_to_chat,
    responses_prompt_tokens,
    responses_to_chat,
)
from router.translate.tokens import ChatUsage
from router.upstream.usage import estimate_prompt_tokens

MESSAGES = {
    "model": "m",
    "max_tokens": 10,
    "system": "You are a careful assistant.",
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ],
}
RESPONSES = {
    "model": "m",
    "instructions": "You are a careful assistant.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Capital of France?"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Paris."}]},
        {"role": "user", "content": "And of Italy?"},
    ],
}


def test_estimates_are_the_limit_estimator_on_the_chat_translation() -> None:
    assert messages_prompt_tokens(MESSAGES) == estimate_prompt_tokens(messages_to_chat(MESSAGES))
    assert responses_prompt_tokens(RESPONSES) == estimate_prompt_tokens(
        responses_to_chat(RESPONSES)
    )
    assert messages_prompt_tokens(MESSAGES) == 4 * 4 + 20  # 4 messages, 77 characters


TOOL = {
    "name": "lookup",
    "description": "d" * 400,
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
}


def test_estimates_count_tools_and_tool_calls_alike_in_every_shape() -> None:
    """Tools and the calls made count once each, by name, description, schema and
    arguments, whichever API's shape they come in: a Messages request and its chat
    translation are estimated alike, with the tools or without."""
    with_tools = {**MESSAGES, "tools": [TOOL]}
    assert messages_prompt_tokens(with_tools) == estimate_prompt_tokens(
        messages_to_chat(with_tools)
    )
    schema = TOOL["input_schema"]
    chat_tool = {"type": "function", "function": {**TOOL, "parameters": schema}}
    del chat_tool["function"]["input_schema"]  # type: ignore[attr-defined]
    legacy = {k: v for k, v in chat_tool["function"].items()}  # type: ignore[attr-defined]
    asked = [{"role": "user", "content": "hi"}]
    plain = estimate_prompt_tokens({"messages": asked})
    for tools in ({"tools": [chat_tool]}, {"functions": [legacy]}, {"tools": [TOOL]}):
        # "hi", and the tool's name, description and schema: 2 + 6 + 400 + 54 characters
        assert estimate_prompt_tokens({"messages": asked, **tools}) == 116 + 4 == plain + 115
    call = {"name": "lookup", "arguments": "a" * 400}
    for made in (
        {"tool_calls": [{"id": "c1", "type": "function", "function": call}]},
        {"function_call": call},
    ):
        answered = [*asked, {"role": "assistant", "content": None, **made}]
        # "hi", and the call's name and arguments: 2 + 6 + 400 characters; two messages
        assert estimate_prompt_tokens({"messages": answered}) == 102 + 2 * 4


def test_count_tokens(anthropic_client: Any) -> None:
    body = {k: v for k, v in MESSAGES.items() if k != "max_tokens"}  # count_tokens takes none
    answer = count_tokens(body)
    assert answer == {"input_tokens": messages_prompt_tokens(MESSAGES)}
    client = anthropic_client(answer)
    counted = client.messages.count_tokens(model="m", messages=body["messages"])
    assert isinstance(counted, MessageTokensCount)
    assert counted.input_tokens == answer["input_tokens"]


@pytest.mark.parametrize("body", [None, [], {"model": "m"}, {"messages": "x"}])
def test_count_tokens_of_a_bad_body_is_a_400(body: Any) -> None:
    with pytest.raises(InvalidRequest):
        count_tokens(body)


def test_chat_usage() -> None:
    assert ChatUsage.read(None) is None
    assert ChatUsage.read(
        {
            "prompt_tokens": 9,
            "completion_tokens": 3,
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
        }
    ) == ChatUsage(9, 3, 12)
    full = {
        "prompt_tokens": 9,
        "completion_tokens": 3,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert ChatUsage.read(full) == ChatUsage(9, 3, 12, cached=4, cache_write=1, reasoning=2)
    assert ChatUsage.estimate(5, 9) == ChatUsage(5, 3, 8)


def test_public_names() -> None:
    assert sorted(router.translate.__all__) == [
        "MessagesStream",
        "PLAIN",
        "ResponsesStream",
        "TargetFeatures",
        "anthropic_error",
        "anthropic_error_frame",
        "chat_to_message",
        "chat_to_response",
        "check_responses_supported",
        "count_tokens",
        "echo_fields",
        "input_tokens",
        "messages_prompt_tokens",
        "messages_to_chat",
        "responses_prompt_tokens",
        "responses_to_chat",
    ]
