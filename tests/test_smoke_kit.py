"""The test kit itself: a router in front of a fake OpenAI-compatible upstream."""

import openai
import pytest

from router.testing import chat_chunks, chat_completion, closed_after_test, json_reply, sse_reply

CONFIG = """
server: {{auth: keys}}
providers:
  up:
    plugin: openai
    base_url: {url}/v1
    api_key: sk-upstream-secret
models:
  chat:
    targets: [{{provider: up, model: up-model}}]
keys:
  app: {{key: sk-client-1}}
"""


@pytest.fixture
def client(fake_upstream, router_server):
    server = router_server(CONFIG.format(url=fake_upstream.url))
    return closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="sk-client-1", max_retries=0)
    )


def test_non_stream_round_trip(client, fake_upstream):
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("Hi there")))
    reply = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "x"}]
    )
    assert reply.choices[0].message.content == "Hi there"
    (seen,) = fake_upstream.received("/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer sk-upstream-secret"
    assert seen.json()["model"] == "up-model"


def test_stream_round_trip(client, fake_upstream):
    fake_upstream.add("/v1/chat/completions", sse_reply(chat_chunks(["a", "b"])))
    stream = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "x"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "ab"
