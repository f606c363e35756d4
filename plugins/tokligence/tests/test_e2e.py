"""End to end: the official openai SDK -> a real router -> the faked Tokligence gateway."""

import time

import openai
import pytest
from llm_router_tokligence import testing as fake

from router.testing import FakeUpstream, RouterServer, closed_after_test

CHAT = fake.CHAT_PATH
CONFIG = """
server: {{auth: keys}}
providers:
  tok:
    plugin: tokligence
    base_url: {url}/v1
    api_key: tok_upstream_secret
  tok-chat-only:
    plugin: tokligence
    base_url: {url}/v1
    api_key: tk-upstream-secret
    settings: {{embeddings: false}}
models:
  chat:
    targets: [{{provider: tok, model: gpt-4o-mini}}]
    retries: {{attempts: 0}}
  chat-retry:
    targets: [{{provider: tok, model: gpt-4o-mini}}]
    retries: {{attempts: 1, backoff_initial: 0.01, backoff_max: 0.05}}
  two:
    targets: [{{provider: tok, model: first}}, {{provider: tok, model: second}}]
  emb:
    targets: [{{provider: tok, model: text-embedding-3-small}}]
    retries: {{attempts: 0}}
  emb-off:
    targets: [{{provider: tok-chat-only, model: text-embedding-3-small}}]
keys:
  app: {{key: sk-client-1}}
"""
MESSAGES = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def server(upstream, tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "router.yaml"
    path.write_text(CONFIG.format(url=upstream.url))
    with RouterServer(path) as running:
        yield running


@pytest.fixture
def client(server, upstream):
    upstream.reset()
    return closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="sk-client-1", max_retries=0)
    )


def test_chat_round_trip(client, upstream):
    upstream.add(CHAT, fake.chat_reply("Hi!", "gpt-4o-mini", usage=(12, 2)))
    reply = client.chat.completions.create(
        model="chat", messages=MESSAGES, temperature=0.2, stop=["\n"]
    )
    assert reply.choices[0].message.content == "Hi!"
    assert reply.usage is not None and reply.usage.total_tokens == 14
    (seen,) = upstream.received()
    assert (seen.method, seen.path) == ("POST", CHAT)
    assert seen.headers["authorization"] == "Bearer tok_upstream_secret"
    assert seen.json() == {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "temperature": 0.2,
        "stop": ["\n"],
    }


def test_stream_round_trip_with_estimated_usage(client, upstream):
    upstream.add(CHAT, fake.chat_stream(["Hel", "lo", " world"]))
    stream = client.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 0
    (seen,) = upstream.received(CHAT)
    assert seen.json()["stream"] is True and seen.json()["model"] == "gpt-4o-mini"
    assert seen.headers["accept"] == "text/event-stream"


def test_stream_without_usage_request_has_no_usage_chunk(client, upstream):
    upstream.add(CHAT, fake.chat_stream(["ok"]))
    chunks = list(client.chat.completions.create(model="chat", messages=MESSAGES, stream=True))
    assert all(c.choices and c.usage is None for c in chunks)
    assert "stream_options" not in upstream.received(CHAT)[0].json()


def test_stream_tool_calls_get_index_zero(client, upstream):
    upstream.add(CHAT, fake.tool_call_stream("get_weather", ['{"city":', '"Paris"}']))
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    calls = [tc for c in stream if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [tc.index for tc in calls] == [0, 0, 0]
    assert calls[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"city":"Paris"}'


def test_mid_stream_error_reaches_the_client_as_an_error_event(client, upstream):
    upstream.add(CHAT, fake.stream_error(["Hel", "lo"], delay=0.05))  # after the first chunk
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert not isinstance(info.value, openai.APIStatusError)
    assert "".join(got) == "Hello"
    assert "stream error" in info.value.message
    assert len(upstream.received(CHAT)) == 1


def test_stream_failing_before_its_first_chunk_is_retried(client, upstream):
    upstream.add(CHAT, fake.stream_error([], role=False), fake.chat_stream(["fine"]))
    stream = client.chat.completions.create(model="chat-retry", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "fine"
    assert len(upstream.received(CHAT)) == 2


ERRORS = [
    # reply, exception, status, type, code
    (fake.missing_api_key(), openai.AuthenticationError, 401, "authentication_error",
     "upstream_authentication_failed"),
    (fake.invalid_token(), openai.AuthenticationError, 401, "authentication_error",
     "upstream_authentication_failed"),
    (fake.invalid_api_key(), openai.AuthenticationError, 401, "authentication_error",
     "upstream_authentication_failed"),
    (fake.bad_json(), openai.BadRequestError, 400, "invalid_request_error", None),
    (fake.firewall_block(), openai.BadRequestError, 400, "invalid_request_error",
     "content_policy_violation"),
    (fake.insufficient_balance(), openai.RateLimitError, 429, "insufficient_quota",
     "insufficient_quota"),
    (fake.no_adapter("gpt-4o-mini"), openai.NotFoundError, 404, "invalid_request_error",
     "model_not_found"),
    (fake.streaming_unsupported(), openai.NotFoundError, 404, "invalid_request_error",
     "streaming_not_supported"),
    (fake.service_unavailable(), openai.InternalServerError, 502, "server_error",
     "upstream_server_error"),
    # (made when the test runs: a reset computed at collection may have passed by then)
    (lambda: fake.rate_limited(reset=int(time.time()) + 600), openai.RateLimitError, 429,
     "rate_limit_error", "rate_limit_exceeded"),
    (fake.page_not_found(), openai.NotFoundError, 404, "invalid_request_error", "not_found"),
    (fake.method_not_allowed(), openai.BadRequestError, 400, "invalid_request_error", None),
    (fake.upstream_error("Rate limit reached", "requests", "rate_limit_exceeded"),
     openai.RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded"),
    (fake.upstream_error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
     openai.AuthenticationError, 401, "authentication_error", "upstream_authentication_failed"),
    (fake.upstream_error("maximum context length is 8192 tokens", "invalid_request_error",
                         "context_length_exceeded"),
     openai.BadRequestError, 400, "invalid_request_error", "context_length_exceeded"),
    (fake.upstream_error("The server had an error", "server_error", None),
     openai.InternalServerError, 502, "server_error", "upstream_server_error"),
    (fake.upstream_http_error(500, "<html>oops</html>"), openai.InternalServerError, 502,
     "server_error", "upstream_server_error"),
]  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("reply", "exc", "status", "type_", "code"), ERRORS)
def test_gateway_errors_reach_the_client_typed(
    client, upstream, reply, exc, status, type_, code, stream
):
    if callable(reply):
        reply = reply()
    upstream.add(CHAT, reply)
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="chat", messages=MESSAGES, stream=stream)
    error = info.value
    assert error.status_code == status
    assert (error.type, error.code) == (type_, code)
    assert "upstream 'tok' returned" in error.message
    assert "tok_upstream_secret" not in error.response.text
    assert len(upstream.received(CHAT)) == 1  # retries are off: exactly one attempt
    if exc is openai.RateLimitError and reply.status == 429:
        assert int(error.response.headers["retry-after"]) >= 1


def test_insufficient_balance_moves_to_the_next_target_without_retrying(client, upstream):
    upstream.add(CHAT, fake.insufficient_balance(), fake.chat_reply("from second", "second"))
    raw = client.chat.completions.with_raw_response.create(model="two", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "from second"
    assert raw.headers["x-router-attempts"] == "2"
    assert [r.json()["model"] for r in upstream.received(CHAT)] == ["first", "second"]


def test_rate_limit_waits_for_the_reset_then_retries(client, upstream):
    upstream.add(CHAT, fake.rate_limited(reset=int(time.time()) + 2), fake.chat_reply("later"))
    reply = client.chat.completions.create(model="chat-retry", messages=MESSAGES)
    assert reply.choices[0].message.content == "later"
    first, second = upstream.received(CHAT)
    assert second.at - first.at >= 0.9  # waited for X-RateLimit-Reset, not the 10 ms backoff


def test_wrapped_server_error_is_retried_on_the_same_target(client, upstream):
    upstream.add(CHAT, fake.upstream_http_error(503, "overloaded"), fake.chat_reply("ok"))
    assert client.chat.completions.create(model="chat-retry", messages=MESSAGES).choices
    assert len(upstream.received(CHAT)) == 2


def test_embeddings_round_trip(client, upstream):
    upstream.add(fake.EMBEDDINGS_PATH, fake.embeddings_reply([[0.5, -0.25]]))
    result = client.embeddings.create(model="emb", input="hello")
    assert result.data[0].embedding == [0.5, -0.25]
    (seen,) = upstream.received()
    assert seen.path == fake.EMBEDDINGS_PATH
    # The SDK asks for base64; the gateway answers floats, which the SDK takes as they are.
    assert seen.json() == {
        "model": "text-embedding-3-small",
        "input": "hello",
        "encoding_format": "base64",
    }


def test_embeddings_unsupported_by_the_adapter(client, upstream):
    upstream.add(fake.EMBEDDINGS_PATH, fake.embeddings_unsupported())
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="emb", input="hello")
    assert info.value.code == "embeddings_not_supported"
    assert "embeddings not supported by current adapter" in info.value.message


def test_embeddings_setting_off_keeps_them_away_from_the_gateway(client, upstream):
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="emb-off", input="hello")
    assert "model 'emb-off' does not serve embeddings" in info.value.message
    assert upstream.received() == []


def test_no_legacy_completions(client, upstream):
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="chat", prompt="hi")
    assert upstream.received() == []


# -- against the gateway emulation, with the router_server fixture ------------------------

GATEWAY_CONFIG = """
server: {{auth: none}}
providers:
  gw:
    plugin: tokligence
    base_url: {url}/v1
    {key}
    settings: {{auth_header: {header}}}
models:
  loop:
    targets: [{{provider: gw, model: loopback}}]
    retries: {{attempts: 0}}
  missing:
    targets: [{{provider: gw, model: gpt-9}}]
    retries: {{attempts: 0}}
"""


def _gateway_client(router_server, upstream, key="", header="authorization"):
    fake.TokligenceGateway(keys=frozenset({"tok_good"})).install(upstream)
    key_line = f"api_key: {key}" if key else ""
    config = GATEWAY_CONFIG.format(url=upstream.url, key=key_line, header=header)
    server = router_server(config)
    return closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    )


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_gateway_loopback_answers_with_either_auth_header(router_server, fake_upstream, header):
    client = _gateway_client(router_server, fake_upstream, "tok_good", header)
    reply = client.chat.completions.create(model="loop", messages=MESSAGES)
    assert reply.choices[0].message.content == "[loopback] Hello there"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=MESSAGES)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="loop", messages=MESSAGES, stream=True)
    assert info.value.code == "streaming_not_supported"


@pytest.mark.parametrize(
    ("key", "reason"),
    [("", "missing api key"), ("tk-documented", "invalid token"), ("tok_wrong", "invalid api key")],
)
def test_gateway_refuses_keys(router_server, fake_upstream, key, reason):
    client = _gateway_client(router_server, fake_upstream, key)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="loop", messages=MESSAGES)
    assert reason in info.value.message
    assert key == "" or key not in info.value.response.text
