"""A provider that serves the Responses or Messages API itself (`native: [responses,
messages]`): requests pass to it untranslated, its answers and streams come back as it sent
them; a chain mixing it with chat targets falls back from one kind to the other; what only
a native target can do (stored state, server tools) goes to native targets only."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from router.testing import chat_chunks, json_reply, sse_reply
from router.translate import MessagesStream, ResponsesStream, chat_to_message, chat_to_response

CHAT = "/v1/chat/completions"
RESPONSES = "/nat/v1/responses"
MESSAGES = "/nat/v1/messages"
HELLO: list[Any] = [{"role": "user", "content": "Hello"}]
AUTH = {"authorization": "Bearer sk-apis-client"}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


def native_response(chat: Any) -> bytes:
    """A Responses API answer, as a server of that API sends it."""
    answer = chat.answer("From the source.", usage=(11, 4), model="nat-model")
    return orjson.dumps(chat_to_response(answer, {"model": "nat-model", "input": "Hello"}))


def native_message(chat: Any) -> bytes:
    answer = chat.answer("From the source.", usage=(11, 4), model="nat-model")
    request = {"model": "nat-model", "max_tokens": 64, "messages": HELLO}
    return orjson.dumps(chat_to_message(answer, request))


def native_events(api: str, pieces: list[str]) -> list[bytes]:
    """The events of a Responses or Messages stream, one SSE frame each, as such a server
    streams them (`event:` lines included)."""
    request = {"model": "nat-model", "max_tokens": 64, "messages": HELLO, "input": "Hello"}
    stream: Any = (ResponsesStream if api == "responses" else MessagesStream)(request, "nat-model")
    data = b"".join(stream.feed(c) for c in chat_chunks(pieces, model="nat-model")[:-1])  # type: ignore[arg-type]
    data += stream.finish()
    return [frame + b"\n\n" for frame in data.split(b"\n\n") if frame]


def test_responses_pass_through_untranslated(
    oai: openai.OpenAI, fake: Any, chat: Any, router: Any
) -> None:
    upstream_bytes = native_response(chat)
    fake.add(RESPONSES, json_reply(upstream_bytes))
    asked = {
        "model": "native",
        "input": "Hello",
        "previous_response_id": "resp_earlier",  # what only a native target can serve
        "store": True,
        "tools": [{"type": "web_search"}],
    }
    raw = httpx.post(router.base_url + "/responses", json=asked, headers=AUTH, timeout=10)
    assert raw.status_code == 200 and raw.content == upstream_bytes  # as it came
    assert raw.headers["x-router-provider"] == "nat"
    received = fake.received(RESPONSES)[0]
    assert received.json() == {**asked, "model": "nat-model"}
    assert received.headers["authorization"] == "Bearer sk-apis-native"

    fake.add(RESPONSES, json_reply(upstream_bytes))
    response = oai.responses.create(model="native", input="Hello")
    assert response.output_text == "From the source."


def test_responses_stream_pass_through(oai: openai.OpenAI, fake: Any, router: Any) -> None:
    frames = native_events("responses", ["From ", "the source."])
    fake.add(RESPONSES, sse_reply(frames))
    with oai.responses.stream(model="native", input="Hello") as stream:
        final = stream.get_final_response()
    assert (final.status, final.output_text) == ("completed", "From the source.")
    sent = fake.received(RESPONSES)[0].json()
    assert sent == {"model": "nat-model", "input": "Hello", "stream": True}  # no stream_options

    fake.add(RESPONSES, sse_reply(frames))
    asked = {"model": "native", "input": "Hello", "stream": True}
    raw = httpx.post(router.base_url + "/responses", json=asked, headers=AUTH, timeout=10)
    assert raw.content == b"".join(frames)


def test_messages_pass_through_untranslated(
    claude: anthropic.Anthropic, fake: Any, chat: Any, router: Any
) -> None:
    upstream_bytes = native_message(chat)
    fake.add(MESSAGES, json_reply(upstream_bytes))
    raw = claude.messages.with_raw_response.create(
        model="native",
        max_tokens=64,
        messages=HELLO,
        tools=[WEB_SEARCH],  # type: ignore[list-item]
    )
    assert raw.http_response.content == upstream_bytes
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "From the source."
    received = fake.received(MESSAGES)[0]
    assert received.json() == {
        "model": "nat-model",
        "max_tokens": 64,
        "messages": HELLO,
        "tools": [WEB_SEARCH],
    }
    # Client headers reach an upstream only through `server.forward_client_headers`.
    assert "anthropic-version" not in received.headers and "x-api-key" not in received.headers


def test_messages_stream_pass_through(claude: anthropic.Anthropic, fake: Any, router: Any) -> None:
    frames = native_events("messages", ["From ", "the source."])
    fake.add(MESSAGES, sse_reply(frames))
    headers = {"x-request-id": "native-messages-stream"}
    with claude.messages.stream(
        model="native", max_tokens=64, messages=HELLO, extra_headers=headers
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "From the source."
    line = router.wait_for_line(
        lambda raw: b"native-messages-stream" in raw and b'"request"' in raw
    )
    logged = orjson.loads(line)
    assert (logged["outcome"], logged["provider"], logged["operation"]) == (
        "answered",
        "nat",
        "messages",
    )
    assert (logged["prompt_tokens"], logged["completion_tokens"]) == (5, 3)  # the upstream's


def ask_mixed(api: str, stream: bool, oai: openai.OpenAI, claude: anthropic.Anthropic) -> str:
    """The text of an answer of model `mixed` (a native target, then a chat one)."""
    if api == "responses":
        if stream:
            with oai.responses.stream(model="mixed", input="Hello") as events:
                return events.get_final_response().output_text
        return oai.responses.create(model="mixed", input="Hello").output_text
    if stream:
        with claude.messages.stream(model="mixed", max_tokens=64, messages=HELLO) as events:
            return events.get_final_text()
    block = claude.messages.create(model="mixed", max_tokens=64, messages=HELLO).content[0]
    assert block.type == "text"
    return block.text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("api", ["responses", "messages"])
def test_mixed_chain_falls_back_from_native_to_translated(
    api: str, stream: bool, oai: openai.OpenAI, claude: anthropic.Anthropic, fake: Any, chat: Any
) -> None:
    native = RESPONSES if api == "responses" else MESSAGES
    overloaded = {"error": {"message": "overloaded", "type": "server_error", "code": None}}
    fake.add(native, json_reply(overloaded, status=503))
    if stream:
        fake.add(CHAT, sse_reply(chat_chunks(["Trans", "lated."])))
    else:
        fake.add(CHAT, json_reply(chat.answer("Translated.")))
    assert ask_mixed(api, stream, oai, claude) == "Translated."
    assert [r.path for r in fake.requests] == [native, CHAT]


@pytest.mark.parametrize("api", ["responses", "messages"])
def test_a_native_error_event_before_the_answer_falls_back(
    api: str, oai: openai.OpenAI, claude: anthropic.Anthropic, fake: Any
) -> None:
    """The events before the answer begins are held back (the error comes in a later read
    than they do), so the failure is still the router's to route around."""
    if api == "responses":
        first = native_events(api, ["x"])[:2]  # response.created, response.in_progress
        error = {"type": "error", "code": "server_error", "message": "boom", "param": None}
        failed = b"event: error\ndata: " + orjson.dumps({**error, "sequence_number": 2})
    else:
        first = native_events(api, ["x"])[:2]  # message_start, ping
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        failed = b"event: error\ndata: " + orjson.dumps(error)
    path = RESPONSES if api == "responses" else MESSAGES
    fake.add(path, sse_reply([*first, failed + b"\n\n"], delay=0.05))
    fake.add(CHAT, sse_reply(chat_chunks(["Trans", "lated."])))
    assert ask_mixed(api, True, oai, claude) == "Translated."


def test_native_stream_failing_mid_way(
    oai: openai.OpenAI, claude: anthropic.Anthropic, fake: Any
) -> None:
    frames = native_events("messages", ["From ", "the source."])
    fake.add(MESSAGES, sse_reply(frames, drop_after_frames=5))  # start, ping, block, 2 deltas
    texts: list[str] = []
    asked = claude.messages.stream(model="native", max_tokens=64, messages=HELLO)
    with pytest.raises(anthropic.APIStatusError) as raised, asked as stream:
        texts.extend(stream.text_stream)
    assert texts == ["From ", "the source."]
    assert raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]

    frames = native_events("responses", ["From ", "the source."])
    fake.add(RESPONSES, sse_reply(frames, drop_after_frames=6))
    with oai.responses.stream(model="native", input="Hello") as events:
        seen = list(events)
    assert [e.type for e in seen][-3:] == [
        "response.output_text.delta",
        "response.output_text.delta",
        "error",
    ]
    last = seen[-1]
    assert last.type == "error" and last.code == "server_error"
    assert last.sequence_number == 6


@pytest.mark.parametrize("api", ["responses", "messages"])
def test_what_only_a_native_target_can_do_never_goes_to_a_chat_target(
    api: str, oai: openai.OpenAI, claude: anthropic.Anthropic, fake: Any
) -> None:
    """Model `mixed` has a chat target after its native one: a request with stored state or
    a server tool goes to the native one only, and its failure is what the client gets."""
    fake.add(RESPONSES, json_reply({"error": {"message": "down"}}, status=503))
    fake.add(MESSAGES, json_reply({"error": {"message": "down"}}, status=503))
    if api == "responses":
        with pytest.raises(openai.InternalServerError) as raised:
            oai.responses.create(model="mixed", input="Hi", previous_response_id="resp_1")
        assert raised.value.status_code == 503
    else:
        with pytest.raises(anthropic.OverloadedError):
            claude.messages.create(
                model="mixed",
                max_tokens=9,
                messages=HELLO,
                tools=[WEB_SEARCH],  # type: ignore[list-item]
            )
    assert [r.path for r in fake.requests] == [RESPONSES if api == "responses" else MESSAGES]


def test_server_tools_are_refused_without_a_native_target(
    claude: anthropic.Anthropic, fake: Any
) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model="m", max_tokens=9, messages=HELLO, tools=[WEB_SEARCH])  # type: ignore[list-item]
    assert "server tool" in raised.value.body["error"]["message"]  # type: ignore[index]
    assert fake.requests == []


COMPACT = "/nat/v1/responses/compact"
COMPACTED = {
    "id": "resp_compact_1",
    "object": "response.compaction",
    "output": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "compaction", "id": "cmp_1", "encrypted_content": "opaque-summary"},
    ],
    "created_at": 1731459200,
    "usage": {
        "input_tokens": 420,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 37,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 457,
    },
}


def test_responses_compact_passes_through_to_native_targets_only(
    oai: openai.OpenAI, fake: Any, router: Any
) -> None:
    """`POST /v1/responses/compact`: the model's own compaction, which only a target serving
    the Responses API natively makes; as it came, its usage counted as the request's."""
    fake.add(COMPACT, json_reply(COMPACTED))
    history: Any = [
        {"role": "user", "content": "Hi"},
        {
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
        },
    ]
    raw = oai.responses.with_raw_response.compact(model="native", input=history)
    compacted = raw.parse()
    assert [item.type for item in compacted.output] == ["message", "compaction"]
    assert compacted.usage.input_tokens == 420
    assert raw.headers["x-router-provider"] == "nat"
    (sent,) = fake.received(COMPACT)
    assert sent.json() == {"model": "nat-model", "input": history}
    line = json.loads(router.wait_for_line(lambda x: b'"operation":"responses_compact"' in x))
    assert (line["prompt_tokens"], line["completion_tokens"]) == (420, 37)

    fake.add(COMPACT, json_reply({"error": {"message": "down"}}, status=503))
    with pytest.raises(openai.InternalServerError):  # (model `mixed`'s chat target cannot)
        oai.responses.compact(model="mixed", input=history)
    assert [r.path for r in fake.requests] == [COMPACT, COMPACT]
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.compact(model="m", input=history)
    assert refused.value.code == "unsupported_operation"
    assert "responses_compact" in refused.value.message
