"""Upstream timeouts on the paths users take: a silent upstream is given up on after the
first-token limit whether the request streams or not."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest

from router.testing import FakeUpstream, Reply, RouterProcess, chat_completion, json_reply

SLOW = "/slow/v1/chat/completions"
FAST = "/fast/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
CONFIG = """
server: {{auth: none}}
providers:
  slow:
    plugin: openai
    base_url: "{url}/slow/v1"
    timeouts: {{first_token: 1, total: 30}}
  fast: {{plugin: openai, base_url: "{url}/fast/v1"}}
  thinking: {{plugin: mock, settings: {{latency: 3}}, timeouts: {{first_token: 0.5}}}}
models:
  chat:
    targets: [{{provider: slow, model: m}}, {{provider: fast, model: f}}]
    retries: {{attempts: 0}}
  lone:
    targets: [{{provider: slow, model: m}}]
    retries: {{attempts: 0}}
  mock:
    targets: [{{provider: thinking, model: m}}]
    retries: {{attempts: 0}}
"""


def write_config(directory: Path, url: str) -> Path:
    path = directory / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=url)))
    return path


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def router(upstream, tmp_path_factory) -> Iterator[RouterProcess]:
    with RouterProcess(write_config(tmp_path_factory.mktemp("timeouts"), upstream.url)) as p:
        yield p


@pytest.fixture
def client(router, upstream) -> openai.OpenAI:
    upstream.reset()
    return openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=60)


def test_a_silent_upstream_is_left_after_the_first_token_limit_without_streaming(client, upstream):
    upstream.add(SLOW, Reply(hang=True))
    upstream.add(FAST, json_reply(chat_completion("from fast")))
    started = time.monotonic()
    answer = client.chat.completions.with_raw_response.create(model="chat", messages=MSGS)
    took = time.monotonic() - started
    assert answer.parse().choices[0].message.content == "from fast"
    assert answer.headers["x-router-provider"] == "fast"
    assert 0.9 < took < 10, took  # the first-token limit (1 s), not `total` (30 s)


def test_without_a_next_target_the_client_gets_a_timeout(client, upstream):
    upstream.add(SLOW, Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="lone", messages=MSGS)
    took = time.monotonic() - started
    assert failed.value.status_code == 504
    assert failed.value.body == {
        "message": "upstream 'slow' sent no answer within 1s",
        "type": "timeout_error",
        "param": None,
        "code": "upstream_timeout",
    }
    assert 0.9 < took < 10, took


def test_the_body_after_the_first_byte_is_bounded_by_total_only(client, upstream):
    body = orjson.dumps(chat_completion("slow body"))
    headers = {"content-type": "application/json"}
    # Headers at once, the body in two parts 1.5 s apart: longer than `first_token`.
    upstream.add(SLOW, Reply(200, headers, frames=[body[:20], body[20:]], delay=1.5))
    answer = client.chat.completions.create(model="lone", messages=MSGS)
    assert answer.choices[0].message.content == "slow body"


def test_the_mock_provider_keeps_the_first_token_limit_too(client):
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="mock", messages=MSGS)
    assert failed.value.status_code == 504
    assert "no answer within 0.5s" in failed.value.message
