"""Upstream timeouts on the paths users take: a silent upstream is given up on after the
first-token limit whether the request streams or not, and a model or a target may set its
own limits over its provider's."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from router.cli import main
from router.graph.load import load_graph
from router.testing import (
    FakeUpstream,
    Reply,
    RouterProcess,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)

SLOW = "/slow/v1/chat/completions"
FAST = "/fast/v1/chat/completions"
SHARED = "/shared/v1/chat/completions"
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
  shared:
    plugin: openai
    base_url: "{url}/shared/v1"
    timeouts: {{first_token: 10, total: 30}}
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
  quick:
    targets: [{{provider: shared, model: q}}]
    timeouts: {{first_token: 1}}
    retries: {{attempts: 0}}
  reasoning:
    targets: [{{provider: shared, model: r}}]
    retries: {{attempts: 0}}
  pinned:
    targets: [{{provider: shared, model: p, timeouts: {{first_token: 5}}}}]
    timeouts: {{first_token: 1}}
    retries: {{attempts: 0}}
  twitchy:
    targets: [{{provider: shared, model: t, timeouts: {{idle: 0.5}}}}]
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
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=60)
    )


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


def answer_after(seconds: float, content: str) -> Reply:
    reply = json_reply(chat_completion(content))
    reply.first_delay = seconds
    return reply


def test_a_model_sets_its_own_first_token_limit_over_its_providers(client, upstream):
    upstream.add(SHARED, answer_after(2, "too late"), answer_after(2, "thought it through"))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="quick", messages=MSGS)
    assert failed.value.status_code == 504, failed.value.message
    assert "sent no answer within 1s" in failed.value.message
    assert time.monotonic() - started < 1.9
    # Same provider, no model limit: the provider's 10 s apply.
    answer = client.chat.completions.create(model="reasoning", messages=MSGS)
    assert answer.choices[0].message.content == "thought it through"
    models = [r.json()["model"] for r in upstream.received(SHARED)]
    assert models == ["q", "r"]


def test_a_target_sets_its_own_limit_over_its_models(client, upstream):
    upstream.add(SHARED, answer_after(2, "pinned answer"))
    answer = client.chat.completions.create(model="pinned", messages=MSGS)
    assert answer.choices[0].message.content == "pinned answer"


def test_a_targets_idle_limit_ends_a_stalled_stream(client, upstream):
    frames = chat_chunks(["a", "b", "c", "d"])
    upstream.add(SHARED, sse_reply(frames, delay=1.5))  # the provider's idle limit is 30 s
    stream = client.chat.completions.create(model="twitchy", messages=MSGS, stream=True)
    started = time.monotonic()
    with pytest.raises(openai.APIError) as failed:
        for _ in stream:
            pass
    assert "stalled for 0.5s" in failed.value.message
    assert time.monotonic() - started < 10


BAD_TIMEOUTS = [
    (
        "models:\n  chat:\n    targets: [{provider: p, model: m}]\n"
        "    timeouts: {frist_token: 1}\n",
        "router.yaml:7: models.chat.timeouts.frist_token: unknown key 'frist_token' "
        "(did you mean 'first_token'?)",
    ),
    (
        "models:\n  chat:\n    targets: [{provider: p, model: m}]\n    timeouts: {connect: 1}\n",
        "router.yaml:7: models.chat.timeouts: `connect` is set per provider "
        "(`providers.<name>.timeouts.connect`)",
    ),
    (
        "models:\n  chat:\n    targets: [{provider: p, model: m, timeouts: {total: 0}}]\n",
        "router.yaml:6: models.chat.targets[0].timeouts.total: Input should be greater than 0",
    ),
    (
        "models:\n  chat:\n    targets: [{provider: p, model: m}]\n    timeouts: {idle: 100000}\n",
        "router.yaml:7: models.chat.timeouts.idle: Input should be less than or equal to 86400",
    ),
    (
        "models:\n  chat:\n    targets: [{provider: p, model: m, timeouts: {idle: -1}}]\n",
        "router.yaml:6: models.chat.targets[0].timeouts.idle: Input should be greater than 0",
    ),
]


@pytest.mark.parametrize(("models", "message"), BAD_TIMEOUTS)
def test_model_and_target_timeouts_are_validated(tmp_path, capsys, models, message):
    path = tmp_path / "router.yaml"
    head = "server: {auth: none}\nproviders:\n  p: {plugin: openai, base_url: http://h/v1}\n"
    path.write_text(head + models)
    assert main(["check", str(path)]) == 1
    assert message in capsys.readouterr().err


EXPLAINED = """
server: {auth: none}
providers:
  p: {plugin: openai, base_url: "http://127.0.0.1:9/v1", timeouts: {idle: 20}}
models:
  chat:
    targets:
      - {provider: p, model: a, timeouts: {total: 50}}
      - {provider: p, model: b}
    timeouts: {first_token: 2}
"""


def test_explain_shows_each_targets_effective_timeouts_and_their_origin(tmp_path, capsys):
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(EXPLAINED))
    assert main(["explain", "--config", str(path), "--model", "chat"]) == 0
    out = capsys.readouterr().out
    assert (
        "1. p/a  [timeouts: connect 5s (default), first token 2s (model), idle 20s (provider), "
        "total 50s (target); max 256 connections]" in out
    )
    assert (
        "2. p/b  [timeouts: connect 5s (default), first token 2s (model), idle 20s (provider), "
        "total 300s (default); max 256 connections]" in out
    )


ADMIN = "adm-timeouts-Rk2"
RELOADED = """
server: {{admin_key: {admin}, watch_config: false}}
providers:
  shared: {{plugin: openai, base_url: "{url}/shared/v1"}}
models:
  chat:
    targets: [{{provider: shared, model: m}}]
    timeouts: {{first_token: {first_token}}}
    retries: {{attempts: 0}}
keys:
  app: {{key: sk-timeouts-client}}
"""


def test_a_reload_applies_a_changed_model_timeout(tmp_path, fake_upstream):
    path = tmp_path / "router.yaml"
    path.write_text(RELOADED.format(admin=ADMIN, url=fake_upstream.url, first_token=5))
    fake_upstream.set_default(SHARED, answer_after(1.5, "answered"))
    with RouterProcess(path) as router:
        client = closed_after_test(
            openai.OpenAI(
                base_url=router.base_url, api_key="sk-timeouts-client", max_retries=0, timeout=30
            )
        )
        assert client.chat.completions.create(model="chat", messages=MSGS).choices
        path.write_text(RELOADED.format(admin=ADMIN, url=fake_upstream.url, first_token=0.5))
        reloaded = httpx.post(router.url + "/admin/reload", headers={"x-api-key": ADMIN})
        assert reloaded.json()["result"] == "reloaded"
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="chat", messages=MSGS)
        assert failed.value.status_code == 504
        assert "sent no answer within 0.5s" in failed.value.message


def test_the_documented_example_resolves_as_the_docs_say(tmp_path):
    docs = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    section = docs.split("## Timeouts", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "router.yaml"
    path.write_text("server: {auth: none}\n" + example)
    graph = load_graph(path, {"OPENAI_API_KEY": "sk-example"})
    limits = {
        t.label: (t.timeouts.first_token, t.timeouts.total)
        for route in graph.routes.values()
        for t in route.targets
    }
    assert limits == {
        "openai/gpt-4o-mini": (10, 300),
        "openai/o3": (240, 600),
        "openai/o4-mini": (120, 600),
    }
