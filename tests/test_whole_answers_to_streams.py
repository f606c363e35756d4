"""A streaming request that its upstream answers with one JSON answer (servers that ignore
`stream: true`), through `llm-switchyard serve`: the client still gets the stream it asked
for, made from the answer (`router.upstream.whole`), in every API; an error in such an answer
is the upstream's error; a body that is neither JSON nor an event stream is a malformed answer
that a fallback target replaces."""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)
from router.testing.fake_upstream import Reply

CONFIG = """
server: {{watch_config: false}}
providers:
  whole: {{plugin: openai, base_url: {whole}/v1, api_key: sk-whole}}
  good: {{plugin: openai, base_url: {good}/v1, api_key: sk-good}}
models:
  alone: {{targets: [{{provider: whole, model: m}}], retries: {{attempts: 1}}}}
  backed:
    targets: [{{provider: whole, model: m}}, {{provider: good, model: m}}]
    retries: {{attempts: 1}}
keys:
  app: {{key: sk-app}}
"""
HI = [{"role": "user", "content": "hi"}]
TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "lookup", "arguments": '{"q": "x"}'},
}


def _answer(content: str = "Hello whole!", tools: bool = False) -> dict:
    answer = chat_completion(content, usage=(9, 4))
    if tools:
        answer["choices"][0]["message"]["tool_calls"] = [TOOL_CALL]
        answer["choices"][0]["finish_reason"] = "tool_calls"
    return answer


@pytest.fixture
def upstreams():
    with FakeUpstream() as whole, FakeUpstream() as good:
        good.set_default("/v1/chat/completions", sse_reply(chat_chunks(["from ", "good"])))
        yield whole, good


@pytest.fixture
def router(tmp_path: Path, upstreams):
    whole, good = upstreams
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(whole=whole.url, good=good.url))
    with RouterProcess(path) as served:
        yield served


def _openai(router: RouterProcess) -> openai.OpenAI:
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="sk-app", max_retries=0)
    )


def test_a_chat_answer_that_came_whole_streams_to_the_client(router, upstreams) -> None:
    whole, _ = upstreams
    whole.set_default("/v1/chat/completions", json_reply(_answer(tools=True)))
    stream = _openai(router).chat.completions.create(
        model="alone", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello whole!"
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert [(t.index, t.id, t.function.name, t.function.arguments) for t in calls] == [
        (0, "call_1", "lookup", '{"q": "x"}')
    ]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 9
    assert {c.id for c in chunks} == {"chatcmpl-fake"}
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    # the upstream was asked for a stream: it is the one that answered otherwise
    assert whole.received("/v1/chat/completions")[0].json()["stream"] is True


def test_a_completion_that_came_whole_streams_too(router, upstreams) -> None:
    whole, _ = upstreams
    whole.set_default(
        "/v1/completions",
        json_reply(
            {
                "id": "cmpl-w",
                "object": "text_completion",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "text": "done", "finish_reason": "length"}],
            }
        ),
    )
    chunks = list(_openai(router).completions.create(model="alone", prompt="hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "done"
    assert chunks[-1].choices[0].finish_reason == "length"


def test_the_translated_apis_stream_such_an_answer_in_their_own_events(router, upstreams) -> None:
    whole, _ = upstreams
    whole.set_default("/v1/chat/completions", json_reply(_answer()))
    client = closed_after_test(
        anthropic.Anthropic(base_url=router.url, api_key="sk-app", max_retries=0)
    )
    with client.messages.stream(model="alone", max_tokens=50, messages=HI) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "Hello whole!"  # type: ignore[union-attr]
    assert message.usage.output_tokens == 4
    events = list(_openai(router).responses.create(model="alone", input="hi", stream=True))
    done = [e for e in events if e.type == "response.completed"]
    assert done and done[0].response.output_text == "Hello whole!"


def test_a_stream_its_server_labels_json_is_relayed_as_the_stream_it_is(router, upstreams) -> None:
    """Only a body that begins as JSON is read whole: events under a JSON label (a server's
    mislabelled stream) are relayed as they come."""
    whole, _ = upstreams
    labelled = sse_reply(chat_chunks(["one ", "two"]), headers={"content-type": "application/json"})
    whole.set_default("/v1/chat/completions", labelled)
    stream = _openai(router).chat.completions.create(model="alone", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "one two"


def test_an_error_in_a_whole_answer_is_the_upstream_s_error(router, upstreams) -> None:
    whole, _ = upstreams
    error = {"error": {"message": "quota gone", "type": "insufficient_quota"}}
    whole.set_default("/v1/chat/completions", json_reply(error))
    with pytest.raises(openai.APIStatusError) as failed:
        list(_openai(router).chat.completions.create(model="alone", messages=HI, stream=True))
    body = failed.value.response.json()["error"]
    assert "quota gone" in body["message"]
    # mapped as OpenAI's own quota error is, as the same answer to a request not streamed is
    assert failed.value.status_code == 429
    assert body["code"] == "insufficient_quota"


def test_a_body_that_is_no_event_stream_is_malformed_and_a_fallback_answers(
    router, upstreams
) -> None:
    whole, _ = upstreams
    page = Reply(200, {"content-type": "text/html"}, b"<html>maintenance</html>")
    whole.set_default("/v1/chat/completions", page)
    body = {"model": "alone", "messages": HI, "stream": True}
    with httpx.Client(base_url=router.base_url) as client:
        answer = client.post(
            "/chat/completions", json=body, headers={"authorization": "Bearer sk-app"}
        )
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == "malformed_upstream_response"
    assert "'text/html', not an event stream" in error["message"]
    stream = _openai(router).chat.completions.create(model="backed", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "from good"
