"""End to end: the official OpenAI SDK -> a real router -> the fake LiteLLM proxy."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
from llm_router_litellm import testing as fake

from router.testing import Reply, closed_after_test

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]

CONFIG = """
providers:
  koboi:
    plugin: litellm
    base_url: {url}/v1
    api_key: {key}
    settings: {{auth_header: {header}}}
models:
  chat:
    targets: [{{provider: koboi, model: openai/gpt-4o-mini}}]
    retries: {{attempts: {attempts}, backoff_initial: 0.01, backoff_max: 0.02}}
    context_fallback: big
  big:
    targets: [{{provider: koboi, model: anthropic/claude-4-5-sonnet}}]
    retries: {{attempts: 0}}
  embed:
    targets: [{{provider: koboi, model: openai/text-embedding-3-small}}]
keys:
  app: {{key: sk-client-1}}
"""
PROXY_KEY = "sk-litellm-test"
MODELS = ("openai/gpt-4o-mini", "anthropic/claude-4-5-sonnet", "openai/text-embedding-3-small")


@pytest.fixture
def start(fake_upstream, router_server):
    """`start(**overrides)`: a router in front of a working fake proxy, and its SDK client."""

    clients: list[openai.OpenAI] = []

    def start(key=PROXY_KEY, header="authorization", attempts=0):
        fake.FakeLiteLLMProxy(keys=[PROXY_KEY], models=MODELS).install(fake_upstream)
        text = CONFIG.format(url=fake_upstream.url, key=key, header=header, attempts=attempts)
        server = router_server(text)
        client = closed_after_test(
            openai.OpenAI(base_url=server.base_url, api_key="sk-client-1", max_retries=0)
        )
        clients.append(client)
        return server, client

    yield start
    for client in clients:
        client.close()


@pytest.fixture
def client(start):
    return start()[1]


def test_chat_round_trip(client, fake_upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="chat",
        messages=MESSAGES,
        extra_body={"mock_response": "faked!", "num_retries": 3, "metadata": {"team": "a"}},
    )
    data = orjson.loads(raw.http_response.content)
    assert raw.parse().choices[0].message.content == "Hello from LiteLLM"
    (choice,) = data["choices"]
    assert choice["logprobs"] is None and choice["message"]["refusal"] is None
    assert "provider_specific_fields" not in orjson.dumps(data).decode()
    assert data["usage"]["total_tokens"] == 9
    (seen,) = fake_upstream.received(CHAT)
    assert seen.headers["authorization"] == f"Bearer {PROXY_KEY}"
    assert seen.json() == {
        "model": "openai/gpt-4o-mini",
        "messages": MESSAGES,
        "metadata": {"team": "a"},
    }


def test_stream_with_usage(client, fake_upstream):
    stream = client.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from LiteLLM"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 8
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    (seen,) = fake_upstream.received(CHAT)
    assert seen.json()["stream"] is True
    assert seen.headers["accept"] == "text/event-stream"


def test_raw_stream_frames_follow_the_openai_spec(start, fake_upstream):
    server, _ = start()
    body = {"model": "chat", "messages": MESSAGES, "stream": True}
    with httpx.stream(
        "POST",
        server.base_url + "/chat/completions",
        json=body,
        headers={"authorization": "Bearer sk-client-1"},
        timeout=10,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [orjson.loads(line[6:]) for line in lines[:-1]]
    assert all("finish_reason" in c["choices"][0] for c in chunks)  # key present, even null
    assert all("usage" not in c for c in chunks)  # the router's own usage request is hidden
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"  # no leftover usage chunk
    (seen,) = fake_upstream.received(CHAT)
    assert seen.json()["stream_options"] == {"include_usage": True}


def test_raw_key_header(start, fake_upstream):
    _, client = start(header="x-litellm-api-key")
    client.chat.completions.create(model="chat", messages=MESSAGES)
    (seen,) = fake_upstream.received(CHAT)
    assert seen.headers["x-litellm-api-key"] == PROXY_KEY
    assert "authorization" not in seen.headers


def test_wrong_proxy_key_is_an_auth_error_without_key_material(start, fake_upstream):
    _, client = start(key="sk-wrong-9Zq7")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert caught.value.status_code == 401
    text = caught.value.response.text
    assert "9Zq7" not in text and "sk-wrong" not in text
    assert caught.value.body["code"] == "upstream_authentication_failed"


def test_completions_and_embeddings(client, fake_upstream):
    text = client.completions.create(model="chat", prompt="say hi")
    assert text.choices[0].text == "Hello from LiteLLM"
    vectors = client.embeddings.create(model="embed", input=["a", "b"])
    assert [len(d.embedding) for d in vectors.data] == [3, 3]
    assert fake_upstream.received("/v1/completions")[0].json()["model"] == "openai/gpt-4o-mini"
    sent = fake_upstream.received("/v1/embeddings")[0].json()
    assert sent["model"] == "openai/text-embedding-3-small" and sent["input"] == ["a", "b"]


@pytest.mark.parametrize("done", [False, True], ids=["no-done", "with-done"])
def test_mid_stream_error_frame_reaches_the_client(client, fake_upstream, done):
    fake_upstream.add(CHAT, fake.chat_stream_failing(["Hel"], done=done, delay=0.2))
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hel"
    assert "upstream exploded mid-stream" in caught.value.message
    assert caught.value.body["type"] == "server_error"
    assert caught.value.body["code"] == "upstream_connection_error"
    assert len(fake_upstream.received(CHAT)) == 1


def test_error_frame_before_any_chunk_is_retried(start, fake_upstream):
    """Nothing reached the client yet, so the attempt fails as a whole and is retried
    instead of relaying a truncated answer."""
    _, client = start(attempts=1)
    frames = [fake.stream_error_frame(), "[DONE]"]
    fake_upstream.add(CHAT, Reply(200, fake.proxy_headers(stream=True), frames=frames))
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from LiteLLM"
    assert len(fake_upstream.received(CHAT)) == 2


def test_error_before_first_chunk_is_retried_then_answered(start, fake_upstream):
    _, client = start(attempts=2)
    fake_upstream.add(CHAT, fake.upstream_unreachable(), fake.api_error())
    stream = client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert len(fake_upstream.received(CHAT)) == 3


def test_rate_limit_retry_waits_for_llm_provider_retry_after(start, fake_upstream):
    _, client = start(attempts=1)
    fake_upstream.add(CHAT, fake.upstream_rate_limited(retry_after=1))
    reply = client.chat.completions.create(model="chat", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from LiteLLM"
    first, second = fake_upstream.received(CHAT)
    assert second.at - first.at >= 0.9


def test_context_window_moves_to_the_context_fallback(client, fake_upstream):
    fake_upstream.add(CHAT, fake.context_window())
    reply = client.chat.completions.create(model="chat", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from LiteLLM"
    models = [r.json()["model"] for r in fake_upstream.received(CHAT)]
    assert models == ["openai/gpt-4o-mini", "anthropic/claude-4-5-sonnet"]
