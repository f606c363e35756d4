"""Anthropic Messages requests become chat-completions requests; what chat cannot carry is
refused with a 400 naming the field."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest

from router.errors import InvalidRequest
from router.http.validate import check_body
from router.translate import TargetFeatures, messages_to_chat
from router.types import Operation

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
BASE = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}


def translate(body: dict[str, Any], **features: bool) -> dict[str, Any]:
    chat = messages_to_chat(body, TargetFeatures(**features))
    check_body(Operation.CHAT, chat)  # what the router's chat endpoint accepts
    return chat


def test_minimal_request() -> None:
    assert translate(BASE) == {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 100,
    }


@pytest.mark.parametrize(
    ("system", "content"),
    [
        ("Be brief.", "Be brief."),
        (
            [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "Be brief.",
        ),
        (
            [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        ),
    ],
)
def test_system(system: Any, content: Any) -> None:
    chat = translate(BASE | {"system": system})
    assert chat["messages"][0] == {"role": "system", "content": content}


def test_content_blocks() -> None:
    body = BASE | {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x/b.jpg"}},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "The first is red."}]},
            {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
        ]
    }
    assert translate(body)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "image_url", "image_url": {"url": "https://x/b.jpg"}},
            ],
        },
        {"role": "assistant", "content": "The first is red."},
        {"role": "user", "content": "Thanks"},
    ]


def test_tool_use_and_tool_results() -> None:
    body = BASE | {
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Two calls.", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "service down"},
                            {"type": "image", "source": {"type": "url", "url": "https://x/e.png"}},
                        ],
                    },
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ]
    }
    assert translate(body)["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "22C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: service down"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://x/e.png"}},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_tool_only_assistant_turn_and_empty_result() -> None:
    body = BASE | {
        "messages": [
            {"role": "user", "content": "Time?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "get_time", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
        ]
    }
    messages = translate(body)["messages"]
    assert messages[1]["content"] is None
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert messages[2] == {"role": "tool", "tool_call_id": "t1", "content": ""}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
        ({"type": "none"}, "none"),
    ],
)
def test_tools_and_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    chat = translate(BASE | {"tools": [WEATHER | {"strict": True}], "tool_choice": choice})
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER["input_schema"],
                "description": "Weather in a city",
                "strict": True,
            },
        }
    ]
    assert chat["tool_choice"] == expected
    assert "parallel_tool_calls" not in chat


def test_disable_parallel_tool_use() -> None:
    choice = {"type": "auto", "disable_parallel_tool_use": True}
    chat = translate(BASE | {"tools": [WEATHER], "tool_choice": choice})
    assert chat["parallel_tool_calls"] is False


def test_custom_typed_tool_is_a_function() -> None:
    chat = translate(BASE | {"tools": [WEATHER | {"type": "custom"}]})
    assert chat["tools"][0]["function"]["name"] == "get_weather"


def test_sampling_stops_user_and_stream() -> None:
    body = BASE | {
        "stop_sequences": ["END", "\n\nHuman:"],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "metadata": {"user_id": "u-1"},
        "stream": True,
    }
    chat = translate(body)
    assert chat["stop"] == ["END", "\n\nHuman:"]
    assert (chat["temperature"], chat["top_p"]) == (0.5, 0.9)
    assert "top_k" not in chat
    assert chat["user"] == "u-1"
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert translate(body, top_k=True)["top_k"] == 40


@pytest.mark.parametrize(
    ("fields", "effort"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16000}}, "high"),
        ({"thinking": {"type": "adaptive"}}, None),
        ({"thinking": {"type": "disabled"}}, None),
        ({"output_config": {"effort": "medium"}}, "medium"),
        ({"output_config": {"effort": "max"}, "thinking": {"type": "adaptive"}}, "high"),
    ],
)
def test_thinking_and_effort(fields: dict[str, Any], effort: str | None) -> None:
    assert "reasoning_effort" not in translate(BASE | fields)
    assert translate(BASE | fields, reasoning_effort=True).get("reasoning_effort") == effort


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    chat = translate(
        BASE | {"output_config": {"format": {"type": "json_schema", "schema": schema}}}
    )
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


def content(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": list(blocks)}]}


REFUSED = [
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
    ({"tools": [WEATHER, {"type": "bash_20250124", "name": "bash"}]}, "tools[1].type"),
    (
        content({"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}),
        "messages[0].content[0].source.type",
    ),
    (
        content({"type": "document", "source": {"type": "file", "file_id": "file_1"}}),
        "messages[0].content[0].source.type",
    ),
    (
        content(
            {
                "type": "document",
                "source": {"type": "content", "content": [{"type": "search_result"}]},
            }
        ),
        "messages[0].content[0].source.content[0].type",
    ),
    (
        content({"type": "search_result", "source": "x", "title": "t", "content": []}),
        "messages[0].content[0].type",
    ),
    (
        content({"type": "image", "source": {"type": "file", "file_id": "file_1"}}),
        "messages[0].content[0].source.type",
    ),
    (
        content(
            {
                "type": "tool_result",
                "tool_use_id": "t",
                "content": [{"type": "search_result", "source": "x", "content": []}],
            }
        ),
        "messages[0].content[0].content[0].type",
    ),
]


def test_documents_are_a_file_part_or_text() -> None:
    """Base64 (a PDF) as chat's `file` part; a text source, and a content source's text and
    image blocks, as the parts they are."""
    image = {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
    chat = messages_to_chat(
        BASE
        | content(
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            },
            {"type": "document", "source": {"type": "text", "data": "plain"}},
            {
                "type": "document",
                "source": {"type": "content", "content": [{"type": "text", "text": "a"}, image]},
            },
            {"type": "document", "source": {"type": "content", "content": "b"}},
        )
    )
    assert chat["messages"][-1]["content"] == [
        {
            "type": "file",
            "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        },
        {"type": "text", "text": "plain"},
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
        {"type": "text", "text": "b"},
    ]


@pytest.mark.parametrize(("change", "param"), REFUSED)
def test_what_chat_cannot_carry_is_refused(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat(BASE | change)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert "not supported" in caught.value.message


INVALID = [
    ({"max_tokens": None}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"model": ""}, "model"),
    ({"messages": None}, "messages"),
    ({"messages": "Hi"}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"system": [{"type": "image"}]}, "system[0].type"),
    ({"stop_sequences": "END"}, "stop_sequences"),
    ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
    ({"tools": [WEATHER], "tool_choice": {"type": "maybe"}}, "tool_choice.type"),
    ({"tools": [WEATHER], "tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "sometimes"}}, "thinking.type"),
    ({"output_config": {"effort": "extreme"}}, "output_config.effort"),
    ({"output_config": {"format": {"type": "xml"}}}, "output_config.format"),
    ({"metadata": {"user_id": 5}}, "metadata.user_id"),
    ({"stream": 1}, "stream"),
]


@pytest.mark.parametrize(("change", "param"), INVALID)
def test_bad_fields_get_a_400_naming_them(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat(BASE | change)
    assert caught.value.param == param


FULL = {
    "model": "m",
    "max_tokens": 10,
    "system": [{"type": "text", "text": "s"}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "a"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "A"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "is_error": True,
                    "content": [{"type": "text", "text": "x"}],
                }
            ],
        },
    ],
    "tools": [WEATHER],
    "tool_choice": {"type": "tool", "name": "get_weather"},
    "thinking": {"type": "enabled", "budget_tokens": 2000},
    "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {}}},
    "stop_sequences": ["x"],
    "metadata": {"user_id": "u"},
    "top_k": 3,
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
    features = TargetFeatures(reasoning_effort=True, top_k=True)
    for path in _paths(FULL):
        for value in WEIRD:
            body = copy.deepcopy(FULL)
            node = body
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            with contextlib.suppress(InvalidRequest):
                messages_to_chat(body, features)
