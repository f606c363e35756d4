"""Answers an upstream should not have given, through `llm-switchyard serve`.

No answer at all: a 2xx chat completion or completion without a list of `choices`,
embeddings without a list of `data`, a body that does not decode as its `content-encoding`
says, bytes that are not HTTP. Each fails its attempt as a malformed upstream answer (502
`malformed_upstream_response`, not a lost connection), so that a fallback target answers
instead, rather than passing a 200 no client can read.

An answer in the other form than asked for. A streaming request answered with one JSON answer
(servers that ignore `stream: true`): the client still gets the stream it asked for, made from
the answer (`router.upstream.whole`), in every API; an error in such an answer is the
upstream's error; a body that is neither JSON nor an event stream is malformed. A request
that asked for no stream answered with one (servers that always stream): the client gets the
one JSON answer, gathered from the chunks (`router.upstream.gathered`); an error event in it
is the upstream's error; a stream with no answer in it is malformed.

An error in a 2xx answer: the error its code or type says, under the status it stands for
(a client's error reaches the client and is not sent to the fallbacks; a server error fails
the attempt)."""

from __future__ import annotations

import socket
from pathlib import Path

import anthropic
import httpx
import openai
import orjson
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunk,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)
from router.testing.fake_upstream import Received, Reply
from router.testing.raw import raw_server

# Chunks whose fields have types no chat chunk has, each after a good first chunk.
NONSENSE = {
    "choices that are not objects": {"choices": [1, 2]},
    "a delta that is a string": {"choices": [{"index": 0, "delta": "x"}]},
    "tool calls that are a string": {"choices": [{"index": 0, "delta": {"tool_calls": "x"}}]},
    "tool calls that are not objects": {
        "choices": [{"index": 0, "delta": {"tool_calls": [1, {"index": "a", "function": "f"}]}}]
    },
}

CONFIG = """
server: {{watch_config: false}}
providers:
  odd: {{plugin: openai, base_url: {odd}/v1, api_key: sk-odd}}
  good: {{plugin: openai, base_url: {good}/v1, api_key: sk-good}}
models:
  alone: {{targets: [{{provider: odd, model: m}}], retries: {{attempts: 1}}}}
  backed:
    targets: [{{provider: odd, model: m}}, {{provider: good, model: m}}]
    retries: {{attempts: 1}}
keys:
  app: {{key: sk-app}}
"""
HI = [{"role": "user", "content": "hi"}]
EMBEDDINGS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
    "model": "m",
    "usage": {"prompt_tokens": 1, "total_tokens": 1},
}
COMPLETION = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "text": "ok", "finish_reason": "stop", "logprobs": None}],
}
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


def _from_good(received: Received) -> Reply:
    """The fallback target: the form asked for, stream or not."""
    if received.json().get("stream"):
        return sse_reply(chat_chunks(["from ", "good"]))
    return json_reply(chat_completion("from good"))


@pytest.fixture
def upstreams():
    with FakeUpstream() as odd, FakeUpstream() as good:
        good.set_default("/v1/chat/completions", _from_good)
        good.set_default("/v1/completions", json_reply(COMPLETION))
        good.set_default("/v1/embeddings", json_reply(EMBEDDINGS))
        yield odd, good


@pytest.fixture
def router(tmp_path: Path, upstreams):
    odd, good = upstreams
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(odd=odd.url, good=good.url))
    with RouterProcess(path) as served:
        yield served


def _openai(router: RouterProcess) -> openai.OpenAI:
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="sk-app", max_retries=0)
    )


# -- no answer at all


def _without_lists(odd: FakeUpstream) -> None:
    odd.set_default("/v1/chat/completions", json_reply({"id": "x", "object": "chat.completion"}))
    odd.set_default("/v1/completions", json_reply({"id": "x", "choices": None}))
    odd.set_default("/v1/embeddings", json_reply({"object": "list", "model": "m"}))


def test_an_answer_without_its_list_is_a_malformed_upstream_answer(router, upstreams) -> None:
    _without_lists(upstreams[0])
    auth = {"authorization": "Bearer sk-app"}
    with httpx.Client(base_url=router.base_url, headers=auth) as client:
        for path, body, part in (
            ("/chat/completions", {"messages": HI}, "choices"),
            ("/completions", {"prompt": "hi"}, "choices"),
            ("/embeddings", {"input": "hi"}, "data"),
        ):
            answer = client.post(path, json={"model": "alone", **body})
            assert answer.status_code == 502, path
            error = answer.json()["error"]
            assert error["code"] == "malformed_upstream_response"
            assert f"without a list of `{part}`" in error["message"]
        # the translated APIs say it in their own shapes and statuses
        messages = client.post(
            "/messages", json={"model": "alone", "max_tokens": 5, "messages": HI}
        )
        assert messages.status_code == 500  # (Anthropic's API has no 502: its 500 api_error)
        assert messages.json()["type"] == "error"
        assert messages.json()["error"]["type"] == "api_error"
        assert "without a list of `choices`" in messages.json()["error"]["message"]
        responses = client.post("/responses", json={"model": "alone", "input": "hi"})
        assert responses.status_code == 502
        assert responses.json()["error"]["code"] == "malformed_upstream_response"


def test_a_fallback_target_answers_in_its_place(router, upstreams) -> None:
    _without_lists(upstreams[0])
    client = _openai(router)
    chat = client.chat.completions.with_raw_response.create(model="backed", messages=HI)
    assert chat.parse().choices[0].message.content == "from good"
    assert chat.headers["x-router-provider"] == "good"
    assert chat.headers["x-router-attempts"] == "3"  # the first try and 1 retry at `odd`
    assert client.completions.create(model="backed", prompt="hi").choices[0].text == "ok"
    assert client.embeddings.create(model="backed", input="hi").data[0].embedding == [0.5, 0.25]


def _not_http(conn: socket.socket) -> None:
    """Answer a connection with bytes that are not HTTP, then close (`raw_server`)."""
    conn.recv(65536)
    conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")


ENCODED = """
server: {{watch_config: false}}
providers:
  gzip: {{plugin: openai, base_url: {gzip}/v1, api_key: sk-1}}
  brotli: {{plugin: openai, base_url: {brotli}/v1, api_key: sk-2}}
  garbage: {{plugin: openai, base_url: {garbage}/v1, api_key: sk-3}}
models:
  gzip: {{targets: [{{provider: gzip, model: m}}], retries: {{attempts: 1}}}}
  brotli: {{targets: [{{provider: brotli, model: m}}], retries: {{attempts: 1}}}}
  garbage: {{targets: [{{provider: garbage, model: m}}], retries: {{attempts: 1}}}}
keys:
  app: {{key: sk-app}}
"""


def test_bytes_that_do_not_decode_or_are_not_http_are_a_malformed_answer(tmp_path: Path) -> None:
    """A body its `content-encoding` does not decode (gzip said, plain JSON sent), an encoding
    the router did not ask for, and bytes that are no HTTP answer."""
    body = orjson.dumps(chat_completion())
    with FakeUpstream() as gzip, FakeUpstream() as brotli, raw_server(_not_http) as garbage:
        encoded = {"content-type": "application/json"}
        gzip.set_default(
            "/v1/chat/completions", Reply(200, {**encoded, "content-encoding": "gzip"}, body)
        )
        brotli.set_default(
            "/v1/chat/completions", Reply(200, {**encoded, "content-encoding": "br"}, body)
        )
        path = tmp_path / "router.yaml"
        path.write_text(ENCODED.format(gzip=gzip.url, brotli=brotli.url, garbage=garbage))
        auth = {"authorization": "Bearer sk-app"}
        with (
            RouterProcess(path) as router,
            httpx.Client(base_url=router.base_url, headers=auth) as client,
        ):
            for model, words in (
                ("gzip", "body does not decode"),
                ("brotli", "encoding not asked for (br)"),
                ("garbage", "a malformed answer"),
            ):
                for stream in (False, True):
                    answer = client.post(
                        "/chat/completions", json={"model": model, "messages": HI, "stream": stream}
                    )
                    assert answer.status_code == 502, (model, stream)
                    error = answer.json()["error"]
                    assert error["code"] == "malformed_upstream_response", (model, stream, error)
                    assert f"upstream '{model}' sent " in error["message"]
                    assert words in error["message"]


# -- whole answers to streaming requests


def test_a_chat_answer_that_came_whole_streams_to_the_client(router, upstreams, openapi) -> None:
    odd, _ = upstreams
    odd.set_default("/v1/chat/completions", json_reply(_answer(tools=True)))
    stream = _openai(router).chat.completions.create(
        model="alone", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    for chunk in chunks:
        openapi.validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
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
    assert odd.received("/v1/chat/completions")[0].json()["stream"] is True


def test_a_completion_that_came_whole_streams_too(router, upstreams) -> None:
    odd, _ = upstreams
    odd.set_default(
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
    odd, _ = upstreams
    odd.set_default("/v1/chat/completions", json_reply(_answer()))
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
    odd, _ = upstreams
    labelled = sse_reply(chat_chunks(["one ", "two"]), headers={"content-type": "application/json"})
    odd.set_default("/v1/chat/completions", labelled)
    stream = _openai(router).chat.completions.create(model="alone", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "one two"


def test_an_error_in_a_whole_answer_is_the_upstream_s_error(router, upstreams) -> None:
    odd, _ = upstreams
    error = {"error": {"message": "quota gone", "type": "insufficient_quota"}}
    odd.set_default("/v1/chat/completions", json_reply(error))
    with pytest.raises(openai.APIStatusError) as failed:
        list(_openai(router).chat.completions.create(model="alone", messages=HI, stream=True))
    body = failed.value.response.json()["error"]
    assert "quota gone" in body["message"]
    # mapped as OpenAI's own quota error is, as the same answer to a request not streamed is
    assert failed.value.status_code == 429
    assert body["code"] == "insufficient_quota"


# An error object in a 2xx answer, and what the client gets: the status its code or type
# stands for (a number in its code, as LiteLLM-style proxies send; else OpenAI's and
# Anthropic's names), as the same error under that status would be mapped.
ERRORS_IN_A_200 = {
    "a status in its code": (
        {"error": {"message": "slow down", "type": "None", "code": "429"}},
        429,
        "rate_limit_exceeded",
    ),
    "OpenAI's context-length code": (
        {
            "error": {
                "message": "This model's maximum context length is 8192 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        400,
        "context_length_exceeded",
    ),
    "Anthropic's overloaded type": (
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        503,
        "upstream_unavailable",
    ),
    "OpenAI's missing model": (
        {
            "error": {
                "message": "no such model",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
        },
        404,
        "model_not_found",
    ),
    "nothing but a message": ({"error": {"message": "it broke"}}, 502, "upstream_server_error"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "asked to stream"])
@pytest.mark.parametrize("case", ERRORS_IN_A_200)
def test_an_error_in_a_200_is_the_error_its_code_or_type_says(
    router, upstreams, case: str, stream: bool
) -> None:
    odd, _ = upstreams
    error, status, code = ERRORS_IN_A_200[case]
    odd.set_default("/v1/chat/completions", json_reply(error))
    body = {"model": "alone", "messages": HI, "stream": stream}
    with httpx.Client(base_url=router.base_url) as client:
        answer = client.post(
            "/chat/completions", json=body, headers={"authorization": "Bearer sk-app"}
        )
    assert answer.status_code == status, answer.text
    said = answer.json()["error"]
    assert said["code"] == code
    assert error["error"]["message"] in said["message"]


def test_a_server_error_in_a_200_falls_back_and_a_client_error_does_not(router, upstreams) -> None:
    """A 2xx error with nothing but a message is a server error: the next target answers; a
    context-length error is the request's own, which another attempt would not mend."""
    odd, _ = upstreams
    odd.set_default("/v1/chat/completions", json_reply(ERRORS_IN_A_200["nothing but a message"][0]))
    answer = _openai(router).chat.completions.create(model="backed", messages=HI)
    assert answer.choices[0].message.content == "from good"
    odd.set_default(
        "/v1/chat/completions", json_reply(ERRORS_IN_A_200["OpenAI's context-length code"][0])
    )
    with pytest.raises(openai.BadRequestError) as failed:
        _openai(router).chat.completions.create(model="backed", messages=HI)
    assert failed.value.body["code"] == "context_length_exceeded"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        ({"type": "rate_limit_error", "message": "slow down"}, 429, "rate_limit_exceeded"),
        (ERRORS_IN_A_200["OpenAI's context-length code"][0]["error"], 400,
         "context_length_exceeded"),
    ],
    ids=["Anthropic's rate-limit type", "OpenAI's context-length code"],
)  # fmt: skip
def test_an_error_event_is_read_as_an_error_in_a_200_is(
    router, upstreams, error: dict, status: int, code: str
) -> None:
    """A stream whose first event is an error: the status its code or type stands for; a
    rate limit is transient, and the fallback answers, a client's error is not sent to it."""
    odd, good = upstreams
    odd.set_default("/v1/chat/completions", sse_reply([{"error": error}]))
    auth = {"authorization": "Bearer sk-app"}
    with httpx.Client(base_url=router.base_url, headers=auth) as client:
        alone = client.post("/chat/completions", json={"model": "alone", "messages": HI,
                                                       "stream": True})  # fmt: skip
        assert alone.status_code == status, alone.text
        assert alone.json()["error"]["code"] == code
        assert error["message"] in alone.json()["error"]["message"]
        backed = client.post("/chat/completions", json={"model": "backed", "messages": HI,
                                                        "stream": True})  # fmt: skip
    fell_back = good.received("/v1/chat/completions") != []
    assert fell_back is (status == 429)
    assert backed.status_code == (200 if fell_back else status)


def test_a_body_that_is_no_event_stream_is_malformed_and_a_fallback_answers(
    router, upstreams
) -> None:
    odd, _ = upstreams
    page = Reply(200, {"content-type": "text/html"}, b"<html>maintenance</html>")
    odd.set_default("/v1/chat/completions", page)
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


# -- streams to requests that asked for none


def _tool_stream() -> list:
    """Text, then a tool call whose name comes once and arguments in two pieces, then usage."""
    head = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 7, "model": "up"}

    def chunk(delta: dict, finish: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice]}

    call = {"index": 0, "id": "call_9", "type": "function"}
    return [
        chunk({"role": "assistant", "content": "Let me "}),
        chunk({"content": "look."}),
        chunk({"tool_calls": [{**call, "function": {"name": "lookup", "arguments": '{"q":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "x"}'}}]}),
        chunk({}, "tool_calls"),
        {**head, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 6}},
        "[DONE]",
    ]


def test_a_stream_sent_to_a_json_request_is_gathered_into_its_answer(
    router, upstreams, openapi
) -> None:
    odd, _ = upstreams
    odd.set_default("/v1/chat/completions", sse_reply(_tool_stream()))
    raw = _openai(router).chat.completions.with_raw_response.create(model="alone", messages=HI)
    assert raw.headers["content-type"].startswith("application/json")
    openapi.validate("CreateChatCompletionResponse", raw.http_response.json())
    answer = raw.parse()
    assert answer.id == "chatcmpl-s" and answer.object == "chat.completion"
    message = answer.choices[0].message
    assert message.content == "Let me look."
    assert message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [
        ("call_9", "lookup", '{"q": "x"}')
    ]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 6)
    assert answer.usage.total_tokens == 17  # (completed, as any answer is)
    assert odd.received("/v1/chat/completions")[0].json().get("stream") in (None, False)


def test_completions_and_the_translated_apis_gather_it_too(router, upstreams) -> None:
    odd, _ = upstreams
    odd.set_default("/v1/chat/completions", sse_reply(chat_chunks(["Hel", "lo"])))
    pieces = [
        {"id": "cmpl-s", "object": "text_completion", "created": 1, "model": "up",
         "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}
        for text, finish in (("ab", None), ("cd", "length"))
    ]  # fmt: skip
    odd.set_default("/v1/completions", sse_reply([*pieces, "[DONE]"]))
    completion = _openai(router).completions.create(model="alone", prompt="hi")
    assert completion.choices[0].text == "abcd"
    assert completion.choices[0].finish_reason == "length"
    client = closed_after_test(
        anthropic.Anthropic(base_url=router.url, api_key="sk-app", max_retries=0)
    )
    message = client.messages.create(model="alone", max_tokens=20, messages=HI)
    assert message.content[0].text == "Hello"  # type: ignore[union-attr]
    assert _openai(router).responses.create(model="alone", input="hi").output_text == "Hello"


def test_an_error_event_is_the_upstream_s_error_and_an_empty_stream_is_malformed(
    router, upstreams
) -> None:
    odd, _ = upstreams
    failing = [
        chat_chunk({"content": "a"}),
        {"error": {"message": "overloaded", "type": "server_error"}},
    ]
    odd.set_default("/v1/chat/completions", sse_reply(failing))
    with pytest.raises(openai.InternalServerError) as failed:
        _openai(router).chat.completions.create(model="alone", messages=HI)
    assert "overloaded" in failed.value.response.json()["error"]["message"]
    odd.set_default("/v1/chat/completions", sse_reply(["[DONE]"]))
    with pytest.raises(openai.APIStatusError) as empty:
        _openai(router).chat.completions.create(model="alone", messages=HI)
    assert empty.value.status_code == 502
    error = empty.value.response.json()["error"]
    assert error["code"] == "malformed_upstream_response"
    assert "event stream with no answer in it" in error["message"]
    answer = _openai(router).chat.completions.create(model="backed", messages=HI)
    assert answer.choices[0].message.content == "from good"


def test_nonsense_indexes_in_a_gathered_stream_are_no_internal_error() -> None:
    """Chunks whose indexes are not numbers (an upstream's nonsense) still gather."""
    from router.types import Operation
    from router.upstream.gathered import gather

    chunks = [
        chat_chunk({"content": "a"}),
        {"choices": [{"index": [1], "delta": {"content": "b"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": {}, "id": "c", "function": {"name": "f"}}]},
                }
            ]
        },
    ]
    answer = gather(Operation.CHAT, chunks)
    assert answer["choices"][0]["message"]["content"] == "ab"
    assert answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "f"


@pytest.mark.parametrize("nonsense", list(NONSENSE))
def test_a_chunk_of_the_wrong_types_is_a_malformed_answer_in_every_api(
    router, upstreams, nonsense: str
) -> None:
    """Never an internal error, nor a bug blamed on the plugin: the upstream's malformed
    answer, in each API's own error (an error event once the stream has begun)."""
    odd, _ = upstreams
    bad = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    frames = [chat_chunk({"role": "assistant", "content": "ok"}), {**bad, **NONSENSE[nonsense]}]
    asks = {
        "/chat/completions": {"messages": HI},
        "/messages": {"messages": HI, "max_tokens": 10},
        "/responses": {"input": "hi"},
    }
    auth = {"authorization": "Bearer sk-app"}
    with httpx.Client(base_url=router.base_url, headers=auth, timeout=20) as client:
        for path, ask in asks.items():
            odd.set_default("/v1/chat/completions", sse_reply([*frames, chat_chunk({}, "stop")]))
            body = {"model": "alone", "stream": True, **ask}
            text = client.post(path, json=body).text
            assert "internal" not in text.lower(), (path, text)
            assert "bug in its plugin" not in text, (path, text)
            if path != "/chat/completions" or "choices" in nonsense:
                assert "upstream 'odd' sent a stream" in text, (path, text)


@pytest.mark.parametrize(
    "choices",
    [[1], [{"index": 0, "message": "hi", "finish_reason": "stop"}],
     [{"index": 0, "message": {"role": "assistant", "tool_calls": "x"}, "finish_reason": "stop"}]],
    ids=["a choice that is a number", "a message that is a string", "tool calls that are a string"],
)  # fmt: skip
def test_an_answer_of_the_wrong_types_is_malformed_in_the_translated_apis(
    router, upstreams, choices: list
) -> None:
    odd, _ = upstreams
    answer = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": choices,
    }
    odd.set_default("/v1/chat/completions", json_reply(answer))
    auth = {"authorization": "Bearer sk-app"}
    with httpx.Client(base_url=router.base_url, headers=auth, timeout=20) as client:
        messages = client.post(
            "/messages", json={"model": "alone", "max_tokens": 9, "messages": HI}
        )
        assert messages.status_code == 500  # (Anthropic's API has no 502: its 500 api_error)
        assert messages.json()["error"]["type"] == "api_error"
        responses = client.post("/responses", json={"model": "alone", "input": "hi"})
        assert responses.status_code == 502
        assert responses.json()["error"]["code"] == "malformed_upstream_response"
        for error in (messages.json()["error"], responses.json()["error"]):
            assert "upstream 'odd' sent an answer whose fields do not have" in error["message"]
        # and a fallback target answers in its place
        backed = client.post("/responses", json={"model": "backed", "input": "hi"})
        assert backed.status_code == 200
        assert backed.json()["output"][0]["content"][0]["text"] == "from good"
