"""Chat completions become Anthropic `message` objects the anthropic SDK accepts."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message

from router.errors import MalformedResponse
from router.translate import chat_to_message

REQUEST = {
    "model": "router-model",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Hi"}],
}


def test_text_answer(chat: Any) -> None:
    usage = chat.usage(20, 5, cached=8)
    usage["prompt_tokens_details"]["cache_write_tokens"] = 2
    message = Message.model_validate(chat_to_message(chat.answer("Hello", usage=usage), REQUEST))
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", "up-model")
    assert [(b.type, b.text) for b in message.content] == [("text", "Hello")]  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens == 10  # Anthropic counts cache reads and writes apart
    assert message.usage.cache_read_input_tokens == 8
    assert message.usage.cache_creation_input_tokens == 2
    assert message.usage.output_tokens == 5


def test_tool_use(chat: Any) -> None:
    answer = chat.answer(
        "Let me check.",
        finish="tool_calls",
        tool_calls=[
            chat.call("call_1", "get_weather", '{"city": "Paris"}'),
            chat.call("call_2", "get_time", ""),  # some upstreams send "" for no arguments
        ],
        usage=chat.usage(),
    )
    message = Message.model_validate(chat_to_message(answer, REQUEST))
    assert message.stop_reason == "tool_use"
    text, first, second = message.content
    assert text.type == "text"
    assert (first.type, first.id, first.name, first.input) == (  # type: ignore[union-attr]
        "tool_use",
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert (second.id, second.input) == ("call_2", {})  # type: ignore[union-attr]


def test_tool_arguments_that_are_not_an_object_are_a_malformed_answer(chat: Any) -> None:
    for arguments in ('{"city": "Par', "[1, 2]"):
        answer = chat.answer(None, finish="tool_calls", tool_calls=[chat.call("c", "f", arguments)])
        with pytest.raises(MalformedResponse):
            chat_to_message(answer, REQUEST)


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_stop_reasons(chat: Any, finish: str | None, reason: str) -> None:
    answer = chat.answer("x", finish=finish, usage=chat.usage())
    message = Message.model_validate(chat_to_message(answer, REQUEST))
    assert message.stop_reason == reason


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"stop_reason": "END"}, ("stop_sequence", "END")),  # vLLM
        ({"matched_stop": "END"}, ("stop_sequence", "END")),  # SGLang
        ({"stop_reason": "<|eot|>"}, ("end_turn", None)),  # not one the client asked for
        ({"stop_reason": 128009}, ("end_turn", None)),  # a stop token's id
        ({}, ("end_turn", None)),  # the upstream does not say
    ],
)
def test_stop_sequence_when_the_upstream_names_it(
    chat: Any, choice: dict[str, Any], expected: tuple[str, str | None]
) -> None:
    answer = chat.answer("x", usage=chat.usage())
    answer["choices"][0].update(choice)
    request = REQUEST | {"stop_sequences": ["END", "STOP"]}
    message = Message.model_validate(chat_to_message(answer, request))
    assert (message.stop_reason, message.stop_sequence) == expected


def test_refusal(chat: Any) -> None:
    answer = chat.answer(None, refusal="I can't help with that.", usage=chat.usage())
    message = Message.model_validate(chat_to_message(answer, REQUEST))
    assert message.stop_reason == "refusal"
    assert message.content[0].text == "I can't help with that."  # type: ignore[union-attr]


def test_thinking_only_when_the_request_enabled_it(chat: Any) -> None:
    answer = chat.answer("42", reasoning_content="6 times 7.", usage=chat.usage())
    plain = Message.model_validate(chat_to_message(answer, REQUEST))
    assert [b.type for b in plain.content] == ["text"]
    request = REQUEST | {"thinking": {"type": "enabled", "budget_tokens": 2000}}
    thinking = Message.model_validate(chat_to_message(answer, request))
    assert [b.type for b in thinking.content] == ["thinking", "text"]
    assert thinking.content[0].thinking == "6 times 7."  # type: ignore[union-attr]


def test_usage_is_estimated_when_the_upstream_reports_none(chat: Any) -> None:
    message = chat_to_message(chat.answer("x" * 40), REQUEST, prompt_tokens=12)
    assert message["usage"]["input_tokens"] == 12
    assert message["usage"]["output_tokens"] == 10


def test_empty_answer_has_no_blocks(chat: Any) -> None:
    message = Message.model_validate(chat_to_message(chat.answer(""), REQUEST))
    assert message.content == []


def test_the_sdk_reads_the_answer(chat: Any, anthropic_client: Any) -> None:
    data = chat_to_message(chat.answer("Hello", usage=chat.usage()), REQUEST)
    client = anthropic_client(data)
    message = client.messages.create(
        model="router-model", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    assert isinstance(message, Message)
    assert message.content[0].text == "Hello"  # type: ignore[union-attr]
    assert message.usage.output_tokens == 7
