"""`POST /v1/responses` through `llm-switchyard serve`, translated to chat completions for an
OpenAI-compatible upstream, with the official openai SDK as the client."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest
from pydantic import BaseModel

from router.testing import chat_chunks, json_reply, sse_reply
from router.translate import responses_prompt_tokens

CHAT = "/v1/chat/completions"
AUTH = {"authorization": "Bearer sk-apis-client"}


def test_answer(oai: openai.OpenAI, fake: Any, chat: Any, schema_check: Any) -> None:
    fake.add(CHAT, json_reply(chat.answer("Hi there", usage=(7, 3))))
    raw = oai.responses.with_raw_response.create(
        model="m", input="Hello", instructions="Be brief.", max_output_tokens=50
    )
    response = raw.parse()
    assert (response.status, response.output_text) == ("completed", "Hi there")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 3)
    assert response.usage.total_tokens == 10
    schema_check("Response", raw.http_response.json())
    assert raw.headers["x-router-model"] == "m"
    assert raw.headers["x-served-by"] == "up/up-model"  # the header rules apply
    sent = fake.received(CHAT)[0].json()
    assert sent["model"] == "up-model"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    assert sent["max_tokens"] == 50 and "stream" not in sent


def test_stream(oai: openai.OpenAI, fake: Any, router: Any, sse: Any, schema_check: Any) -> None:
    fake.add(CHAT, sse_reply(chat_chunks(["Hel", "lo"], usage=(5, 3))))
    with oai.responses.stream(model="m", input="Hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["Hel", "lo"]
    assert (final.status, final.output_text) == ("completed", "Hello")
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (
        5,
        3,
    )
    # The upstream is asked for its usage, so that the counts are real.
    sent = fake.received(CHAT)[0].json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}

    fake.add(CHAT, sse_reply(chat_chunks(["Hi"], usage=(5, 1))))
    body = {"model": "m", "input": "Hello", "stream": True}
    raw = httpx.post(router.base_url + "/responses", json=body, headers=AUTH, timeout=10)
    assert raw.headers["content-type"].startswith("text/event-stream")
    frames = sse(raw.content)
    for name, event in frames:
        assert name == event["type"]
        schema_check("ResponseStreamEvent", event)
    assert frames[0][0] == "response.created" and frames[-1][0] == "response.completed"


TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]


def test_a_stream_of_content_parts_is_its_text(oai: openai.OpenAI, fake: Any, chat: Any) -> None:
    fake.add(CHAT, sse_reply(chat.parts_stream()))
    events = list(oai.responses.create(model="m", input="hi", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["Bon", "jour"]
    done = next(e for e in events if e.type == "response.completed").response
    assert done.output_text == "Bonjour"


def test_parallel_function_calls_stream_one_item_at_a_time(
    oai: openai.OpenAI, fake: Any, chat: Any
) -> None:
    """Two calls whose fragments interleave upstream: the client sees OpenAI's order, each
    item added only once the one before it is done, and both calls whole."""
    frames = chat.interleaved_calls()
    fake.add(CHAT, sse_reply(frames))
    question: list[Any] = [{"role": "user", "content": "Weather in Rome and Oslo?"}]
    events = list(oai.responses.create(model="m", input=question, tools=TOOLS, stream=True))
    items = [(e.type, e.output_index) for e in events if e.type.startswith("response.output_item")]
    assert items == [
        ("response.output_item.added", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.output_item.done", 1),
    ]
    done = next(e for e in events if e.type == "response.completed").response
    calls = [(i.call_id, i.arguments) for i in done.output]  # type: ignore[union-attr]
    assert calls == [("call_a", '{"city": "Rome"}'), ("call_b", '{"city": "Oslo"}')]


def test_function_call_round_trip(oai: openai.OpenAI, fake: Any, chat: Any) -> None:
    call = ("call_1", "get_weather", '{"city": "Paris"}')
    fake.add(CHAT, json_reply(chat.answer(None, tool_calls=[call])))
    fake.add(CHAT, json_reply(chat.answer("Sunny in Paris.")))
    question: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = oai.responses.create(model="m", input=question, tools=TOOLS)
    (item,) = [item for item in first.output if item.type == "function_call"]
    assert (item.call_id, item.name) == ("call_1", "get_weather")
    assert orjson.loads(item.arguments) == {"city": "Paris"}

    answer = {"type": "function_call_output", "call_id": item.call_id, "output": "sunny"}
    second = oai.responses.create(model="m", input=[*question, *first.output, answer], tools=TOOLS)
    assert second.output_text == "Sunny in Paris."
    asked, told = (r.json() for r in fake.received(CHAT))
    assert asked["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": TOOLS[0]["parameters"],
                "strict": True,
            },
        }
    ]
    assistant, tool = told["messages"][1:]
    assert assistant["role"] == "assistant"
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == [
        ("call_1", "get_weather")
    ]
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


class City(BaseModel):
    name: str
    country: str


def test_text_format_json_schema(oai: openai.OpenAI, fake: Any, chat: Any) -> None:
    fake.add(CHAT, json_reply(chat.answer('{"name": "Paris", "country": "France"}')))
    parsed = oai.responses.parse(model="m", input="The capital of France?", text_format=City)
    assert parsed.output_parsed == City(name="Paris", country="France")
    sent = fake.received(CHAT)[0].json()["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "City"
    assert sent["json_schema"]["schema"]["required"] == ["name", "country"]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"store": True}, "store"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type"),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
    ],
)
def test_stateful_and_built_in_features_are_refused(
    oai: openai.OpenAI, fake: Any, extra: dict[str, Any], param: str, schema_check: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="m", input="Hi", **extra)
    error = caught.value
    assert error.param == param
    assert "not supported" in error.message
    schema_check("ErrorResponse", error.response.json())
    assert fake.requests == []


def test_fields_chat_targets_reject_are_not_sent(oai: openai.OpenAI, fake: Any, chat: Any) -> None:
    fake.add(CHAT, json_reply(chat.answer()))
    oai.responses.create(model="m", input="Hi", reasoning={"effort": "high"}, store=False)
    sent = fake.received(CHAT)[0].json()
    assert not {"reasoning", "reasoning_effort", "store"} & set(sent)


def test_input_tokens(oai: openai.OpenAI, fake: Any, schema_check: Any) -> None:
    """`POST /v1/responses/input_tokens`: the router's own estimate of the prompt, the one
    its limits count for the same request; nothing goes upstream."""
    body: dict[str, Any] = {
        "model": "m",
        "instructions": "You are a careful assistant.",
        "input": [{"role": "user", "content": "What is the capital of France?"}],
    }
    raw = oai.responses.input_tokens.with_raw_response.count(**body)
    counted = raw.parse()
    assert (counted.object, counted.input_tokens) == (
        "response.input_tokens",
        responses_prompt_tokens(body),
    )
    assert counted.input_tokens > responses_prompt_tokens({**body, "instructions": None}) > 0
    schema_check("TokenCountsResource", raw.http_response.json())
    assert fake.requests == []


def test_input_tokens_checks_the_key_the_model_and_the_body_and_is_not_rate_limited(
    oai: openai.OpenAI, fake: Any
) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.responses.input_tokens.count(model="no-such-model", input="Hi")
    narrow = oai.with_options(api_key="sk-apis-narrow")
    with pytest.raises(openai.PermissionDeniedError):
        narrow.responses.input_tokens.count(model="native", input="Hi")
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.input_tokens.count(model="m", input="Hi", previous_response_id="resp_1")
    assert caught.value.param == "previous_response_id"
    for _ in range(3):  # `once` takes one request a minute
        assert oai.responses.input_tokens.count(model="once", input="Hi").input_tokens > 0
    assert fake.requests == []
