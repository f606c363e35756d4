"""Failure steps and breakers in the config, `llm-switchyard explain`, and the strategies."""

from __future__ import annotations

import collections
import textwrap

import openai
import pytest

from router.cli import main
from router.config import ConfigError
from router.config.resilience import BreakerConfig, FailureSteps
from router.graph.load import load_graph
from router.routing import strategies
from router.testing import chat_completion, closed_after_test, json_reply

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
BASE = """
server: {{auth: none}}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1"}}
  b: {{plugin: openai, base_url: "{url}/b/v1"}}
models:
  chat:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
{extra}
"""


def _yaml(extra, url="http://127.0.0.1:9", more=""):
    """BASE with `extra` keys for model `chat` and `more` models (given at model level)."""
    chat = textwrap.indent(textwrap.dedent(extra), "    ")
    return BASE.format(url=url, extra=chat) + textwrap.indent(textwrap.dedent(more), "  ")


def _write(tmp_path, extra, more=""):
    path = tmp_path / "router.yaml"
    path.write_text(_yaml(extra, more=more))
    return str(path)


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("on_failure: {content_policy: retry}", "models.chat.on_failure.content_policy", "'next'"),
        ("on_failure: {context_length: next}", "models.chat.on_failure.context_length", "context"),
        ("on_failure: {serverr: next}", "models.chat.on_failure", "did you mean 'server'"),
        ("breaker: {failure_rate: 1.5}", "models.chat.breaker.failure_rate", "less than or"),
        ("stream_recovery: resume", "models.chat.stream_recovery", "'continue'"),
    ],
)
def test_bad_resilience_keys_name_file_line_and_key(tmp_path, extra, where, message):
    with pytest.raises(ConfigError) as info:
        load_graph(_write(tmp_path, extra))
    text = str(info.value)
    assert f"router.yaml:9: {where}" in text and message in text


def test_every_resilience_key_is_documented():
    for model in (FailureSteps, BreakerConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


def test_configured_steps_are_enforced(fake_upstream, router_server, tmp_path):
    extra = "on_failure: {server: next, content_policy: next}"
    server = router_server(_yaml(extra, url=fake_upstream.url))
    client = closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=10)
    )
    fake_upstream.add(A, json_reply({"error": {"message": "boom"}}, 500))
    fake_upstream.set_default(B, json_reply(chat_completion("from b", model="mb")))
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=MSGS)
    assert raw.parse().choices[0].message.content == "from b"
    assert len(fake_upstream.received(A)) == 1  # `next`: no retry on a
    policy = {"error": {"message": "flagged", "code": "content_policy_violation"}}
    fake_upstream.add(A, json_reply(policy, 400))
    reply = client.chat.completions.create(model="chat", messages=MSGS)
    assert reply.choices[0].message.content == "from b"  # another target may judge


def test_explain_prints_the_route(tmp_path, capsys):
    config = _write(
        tmp_path,
        """\
        strategy: weighted
        retries: {attempts: 3, deadline: 20}
        on_failure: {timeout: retry}
        breaker: {consecutive_failures: 4, open_for: 15}
        fallbacks: [backup]
        context_fallback: big
        stream_recovery: continue
        """,
        """\
        backup:
          targets: [{provider: b, model: mb2}]
        big:
          targets: [{provider: b, model: mb3}]
        """,
    )
    assert main(["explain", "--config", config, "--model", "chat"]) == 0
    out = capsys.readouterr().out
    assert "strategy: weighted" in out and "1. a/ma" in out and "2. b/mb" in out
    assert "up to 3 more on the same target" in out and "deadline: 20s" in out
    assert "timeout             -> retry   (configured)" in out
    assert "content_policy      -> fail" in out
    assert "opens after 4 failures in a row" in out and "for 15s" in out
    assert "fallbacks (breadth first, each once): backup" in out
    assert "context fallback: big" in out and "stream recovery: continue" in out
    assert "first token 60s" in out and "limits:" in out
    assert main(["explain", "--config", config, "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


class _T:
    def __init__(self, name, weight=1.0, in_flight=0, latency=None):
        self.label, self.weight, self.in_flight, self.latency = name, weight, in_flight, latency


def test_strategies_order_as_specified():
    a, b, c = _T("a", 3, 2, 0.5), _T("b", 1, 0, 0.1), _T("c", 1, 1, None)
    assert strategies.priority([a, b, c]) == [a, b, c]
    assert strategies.least_busy([a, b, c]) == [b, c, a]
    assert strategies.lowest_latency([a, b, c]) == [c, b, a]  # unmeasured first
    rr = strategies.strategy_for("round_robin")
    assert [rr([a, b, c])[0] for _ in range(6)] == [a, b, c, a, b, c]
    firsts = collections.Counter(strategies.weighted([a, b])[0].label for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80  # weight 3 of 4


def test_round_robin_and_weighted_through_the_router(fake_upstream, router_server):
    more = """\
        heavy:
          strategy: weighted
          targets: [{provider: a, model: ma, weight: 4}, {provider: b, model: mb}]
        """
    config = _yaml("strategy: round_robin", url=fake_upstream.url, more=more)
    server = router_server(config)
    client = closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=10)
    )
    fake_upstream.set_default(A, json_reply(chat_completion("a", model="ma")))
    fake_upstream.set_default(B, json_reply(chat_completion("b", model="mb")))
    seen = []
    for _ in range(4):
        raw = client.chat.completions.with_raw_response.create(model="chat", messages=MSGS)
        seen.append((raw.headers["x-router-provider"], raw.parse().model))
    assert seen in ([("a", "ma"), ("b", "mb")] * 2, [("b", "mb"), ("a", "ma")] * 2)
    fake_upstream.reset()
    fake_upstream.set_default(A, json_reply(chat_completion("a", model="ma")))
    fake_upstream.set_default(B, json_reply(chat_completion("b", model="mb")))
    for _ in range(100):
        client.chat.completions.create(model="heavy", messages=MSGS)
    share = len(fake_upstream.received(A)) / 100
    assert 0.6 < share < 0.95  # 80 % expected
