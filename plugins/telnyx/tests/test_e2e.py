"""End to end: the official OpenAI SDK -> a real router -> the fake Telnyx upstream."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
from llm_router_telnyx import testing as fake

from router.testing import closed_after_test

UPSTREAM_KEY = "KEY0193upstreamsecret"

CONFIG = """
server: {{auth: keys}}
providers:
  tx:
    plugin: telnyx
    base_url: {url}/v2/ai
    api_key: {key}
    settings: {settings}
models:
  chat:
    targets: [{{provider: tx, model: moonshotai/Kimi-K2.6}}]
    retries: {{attempts: 0}}
  chat-retry:
    targets: [{{provider: tx, model: moonshotai/Kimi-K2.6}}]
    retries: {{attempts: 1, backoff_initial: 0.01}}
  embed:
    targets: [{{provider: tx, model: thenlper/gte-large}}]
    retries: {{attempts: 0}}
keys:
  app: {{key: sk-client-1}}
"""
USER = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def start(fake_upstream, router_server):
    def start(settings: str = "{}", key: str = UPSTREAM_KEY) -> openai.OpenAI:
        server = router_server(CONFIG.format(url=fake_upstream.url, key=key, settings=settings))
        return closed_after_test(
            openai.OpenAI(base_url=server.base_url, api_key="sk-client-1", max_retries=0)
        )

    return start


@pytest.fixture
def client(start, fake_upstream):
    fake.install(fake_upstream, api_key=UPSTREAM_KEY, answer="Hello there")
    return start()


# -- answers ------------------------------------------------------------------------------------


def test_chat_round_trip_with_extensions(client, fake_upstream):
    extensions = {
        "guided_choice": ["yes", "no"],
        "min_p": 0.1,
        "use_beam_search": True,
        "best_of": 2,
        "enable_thinking": False,
        "tools": [{"type": "retrieval", "retrieval": {"bucket_ids": ["docs"]}}],
        "openai_api_key": "sk-client-owned",
    }
    reply = client.chat.completions.create(model="chat", messages=USER, extra_body=extensions)
    assert reply.choices[0].message.content == "Hello there"
    assert reply.usage.total_tokens == 15
    (seen,) = fake_upstream.received()
    assert seen.path == fake.CHAT_PATH
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    sent = seen.json()
    assert sent["model"] == "moonshotai/Kimi-K2.6" and sent["messages"] == USER
    assert "openai_api_key" not in sent
    extensions.pop("openai_api_key")
    assert {k: sent[k] for k in extensions} == extensions


def test_client_api_key_forwarded_when_allowed(start, fake_upstream):
    fake.install(fake_upstream, api_key=UPSTREAM_KEY)
    client = start("{allow_client_api_keys: true}")
    client.chat.completions.create(
        model="chat", messages=USER, extra_body={"api_key_ref": "my-openai-secret"}
    )
    assert fake_upstream.received()[0].json()["api_key_ref"] == "my-openai-secret"


def test_stream_with_reasoning_and_usage(client, fake_upstream):
    fake_upstream.add(
        fake.CHAT_PATH, fake.stream_reply(["Hel", "lo"], reasoning=["Let me ", "think."])
    )
    stream = client.chat.completions.create(
        model="chat", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == "Let me think."
    assert "".join(d.content or "" for d in deltas) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    (seen,) = fake_upstream.received()
    sent = seen.json()
    assert sent["stream"] is True and "stream_options" not in sent
    assert seen.headers["accept"] == "text/event-stream"


def test_deprecated_chat_path(start, fake_upstream):
    fake.install(fake_upstream, api_key=UPSTREAM_KEY, answer="Hi")
    client = start("{chat_path: /chat/completions}")
    reply = client.chat.completions.create(model="chat", messages=USER)
    assert reply.choices[0].message.content == "Hi"
    stream = client.chat.completions.create(model="chat", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hi"
    assert [r.path for r in fake_upstream.received()] == [fake.DEPRECATED_CHAT_PATH] * 2


def test_embeddings(client, fake_upstream):
    result = client.embeddings.create(model="embed", input=["a", "b"])
    assert [e.index for e in result.data] == [0, 1] and len(result.data[0].embedding) == 4
    (seen,) = fake_upstream.received()
    assert seen.path == fake.EMBEDDINGS_PATH
    sent = seen.json()
    assert sent["model"] == "thenlper/gte-large" and sent["input"] == ["a", "b"]
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_legacy_completions_not_offered(client, fake_upstream):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="chat", prompt="x")
    assert info.value.param == "model"
    assert fake_upstream.received() == []


# -- errors -------------------------------------------------------------------------------------

ERRORS = [
    (fake.auth_failed(), openai.AuthenticationError, 401, "authentication_error"),
    (fake.unauthorized(), openai.AuthenticationError, 401, "authentication_error"),
    (fake.rate_limited(reset=7), openai.RateLimitError, 429, "rate_limit_error"),
    (fake.unexpected_error(), openai.InternalServerError, 502, "server_error"),
    (fake.service_unavailable(), openai.InternalServerError, 503, "server_error"),
    (fake.detail_error(404, "Not Found"), openai.NotFoundError, 404, "invalid_request_error"),
    (fake.detail_error(400, "Bad model"), openai.BadRequestError, 400, "invalid_request_error"),
    (fake.validation_error(style="v1"), openai.BadRequestError, 400, "invalid_request_error"),
    (fake.validation_error(style="v2"), openai.BadRequestError, 400, "invalid_request_error"),
]
CODES = {
    401: "upstream_authentication_failed",
    429: "rate_limit_exceeded",
    502: "upstream_server_error",
    503: "upstream_unavailable",
    404: "model_not_found",
    400: None,
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("reply", "exc", "status", "type_"), ERRORS)
def test_upstream_errors(start, fake_upstream, reply, exc, status, type_, stream):
    fake_upstream.add(fake.CHAT_PATH, reply)
    client = start()
    with pytest.raises(exc) as info:
        result = client.chat.completions.create(model="chat", messages=USER, stream=stream)
        list(result) if stream else None
    error = info.value
    assert error.status_code == status
    assert error.type == type_ and error.code == CODES[status]
    assert UPSTREAM_KEY not in error.message
    if reply.status == 422:
        assert error.param == "messages" and "messages" in error.message
    if reply.status == 429:
        assert error.response.headers["retry-after"] == "7"
    assert len(fake_upstream.received(fake.CHAT_PATH)) == 1


def test_wrong_upstream_key_is_authentication_error(start, fake_upstream):
    fake.install(fake_upstream, api_key="KEYthe-right-one")
    client = start(key="KEYwrong-one")
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="chat", messages=USER)
    assert "Authentication failed" in info.value.message
    assert "KEYwrong-one" not in info.value.response.text


def test_validation_echo_does_not_leak_client_key(start, fake_upstream):
    secret = "sk-client-owned-secret"
    fake_upstream.add(fake.CHAT_PATH, fake.validation_error(echo={"openai_api_key": secret}))
    client = start("{allow_client_api_keys: true}")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="chat", messages=USER, extra_body={"openai_api_key": secret}
        )
    assert secret not in info.value.response.text
    assert fake_upstream.received()[0].json()["openai_api_key"] == secret


def test_mid_stream_error_frame(client, fake_upstream):
    fake_upstream.add(fake.CHAT_PATH, fake.stream_error_reply(["Hel", "lo"]))
    stream = client.chat.completions.create(model="chat", messages=USER, stream=True)
    text = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            text.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(text) == "Hello"
    assert "engine died" in info.value.message
    assert info.value.body["type"] == "server_error"
    assert info.value.body["code"] == "upstream_server_error"
    assert len(fake_upstream.received()) == 1


def test_telnyx_error_frame_before_content_is_a_status(client, fake_upstream):
    frames = [{"errors": [{"code": "10011", "title": "Too many requests"}]}]
    fake_upstream.add(fake.CHAT_PATH, fake.sse_reply(frames))
    with pytest.raises(openai.RateLimitError) as info:
        list(client.chat.completions.create(model="chat", messages=USER, stream=True))
    assert info.value.code == "rate_limit_exceeded"


# -- retries ------------------------------------------------------------------------------------


def test_server_error_retried_then_answered(client, fake_upstream):
    fake_upstream.add(fake.CHAT_PATH, fake.unexpected_error())
    reply = client.chat.completions.create(model="chat-retry", messages=USER)
    assert reply.choices[0].message.content == "Hello there"
    assert len(fake_upstream.received()) == 2


def test_rate_limit_waits_for_reset(client, fake_upstream):
    fake_upstream.add(fake.CHAT_PATH, fake.rate_limited(reset=1))
    reply = client.chat.completions.create(model="chat-retry", messages=USER)
    assert reply.choices[0].message.content == "Hello there"
    first, second = fake_upstream.received()
    assert second.at - first.at >= 0.9


def test_bad_request_not_retried(client, fake_upstream):
    fake_upstream.add(fake.CHAT_PATH, fake.validation_error())
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat-retry", messages=USER)
    assert len(fake_upstream.received()) == 1


# -- the router's output against the official OpenAI description ----------------------------------


def _sse(response: httpx.Response) -> list[dict]:
    lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    return [orjson.loads(line[6:]) for line in lines if line != "data: [DONE]"]


def test_output_matches_openai_schema(openapi_spec, fake_upstream, router_server):
    openapi = openapi_spec
    fake.install(fake_upstream, api_key=UPSTREAM_KEY)
    server = router_server(CONFIG.format(url=fake_upstream.url, key=UPSTREAM_KEY, settings="{}"))
    url = server.base_url + "/chat/completions"
    headers = {"authorization": "Bearer sk-client-1"}
    body = {"model": "chat", "messages": USER}

    openapi.validate(
        "CreateChatCompletionResponse", httpx.post(url, json=body, headers=headers).json()
    )

    fake_upstream.add(fake.CHAT_PATH, fake.stream_reply(["a", "b"], reasoning=["t"]))
    stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", url, json=stream_body, headers=headers) as response:
        chunks = _sse(response)
    assert len(chunks) == 6
    for chunk in chunks:
        openapi.validate("CreateChatCompletionStreamResponse", chunk)

    fake_upstream.add(fake.CHAT_PATH, fake.validation_error())
    openapi.validate("ErrorResponse", httpx.post(url, json=body, headers=headers).json())

    fake_upstream.add(fake.CHAT_PATH, fake.stream_error_reply(["a"]))
    with httpx.stream("POST", url, json={**body, "stream": True}, headers=headers) as response:
        *_, last = _sse(response)
    openapi.validate("ErrorResponse", last)
