"""Breaker state and transitions at `GET /metrics`, through a real router."""

from __future__ import annotations

import time

import httpx
import openai

from router.testing import chat_completion, json_reply

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
CONFIG = """
server: {{auth: none}}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1"}}
  b: {{plugin: openai, base_url: "{url}/b/v1"}}
models:
  chat:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{attempts: 0}}
    breaker: {{consecutive_failures: 2, failure_rate: null, open_for: 0.5}}
"""


def _samples(url: str, name: str) -> dict[str, float]:
    """`{labels: value}` for every sample of one metric in the Prometheus text."""
    out = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def _state(url: str) -> dict[str, float]:
    return _samples(url, "llm_router_breaker_state")


def _moves(url: str, target: str) -> dict[str, float]:
    prefix = f'{{model="chat",target="{target}",to="'
    samples = _samples(url, "llm_router_breaker_transitions_total")
    return {k[len(prefix) : -2]: v for k, v in samples.items() if k.startswith(prefix)}


def test_metrics_show_each_targets_breaker_state_and_transitions(fake_upstream, router_server):
    router = router_server(CONFIG.format(url=fake_upstream.url))
    client = openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
    a, b = '{model="chat",target="a/ma"}', '{model="chat",target="b/mb"}'
    assert _state(router.url) == {a: 0, b: 0}
    assert _moves(router.url, "a/ma") == {"open": 0, "half_open": 0, "closed": 0}

    fake_upstream.add(A, *[json_reply({"error": {"message": "down"}}, 500)] * 2)
    fake_upstream.set_default(B, json_reply(chat_completion("from b", model="mb")))
    for _ in range(2):
        client.chat.completions.create(model="chat", messages=MSGS)
    assert _state(router.url) == {a: 2, b: 0}  # open
    assert _moves(router.url, "a/ma") == {"open": 1, "half_open": 0, "closed": 0}

    time.sleep(0.6)  # open_for has passed: the next request probes
    assert _state(router.url)[a] == 1
    fake_upstream.set_default(A, json_reply(chat_completion("from a", model="ma")))
    assert client.chat.completions.create(model="chat", messages=MSGS).model == "ma"
    assert _state(router.url) == {a: 0, b: 0}
    assert _moves(router.url, "a/ma") == {"open": 1, "half_open": 1, "closed": 1}
    assert _moves(router.url, "b/mb") == {"open": 0, "half_open": 0, "closed": 0}


def test_a_stopped_router_leaves_no_breaker_series(fake_upstream, router_server):
    router = router_server(CONFIG.format(url=fake_upstream.url))
    assert len(_state(router.url)) == 2
    router.stop()
    other = router_server(CONFIG.format(url=fake_upstream.url), name="other.yaml")
    assert len(_state(other.url)) == 2  # only the running router's breakers
