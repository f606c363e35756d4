"""`POST /v1/messages` and `/v1/messages/count_tokens` through `llm-switchyard serve`, translated
to chat completions for an OpenAI-compatible upstream, with the official anthropic SDK as
the client (its key in `x-api-key`, `anthropic-version` on every request)."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from router.testing import chat_chunk, chat_chunks, json_reply, sse_reply
from router.translate import messages_prompt_tokens

CHAT = "/v1/chat/completions"
EVENT = TypeAdapter(RawMessageStreamEvent)
HELLO: list[Any] = [{"role": "user", "content": "Hello"}]
KEY = {"x-api-key": "sk-apis-client"}


def test_answer(claude: anthropic.Anthropic, fake: Any, chat: Any) -> None:
    fake.add(CHAT, json_reply(chat.answer("Bonjour", usage=(12, 4))))
    raw = claude.messages.with_raw_response.create(
        model="m",
        max_tokens=64,
        system="Be brief.",
        messages=HELLO,
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    message = raw.parse()
    Message.model_validate(raw.http_response.json())
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Bonjour")]
    assert (message.role, message.stop_reason, message.model) == (
        "assistant",
        "end_turn",
        "up-model",
    )
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)
    assert raw.headers["x-served-by"] == "up/up-model"
    received = fake.received(CHAT)[0]
    assert "x-api-key" not in received.headers  # the client's key stays with the router
    sent = received.json()
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    assert (sent["model"], sent["max_tokens"]) == ("up-model", 64)


def test_stream(claude: anthropic.Anthropic, fake: Any, router: Any, sse: Any) -> None:
    fake.add(CHAT, sse_reply(chat_chunks(["Bon", "jour"], usage=(9, 2))))
    with claude.messages.stream(model="m", max_tokens=64, messages=HELLO) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert texts == ["Bon", "jour"]
    assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == (
        "end_turn",
        9,
        2,
    )
    sent = fake.received(CHAT)[0].json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}

    fake.add(CHAT, sse_reply(chat_chunks(["Hi"], usage=(5, 1))))
    body = {"model": "m", "max_tokens": 64, "messages": HELLO, "stream": True}
    headers = {"x-api-key": "sk-apis-client", "anthropic-version": "2023-06-01"}
    raw = httpx.post(router.url + "/v1/messages", json=body, headers=headers, timeout=10)
    frames = sse(raw.content)
    for name, event in frames:
        assert name == event["type"]
        if name != "ping":
            EVENT.validate_python(event)
    assert frames[0][0] == "message_start" and frames[-1][0] == "message_stop"


def test_a_stream_of_content_parts_is_its_text(
    claude: anthropic.Anthropic, fake: Any, chat: Any
) -> None:
    fake.add(CHAT, sse_reply(chat.parts_stream()))
    with claude.messages.stream(model="m", max_tokens=64, messages=HELLO) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert texts == ["Bon", "jour"]
    assert [(b.type, b.text) for b in final.content] == [("text", "Bonjour")]  # type: ignore[union-attr]


TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"  # a tiny PDF


def test_documents_reach_a_chat_target_as_a_file_or_as_text(
    claude: anthropic.Anthropic, fake: Any, chat: Any
) -> None:
    """A PDF goes as chat's `file` part, a text document as text, in a user turn and in a
    tool's result; what chat cannot fetch (a document by URL) is a 400 naming the field."""
    fake.add(CHAT, json_reply(chat.answer("A one-page report.")))
    pdf: Any = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
        "title": "Report",
        "cache_control": {"type": "ephemeral"},
    }
    notes: Any = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "Meeting at noon."},
    }
    turns: Any = [
        {"role": "user", "content": [pdf, {"type": "text", "text": "Summarise it."}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [notes, pdf]}],
        },
    ]
    answer = claude.messages.create(model="m", max_tokens=64, messages=turns)
    assert answer.content[0].type == "text" and answer.content[0].text == "A one-page report."
    sent = fake.received(CHAT)[0].json()["messages"]
    file = {
        "type": "file",
        "file": {"filename": "document.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
    }
    assert sent[0] == {"role": "user", "content": [file, {"type": "text", "text": "Summarise it."}]}
    assert sent[2] == {"role": "tool", "tool_call_id": "t1", "content": "Meeting at noon."}
    assert sent[3] == {"role": "user", "content": [file]}
    by_url: Any = {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(
            model="m", max_tokens=64, messages=[{"role": "user", "content": [by_url]}]
        )
    assert "messages[0].content[0].source.type" in refused.value.message
    assert len(fake.received(CHAT)) == 1


def test_tool_use_round_trip(claude: anthropic.Anthropic, fake: Any, chat: Any) -> None:
    call = ("call_1", "get_weather", '{"city": "Paris"}')
    fake.add(CHAT, json_reply(chat.answer("Let me look.", tool_calls=[call])))
    fake.add(CHAT, json_reply(chat.answer("Sunny in Paris.")))
    question: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = claude.messages.create(model="m", max_tokens=64, messages=question, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    text, use = first.content
    assert text.type == "text" and use.type == "tool_use"
    assert (use.id, use.name, use.input) == ("call_1", "get_weather", {"city": "Paris"})

    result = {"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}
    turns: list[Any] = [
        *question,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [result]},
    ]
    second = claude.messages.create(model="m", max_tokens=64, messages=turns, tools=TOOLS)
    assert second.content[0].type == "text" and second.content[0].text == "Sunny in Paris."
    asked, told = (r.json() for r in fake.received(CHAT))
    assert asked["tools"][0]["function"]["name"] == "get_weather"
    assert asked["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]
    assistant, tool = told["messages"][1:]
    assert assistant["content"] == "Let me look."
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def test_streamed_tool_use(claude: anthropic.Anthropic, fake: Any) -> None:
    first = {"index": 0, "id": "call_9", "type": "function"}
    frames: list[Any] = [
        chat_chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"name": "get_weather"}}]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Rome"}'}}]}),
        chat_chunk({}, "tool_calls"),
        "[DONE]",
    ]
    fake.add(CHAT, sse_reply(frames))
    with claude.messages.stream(model="m", max_tokens=64, messages=HELLO, tools=TOOLS) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    (use,) = final.content
    assert use.type == "tool_use" and (use.id, use.input) == ("call_9", {"city": "Rome"})


def test_parallel_tool_calls_stream_one_block_at_a_time(
    claude: anthropic.Anthropic, fake: Any, chat: Any
) -> None:
    """Two tool calls whose fragments interleave upstream: the client sees Anthropic's order,
    each block started only once the one before it stopped, and both calls whole."""
    frames = chat.interleaved_calls()
    fake.add(CHAT, sse_reply(frames))
    events = list(
        claude.messages.create(model="m", max_tokens=64, messages=HELLO, tools=TOOLS, stream=True)
    )
    order = [(e.type, getattr(e, "index", None)) for e in events if "content_block" in e.type]
    assert [(kind, index) for kind, index in order if kind != "content_block_delta"] == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
    ]
    fake.add(CHAT, sse_reply(frames))
    with claude.messages.stream(model="m", max_tokens=64, messages=HELLO, tools=TOOLS) as stream:
        final = stream.get_final_message()
    uses = [(b.id, b.input) for b in final.content]  # type: ignore[union-attr]
    assert uses == [("call_a", {"city": "Rome"}), ("call_b", {"city": "Oslo"})]


def test_count_tokens(claude: anthropic.Anthropic, fake: Any) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "system": "You are a careful assistant.",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    }
    counted = claude.messages.count_tokens(**body)
    assert counted.input_tokens == messages_prompt_tokens(body) > 0
    assert fake.requests == []  # the router's own estimate: nothing goes upstream


def test_count_tokens_checks_the_key_and_model_and_is_not_rate_limited(
    claude: anthropic.Anthropic, fake: Any
) -> None:
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.count_tokens(model="no-such-model", messages=HELLO)
    narrow = claude.with_options(api_key="sk-apis-narrow")
    with pytest.raises(anthropic.PermissionDeniedError):
        narrow.messages.count_tokens(model="native", messages=HELLO)
    for _ in range(3):  # `once` takes one request a minute
        assert claude.messages.count_tokens(model="once", messages=HELLO).input_tokens > 0
    assert fake.requests == []


def test_plain_requests_without_the_v1_prefix_or_anthropic_version(
    router: Any, fake: Any, chat: Any
) -> None:
    fake.add(CHAT, json_reply(chat.answer("Yes")))
    body = {"model": "m", "max_tokens": 9, "messages": HELLO}
    raw = httpx.post(router.url + "/messages", json=body, headers=KEY, timeout=10)
    assert raw.status_code == 200 and raw.json()["content"] == [{"type": "text", "text": "Yes"}]


def test_fields_chat_targets_reject_are_not_sent(
    claude: anthropic.Anthropic, fake: Any, chat: Any
) -> None:
    fake.add(CHAT, json_reply(chat.answer()))
    claude.messages.create(
        model="m",
        max_tokens=4000,
        messages=HELLO,
        extra_body={"top_k": 5},
        thinking={"type": "enabled", "budget_tokens": 2000},
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    )
    sent = fake.received(CHAT)[0].json()
    assert not {"top_k", "reasoning_effort", "thinking"} & set(sent)
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


def test_metrics_name_the_operation(
    claude: anthropic.Anthropic, fake: Any, chat: Any, router: Any
) -> None:
    fake.add(CHAT, json_reply(chat.answer()))
    claude.messages.create(model="m", max_tokens=9, messages=HELLO)
    metrics = httpx.get(router.url + "/metrics", timeout=10).text
    assert re.search(
        r'^llm_router_requests_total\{model="m",operation="messages",status="200"', metrics, re.M
    )


def test_models_in_anthropic_s_shape_for_anthropic_clients(
    claude: anthropic.Anthropic, oai_models: list[str], router: Any
) -> None:
    """`anthropic-version` (which the anthropic SDK always sends) gets Anthropic's model
    objects and pages of them, which the SDK pages through; OpenAI clients get OpenAI's."""
    listed = list(claude.models.list())
    assert [m.id for m in listed] == sorted(oai_models)
    assert all(m.type == "model" and m.display_name == m.id for m in listed)
    assert all(m.created_at.tzinfo is not None for m in listed)
    assert [m.id for m in claude.models.list(limit=2)] == sorted(oai_models)  # page by page
    first = claude.models.list(limit=2)
    assert (first.has_more, first.first_id, first.last_id) == (True, *sorted(oai_models)[:2])
    headers = {**KEY, "anthropic-version": "2023-06-01"}
    last = sorted(oai_models)[-1]
    before = httpx.get(
        f"{router.url}/v1/models?limit=2&before_id={last}", headers=headers, timeout=10
    ).json()
    assert [m["id"] for m in before["data"]] == sorted(oai_models)[-3:-1]
    assert before["has_more"] is True
    assert claude.models.retrieve("m").model_dump(exclude_none=True) == {
        "id": "m",
        "type": "model",
        "display_name": "m",
        "created_at": listed[0].created_at,
    }
    narrow = claude.with_options(api_key="sk-apis-narrow")
    assert [m.id for m in narrow.models.list()] == ["m"]
    with pytest.raises(anthropic.NotFoundError) as missing:
        narrow.models.retrieve("native")
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        claude.models.list(limit=0)
    with pytest.raises(anthropic.AuthenticationError):
        claude.with_options(api_key="sk-wrong").models.list()


@pytest.fixture
def oai_models(router: Any) -> list[str]:
    """The models the `app` key may use, as the OpenAI list gives them."""
    answer = httpx.get(router.base_url + "/models", headers={"x-api-key": KEY["x-api-key"]})
    assert answer.json()["object"] == "list"
    return [m["id"] for m in answer.json()["data"] if m["object"] == "model"]


def test_paths_the_router_does_not_serve_answer_anthropic_clients_in_their_shape(
    claude: anthropic.Anthropic, router: Any
) -> None:
    """An Anthropic client asking for what the router does not serve (batches, say) gets
    Anthropic's error shape, which its SDK reads; other clients get OpenAI's."""
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.batches.list()
    assert missing.value.body == {  # type: ignore[comparison-overlap]
        "type": "error",
        "error": {"type": "not_found_error", "message": "no route for GET /v1/messages/batches"},
    }
    headers = {**KEY, "anthropic-version": "2023-06-01"}
    wrong = httpx.get(router.url + "/v1/messages", headers=headers, timeout=10)
    assert wrong.status_code == 405 and wrong.json()["type"] == "error"
    plain = httpx.get(router.url + "/v1/messages/batches", headers=KEY, timeout=10)
    assert plain.status_code == 404 and plain.json()["error"]["code"] == "not_found"
