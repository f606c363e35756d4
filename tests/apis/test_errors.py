"""Each API answers errors in its own shape, so that each SDK raises its own error classes:
the OpenAI envelope on `/v1/responses`, Anthropic's on `/v1/messages*`; rate limits and the
router's token estimates hold on both."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router.testing import json_reply
from router.translate import messages_prompt_tokens, responses_prompt_tokens
from router.upstream.usage import estimate_prompt_tokens

CHAT = "/v1/chat/completions"
KEY = "sk-apis-client"
BIG = "x" * (4 * 1024 * 1024 + 1)  # past the default `server.max_body_bytes`


def ask_responses(client: openai.OpenAI, model: str = "m", wrong: str = "") -> Any:
    text: Any = {"bad body": 123, "too large": BIG}.get(wrong, "Hi")
    return client.responses.create(model=model, input=text)


def ask_messages(client: anthropic.Anthropic, model: str = "m", wrong: str = "") -> Any:
    message: Any = {"role": "user", "content": BIG if wrong == "too large" else "Hi"}
    if wrong == "bad body":
        message = {"role": "robot", "content": "Hi"}
    return client.messages.create(model=model, max_tokens=32, messages=[message])


# what is wrong: (the status the client sees, the client key, the model)
CASES = {
    "bad body": (400, KEY, "m"),
    "too large": (413, KEY, "m"),
    "unknown key": (401, "sk-wrong", "m"),
    "model not allowed": (403, "sk-apis-narrow", "native"),
    "unknown model": (404, KEY, "no-such-model"),
}
OPENAI_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    413: openai.APIStatusError,
}
ANTHROPIC_ERRORS: dict[int, tuple[type[anthropic.APIStatusError], str]] = {
    400: (anthropic.BadRequestError, "invalid_request_error"),
    401: (anthropic.AuthenticationError, "authentication_error"),
    403: (anthropic.PermissionDeniedError, "permission_error"),
    404: (anthropic.NotFoundError, "not_found_error"),
    413: (anthropic.ContentTooLargeError, "request_too_large"),
}


@pytest.mark.parametrize("wrong", CASES)
def test_the_router_s_own_errors(
    wrong: str, oai: openai.OpenAI, claude: anthropic.Anthropic, fake: Any, schema_check: Any
) -> None:
    status, key, model = CASES[wrong]
    with pytest.raises(OPENAI_ERRORS[status]) as raised:
        ask_responses(oai.with_options(api_key=key), model, wrong)
    assert raised.value.status_code == status
    schema_check("ErrorResponse", raised.value.response.json())

    cls, kind = ANTHROPIC_ERRORS[status]
    with pytest.raises(cls) as caught:
        ask_messages(claude.with_options(api_key=key), model, wrong)
    assert caught.value.status_code == status
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert fake.requests == []


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_a_messages_request_without_messages_is_refused(
    path: str, claude: anthropic.Anthropic, fake: Any
) -> None:
    """As Anthropic's API: a system prompt alone is no conversation."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        if path.endswith("count_tokens"):
            claude.messages.count_tokens(model="m", system="Be brief.", messages=[])
        else:
            claude.messages.create(model="m", max_tokens=8, system="Be brief.", messages=[])
    body: Any = caught.value.body
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "messages: at least one message is required",
    }
    assert fake.requests == []


UPSTREAM_FAILURES = [
    (429, 429, openai.RateLimitError, anthropic.RateLimitError, "rate_limit_error"),
    (500, 502, openai.InternalServerError, anthropic.InternalServerError, "api_error"),
    (503, 503, openai.InternalServerError, anthropic.OverloadedError, "overloaded_error"),
    (401, 401, openai.AuthenticationError, anthropic.AuthenticationError, "authentication_error"),
]


@pytest.mark.parametrize(
    ("given", "status", "openai_error", "anthropic_error", "kind"), UPSTREAM_FAILURES
)
def test_upstream_failures(
    given: int,
    status: int,
    openai_error: type,
    anthropic_error: type,
    kind: str,
    oai: openai.OpenAI,
    claude: anthropic.Anthropic,
    fake: Any,
) -> None:
    error = {"error": {"message": "upstream says no", "type": "server_error", "code": None}}
    fake.set_default(CHAT, json_reply(error, status=given, headers={"retry-after": "0"}))
    with pytest.raises(openai_error) as raised:
        ask_responses(oai)
    assert raised.value.status_code == status
    with pytest.raises(anthropic_error) as caught:
        ask_messages(claude)
    assert caught.value.status_code == (529 if status == 503 else 500 if status == 502 else status)
    assert caught.value.body["error"]["type"] == kind  # type: ignore[index]
    assert "upstream says no" in caught.value.body["error"]["message"]  # type: ignore[index]


def test_the_router_s_rate_limit_with_retry_after(
    oai: openai.OpenAI, claude: anthropic.Anthropic, fake: Any, chat: Any
) -> None:
    """`once` takes one request a minute, whichever API asks."""
    fake.set_default(CHAT, json_reply(chat.answer()))
    ask_responses(oai, "once")
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask_messages(claude, "once")
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(caught.value.response.headers["retry-after"]) >= 1
    with pytest.raises(openai.RateLimitError) as raised:
        ask_responses(oai, "once")
    assert int(raised.value.response.headers["retry-after"]) >= 1


WEATHER = {
    "name": "get_weather",
    "description": "The weather now in a city, in degrees Celsius. " * 10,
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "A city's name"}},
        "required": ["city"],
    },
}


def test_tools_and_tool_calls_count_in_estimates_as_count_tokens_says(
    claude: anthropic.Anthropic, oai: openai.OpenAI, fake: Any, chat: Any
) -> None:
    """An agent's request is mostly its tools and the calls it made: they count in the
    estimate a limit admits, and `count_tokens` and `input_tokens` report that estimate."""
    fake.set_default(CHAT, json_reply(chat.answer(usage=(7, 3))))
    history: Any = [
        {"role": "user", "content": "Weather in Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Rome"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "21"}],
        },
    ]
    body: Any = {"model": "tooled", "messages": history, "tools": [WEATHER]}
    counted = claude.messages.count_tokens(**body).input_tokens
    bare = claude.messages.count_tokens(model="tooled", messages=history).input_tokens
    assert counted == messages_prompt_tokens(body)
    assert counted - bare >= len(WEATHER["description"]) // 4  # the tool is counted
    search = {"type": "web_search_20250305", "name": "web_search"}  # a server tool: its name
    with_search = claude.messages.count_tokens(**{**body, "tools": [WEATHER, search]})
    assert with_search.input_tokens == messages_prompt_tokens({**body, "tools": [WEATHER, search]})
    assert with_search.input_tokens > counted
    raw = claude.messages.with_raw_response.create(max_tokens=100, **body)
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 100_000 - counted - 100
    sent = fake.received(CHAT)[0].json()
    assert sent["messages"][1]["tool_calls"] and sent["tools"]  # (what the limit estimated)
    # The same tool and call in the Responses API's shapes count the same.
    responses_tool = {
        "type": "function",
        "name": WEATHER["name"],
        "description": WEATHER["description"],
        "parameters": WEATHER["input_schema"],
    }
    items: Any = [
        {"role": "user", "content": "Weather in Rome?"},
        {
            "type": "function_call",
            "call_id": "t1",
            "name": "get_weather",
            "arguments": '{"city":"Rome"}',
        },
        {"type": "function_call_output", "call_id": "t1", "output": "21"},
    ]
    as_responses = oai.responses.input_tokens.count(
        model="tooled", input=items, tools=[responses_tool]
    ).input_tokens
    assert as_responses == responses_prompt_tokens(
        {"model": "tooled", "input": items, "tools": [responses_tool]}
    )
    assert as_responses - oai.responses.input_tokens.count(
        model="tooled", input=items
    ).input_tokens == (counted - bare)


PIXEL = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_images_count_in_estimates_as_openai_bills_them(
    claude: anthropic.Anthropic, oai: openai.OpenAI, fake: Any, chat: Any
) -> None:
    """An image is counted as OpenAI bills a square one (765 tokens; 85 at low detail), not
    as nothing: what a limit admits, `count_tokens` and `input_tokens` report, in each API's
    shape of an image."""
    fake.set_default(CHAT, json_reply(chat.answer(usage=(7, 3))))
    question: Any = {"type": "text", "text": "What is in this picture?"}
    image: Any = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
    }
    asked: Any = [{"role": "user", "content": [question, image]}]
    bare: Any = [{"role": "user", "content": [question]}]
    with_image = claude.messages.count_tokens(model="tooled", messages=asked).input_tokens
    without = claude.messages.count_tokens(model="tooled", messages=bare).input_tokens
    assert with_image - without == 765
    data_url = f"data:image/png;base64,{PIXEL}"
    for detail, tokens in (("low", 85), ("high", 765), ("auto", 765)):
        items: Any = [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": question["text"]},
                    {"type": "input_image", "image_url": data_url, "detail": detail},
                ],
            }
        ]
        counted = oai.responses.input_tokens.count(model="tooled", input=items).input_tokens
        assert counted - without == tokens, detail
    # A chat request's limit admits the same estimate.
    message: Any = {
        "role": "user",
        "content": [question, {"type": "image_url", "image_url": {"url": data_url}}],
    }
    raw = oai.chat.completions.with_raw_response.create(
        model="tooled", messages=[message], max_tokens=100
    )
    estimate = estimate_prompt_tokens({"messages": [message]})
    assert estimate == with_image
    # (what earlier requests to this model reported, 10 tokens each, may still be counted)
    assert 0 <= 100_000 - estimate - 100 - int(raw.headers["x-ratelimit-remaining-tokens"]) < 50


def test_token_estimates_count_against_limits(
    oai: openai.OpenAI, claude: anthropic.Anthropic, fake: Any, chat: Any
) -> None:
    """Admission counts the request's estimate (its prompt, and the answer it allows), then
    the usage the upstream reports."""
    fake.set_default(CHAT, json_reply(chat.answer(usage=(7, 3))))
    question = [{"role": "user", "content": "What is the capital of France? " * 20}]
    body: Any = {"model": "budgeted", "max_tokens": 900, "messages": question}
    raw = claude.messages.with_raw_response.create(**body)
    estimate = messages_prompt_tokens(body) + 900
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 100_000 - estimate

    asked: Any = {"model": "budgeted", "input": question[0]["content"], "max_output_tokens": 500}
    after = oai.responses.with_raw_response.create(**asked)
    # The first request's estimate was replaced by its usage, 10 tokens.
    estimate = responses_prompt_tokens(asked) + 500
    assert int(after.headers["x-ratelimit-remaining-tokens"]) == 100_000 - 10 - estimate
