"""Chat completions become `response` objects the openai SDK and the OpenAPI schema accept."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response

from router.errors import RateLimited, UpstreamServerError, UpstreamTimeout
from router.translate import chat_to_response
from router.translate.responses_answer import response_error

REQUEST = {"model": "router-model", "input": "Hi"}


def valid(data: dict[str, Any], openapi_check: Any) -> Response:
    response = Response.model_validate(data)
    openapi_check("Response", data)
    return response


def test_text_answer(chat: Any, openapi_check: Any) -> None:
    usage = chat.usage(20, 5, cached=8, reasoning=2)
    data = chat_to_response(chat.answer("Hello there", usage=usage), REQUEST)
    response = valid(data, openapi_check)
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.created_at == 1_700_000_000
    assert response.model == "up-model"
    assert response.output_text == "Hello there"
    [message] = response.output
    assert message.type == "message" and message.status == "completed"
    assert message.id.startswith("msg_")
    assert response.incomplete_details is None and response.error is None
    assert response.usage is not None
    assert response.usage.model_dump(exclude_none=True) == {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 25,
    }


def test_tool_calls_become_function_call_items(chat: Any, openapi_check: Any) -> None:
    answer = chat.answer(
        None,
        finish="tool_calls",
        tool_calls=[
            chat.call("call_1", "get_weather", '{"city":"Paris"}'),
            chat.call("call_2", "get_time", "{}"),
        ],
        usage=chat.usage(),
    )
    response = valid(chat_to_response(answer, REQUEST), openapi_check)
    assert response.status == "completed"
    assert [(i.type, i.call_id, i.name, i.arguments) for i in response.output] == [  # type: ignore[union-attr]
        ("function_call", "call_1", "get_weather", '{"city":"Paris"}'),
        ("function_call", "call_2", "get_time", "{}"),
    ]
    assert all(i.id.startswith("fc_") for i in response.output)  # type: ignore[union-attr]


def test_text_and_tool_call_and_reasoning(chat: Any, openapi_check: Any) -> None:
    answer = chat.answer(
        "Let me check.",
        finish="tool_calls",
        tool_calls=[chat.call("call_1", "get_time", "{}")],
        reasoning_content="The user wants the time.",
        usage=chat.usage(),
    )
    response = valid(chat_to_response(answer, REQUEST), openapi_check)
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    reasoning = response.output[0]
    assert reasoning.content[0].text == "The user wants the time."  # type: ignore[union-attr,index]
    assert reasoning.summary == []  # type: ignore[union-attr]
    assert response.output_text == "Let me check."


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_answers_are_incomplete(
    chat: Any, openapi_check: Any, finish: str, reason: str
) -> None:
    answer = chat.answer("Once upon a", finish=finish, usage=chat.usage())
    response = valid(chat_to_response(answer, REQUEST), openapi_check)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == reason
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert response.completed_at is None


def test_refusal(chat: Any, openapi_check: Any) -> None:
    answer = chat.answer(None, refusal="I can't help with that.", usage=chat.usage())
    response = valid(chat_to_response(answer, REQUEST), openapi_check)
    [message] = response.output
    assert [(p.type, p.refusal) for p in message.content] == [  # type: ignore[union-attr]
        ("refusal", "I can't help with that.")
    ]


def test_empty_answer_is_an_empty_message(chat: Any, openapi_check: Any) -> None:
    response = valid(chat_to_response(chat.answer(""), REQUEST), openapi_check)
    assert response.output_text == ""


def test_usage_is_estimated_when_the_upstream_reports_none(chat: Any, openapi_check: Any) -> None:
    answer = chat.answer("x" * 40)  # no usage
    response = valid(chat_to_response(answer, REQUEST, prompt_tokens=12), openapi_check)
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 10)
    assert response.usage.total_tokens == 22


def test_request_settings_are_echoed(chat: Any, openapi_check: Any) -> None:
    request = {
        "model": "router-model",
        "input": "Hi",
        "instructions": "Be brief.",
        "tools": [{"type": "function", "name": "get_time", "parameters": {"type": "object"}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "temperature": 0.3,
        "top_p": 0.8,
        "max_output_tokens": 99,
        "metadata": {"ticket": "42"},
        "user": "u-1",
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_object"}},
    }
    response = valid(chat_to_response(chat.answer("{}"), request), openapi_check)
    assert response.instructions == "Be brief."
    assert [t.name for t in response.tools] == ["get_time"]  # type: ignore[union-attr]
    assert response.tool_choice == "required"
    assert response.parallel_tool_calls is False
    assert (response.temperature, response.top_p, response.max_output_tokens) == (0.3, 0.8, 99)
    assert response.metadata == {"ticket": "42"}
    assert response.user == "u-1"
    assert response.reasoning is not None and response.reasoning.effort == "low"
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_object"
    assert response.store is False and response.previous_response_id is None


def test_the_sdk_reads_the_answer(chat: Any, openai_client: Any) -> None:
    data = chat_to_response(chat.answer("Hello there", usage=chat.usage()), REQUEST)
    client = openai_client(data)
    response = client.responses.create(model="router-model", input="Hi")
    assert isinstance(response, Response)
    assert response.output_text == "Hello there"
    assert response.usage.total_tokens == 18


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RateLimited("slow down"), "rate_limit_exceeded"),
        (UpstreamTimeout("stalled"), "server_error"),
        (UpstreamServerError("boom"), "server_error"),
    ],
)
def test_failure_codes_are_ones_the_schema_lists(error: Any, code: str) -> None:
    assert response_error(error) == {"code": code, "message": error.message}
