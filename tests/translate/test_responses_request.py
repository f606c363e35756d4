"""Responses requests become chat-completions requests; what needs OpenAI's own server is
refused with a 400 naming the field."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest

from router.errors import InvalidRequest
from router.http.validate import check_body
from router.translate import (
    TargetFeatures,
    check_responses_supported,
    responses_to_chat,
)
from router.types import Operation

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
CLOCK = {"type": "function", "name": "get_time", "parameters": {"type": "object"}}


def translate(body: dict[str, Any], **features: bool) -> dict[str, Any]:
    chat = responses_to_chat(body, TargetFeatures(**features))
    check_body(Operation.CHAT, chat)  # what the router's chat endpoint accepts
    return chat


def test_string_input_and_instructions() -> None:
    chat = translate({"model": "m", "input": "Hi", "instructions": "Be brief."})
    assert chat == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
    }


def test_message_items_and_parts() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "developer", "content": "Answer in French."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,AA==",
                        "filename": "a.pdf",
                    },
                    {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
                ],
            },
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Un chat.", "annotations": []}],
            },
            {"role": "user", "content": [{"type": "input_text", "text": "Merci"}]},
        ],
    }
    assert translate(body)["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,AA==", "filename": "a.pdf"},
                },
                {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
            ],
        },
        {"role": "assistant", "content": "Un chat."},
        {"role": "user", "content": "Merci"},  # a lone text part: a plain string
    ]


def test_assistant_refusal_is_replayed_in_the_refusal_field() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
        ],
    }
    assert translate(body)["messages"][1] == {
        "role": "assistant",
        "content": None,
        "refusal": "I can't.",
    }


def test_function_calls_and_outputs() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Weather and time in Paris?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},  # dropped
            {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_a",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call", "call_id": "call_b", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "22C"},
            {
                "type": "function_call_output",
                "call_id": "call_b",
                "output": [
                    {"type": "input_text", "text": "noon"},
                    {"type": "input_image", "image_url": "https://x/clock.png"},
                ],
            },
            {"role": "user", "content": "Thanks"},
        ],
    }
    assert translate(body)["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "22C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x/clock.png"}}],
        },
        {"role": "user", "content": "Thanks"},
    ]


def test_function_call_without_assistant_text_opens_an_assistant_message() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "time?"},
            {"type": "function_call", "call_id": "c1", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "noon"},
        ],
    }
    messages = translate(body)["messages"]
    assert messages[1]["role"] == "assistant" and messages[1]["content"] is None
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1"]
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "noon"}


def test_tools_tool_choice_and_parallel_calls() -> None:
    body = {
        "model": "m",
        "input": "x",
        "tools": [WEATHER, CLOCK],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False,
    }
    chat = translate(body)
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER["parameters"],
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["parallel_tool_calls"] is False


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_strings(choice: str) -> None:
    chat = translate({"model": "m", "input": "x", "tools": [CLOCK], "tool_choice": choice})
    assert chat["tool_choice"] == choice


def test_allowed_tools_narrows_the_tools() -> None:
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "get_time"}],
    }
    chat = translate({"model": "m", "input": "x", "tools": [WEATHER, CLOCK], "tool_choice": choice})
    assert [t["function"]["name"] for t in chat["tools"]] == ["get_time"]
    assert chat["tool_choice"] == "required"


def test_tool_settings_without_tools_are_not_sent() -> None:
    chat = translate(
        {"model": "m", "input": "x", "tool_choice": "auto", "parallel_tool_calls": True}
    )
    assert "tool_choice" not in chat and "parallel_tool_calls" not in chat


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {
                "type": "json_schema",
                "name": "city",
                "schema": {"type": "object"},
                "description": "A city",
                "strict": True,
            },
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {"type": "object"},
                    "description": "A city",
                    "strict": True,
                },
            },
        ),
    ],
)
def test_text_format(fmt: dict[str, Any], expected: dict[str, Any] | None) -> None:
    chat = translate({"model": "m", "input": "x", "text": {"format": fmt, "verbosity": "low"}})
    assert chat.get("response_format") == expected
    assert "verbosity" not in chat


def test_sampling_limits_user_and_metadata() -> None:
    body = {
        "model": "m",
        "input": "x",
        "max_output_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u-1",
        "metadata": {"ticket": "42"},
        "store": False,
        "background": False,
        "truncation": "disabled",
        "include": ["reasoning.encrypted_content"],
    }
    chat = translate(body)
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u-1",
    }  # metadata is echoed on the response, not sent upstream


def test_reasoning_effort_only_where_the_target_takes_it() -> None:
    body = {"model": "m", "input": "x", "reasoning": {"effort": "high", "summary": "auto"}}
    assert "reasoning_effort" not in translate(body)
    assert translate(body, reasoning_effort=True)["reasoning_effort"] == "high"


def test_stream_asks_for_usage() -> None:
    chat = translate({"model": "m", "input": "x", "stream": True})
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}
    assert "stream" not in translate({"model": "m", "input": "x", "stream": False})


UNSUPPORTED = [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"store": True}, "store"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"background": True}, "background"),
    ({"truncation": "auto"}, "truncation"),
    ({"tools": [CLOCK, {"type": "web_search"}]}, "tools[1].type"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type"),
    ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
    ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools[0].type"),
    ({"tools": [{"type": "image_generation"}]}, "tools[0].type"),
    ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type"),
    ({"tools": [CLOCK], "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    (
        {
            "tools": [CLOCK],
            "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "mcp"}]},
        },
        "tool_choice.tools[0].type",
    ),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
        "input[0].content[0].file_id",
    ),
    (
        {
            "input": [
                {"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}
            ]
        },
        "input[0].content[0].file_url",
    ),
    (
        {
            "input": [
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [{"type": "input_image", "file_id": "file-1"}],
                }
            ]
        },
        "input[0].output[0].file_id",
    ),
]


@pytest.mark.parametrize(("change", "param"), UNSUPPORTED)
def test_unsupported_features_are_refused_naming_the_field(
    change: dict[str, Any], param: str
) -> None:
    body = {"model": "m", "input": "x"} | change
    for check in (check_responses_supported, responses_to_chat):
        with pytest.raises(InvalidRequest) as caught:
            check(body)
        assert caught.value.status == 400
        assert caught.value.param == param
        assert "not supported" in caught.value.message


def test_the_check_passes_what_translates() -> None:
    body = {
        "model": "m",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}],
        "tools": [CLOCK],
        "tool_choice": {"type": "function", "name": "get_time"},
        "store": False,
    }
    check_responses_supported(body)
    responses_to_chat(body)


INVALID = [
    ({"model": None}, "model"),
    ({"model": 3}, "model"),
    ({"input": None}, "input"),
    ({"input": 5}, "input"),
    ({"input": ["hi"]}, "input[0]"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0]"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_video"}]}]},
        "input[0].content[0].type",
    ),
    ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"instructions": ["x"]}, "instructions"),
    ({"tools": {"type": "function"}}, "tools"),
    ({"tools": [{"type": "function"}]}, "tools[0].name"),
    ({"tools": [CLOCK], "tool_choice": "sometimes"}, "tool_choice"),
    ({"text": {"format": {"type": "yaml"}}}, "text.format"),
    ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"max_output_tokens": "5"}, "max_output_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"stream": "yes"}, "stream"),
]


@pytest.mark.parametrize(("change", "param"), INVALID)
def test_bad_fields_get_a_400_naming_them(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        responses_to_chat({"model": "m", "input": "x"} | change)
    assert caught.value.param == param


FULL = {
    "model": "m",
    "instructions": "Be brief.",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "a"},
                {"type": "input_image", "image_url": "https://x/a.png"},
            ],
        },
        {"type": "function_call", "call_id": "c", "name": "get_time", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c",
            "output": [{"type": "input_text", "text": "n"}],
        },
    ],
    "tools": [WEATHER],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
    "reasoning": {"effort": "low"},
    "max_output_tokens": 5,
    "temperature": 1,
    "user": "u",
    "stream": True,
}
WEIRD = [None, True, 0, -1, 1.5, "", "x", [], [None], [[]], {}, {"type": None}, {"a": [1]}]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict | list):
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            found += _paths(child, (*path, key))
    return found


def test_any_odd_value_anywhere_is_a_400_never_a_crash() -> None:
    """Every field of a full request replaced by values of every JSON type."""
    for path in _paths(FULL):
        for value in WEIRD:
            body = copy.deepcopy(FULL)
            node = body
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            for check in (
                check_responses_supported,
                lambda b: responses_to_chat(b, TargetFeatures(reasoning_effort=True)),
            ):
                with contextlib.suppress(InvalidRequest):
                    check(body)
