"""`llm-switchyard explain`: rate-limit policies, request headers per key, the fallback order."""

from __future__ import annotations

import textwrap

from router.cli import main
from router.graph.load import load_graph
from router.routing import dispatch
from router.routing.dispatch import fallback_chain

CONFIG = """
server:
  auth: keys
  rate_limits: [everyone]
rate_limits:
  everyone: {requests_per_second: 50}
  per-model: {requests_per_minute: 100, tokens_per_minute: 20000}
  quota: {requests_per_minute: 7, on_limit: wait, max_wait: 5}
  per-key: {max_concurrent: 4, tokens_per_day: 100000, on_error: closed}
providers:
  tk: {plugin: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-up-Secret-1,
       rate_limits: [quota]}
  hd: {plugin: openai, base_url: "http://127.0.0.1:9/h/v1",
       headers: {Authorization: "Bearer hdr-Secret-2", x-goog-api-key: goog-Secret-3,
                 x-team: blue}}
models:
  chat:
    targets: [{provider: tk, model: m1}, {provider: hd, model: m2}]
    rate_limits: [per-model]
    fallbacks: [left, right]
  left: {targets: [{provider: hd, model: l}], fallbacks: [last]}
  right: {targets: [{provider: hd, model: r}], fallbacks: [last, left]}
  last: {targets: [{provider: hd, model: z}]}
keys:
  app: {key: sk-client-App-1, models: ["*"], rate_limits: [per-key]}
  ops: {key: sk-client-Ops-1, models: [chat]}
  viewer: {key: sk-client-View-1, models: [last]}
header_rewrites:
  - {set: {x-caller: "{key}/{model}"}}
"""
SECRETS = ("sk-up-Secret-1", "hdr-Secret-2", "goog-Secret-3", "sk-client-")


def _config(tmp_path) -> str:
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    return str(path)


def test_explain_shows_every_rate_limit_policy_that_applies(tmp_path, capsys):
    assert main(["explain", "--config", _config(tmp_path), "--model", "chat"]) == 0
    out = capsys.readouterr().out
    assert "rate limits (counters in memory, this process):" in out
    assert "  global: everyone: 50 requests/second; on limit: 429; backend down: admit" in out
    assert "  model: per-model: 100 requests/minute, 20000 tokens/minute; on limit: 429" in out
    assert "    tk/m1: quota: 7 requests/minute; on limit: wait up to 5s, then 429" in out
    assert "    hd/m2: none" in out
    assert (
        "    app: per-key: 100000 tokens/day, 4 concurrent; on limit: 429; "
        "backend down: reject (503)" in out
    )
    assert "    ops: no key policy" in out
    assert "  keys that may not (404): viewer" in out


def test_explain_shows_request_headers_for_a_key_with_secrets_masked(tmp_path, capsys):
    config = _config(tmp_path)
    assert main(["explain", "--config", config, "--model", "chat"]) == 0
    out = capsys.readouterr().out
    assert "request headers, as key 'app' (secrets masked):" in out  # first allowed key
    assert "    x-caller: app/chat" in out
    assert "    x-team: blue" in out
    assert out.count("    authorization: ***") == 2  # api_key and the configured header
    assert "    x-goog-api-key: ***" in out
    for secret in SECRETS:
        assert secret not in out

    assert main(["explain", "--config", config, "--model", "chat", "--key", "ops"]) == 0
    out = capsys.readouterr().out
    assert "as key 'ops'" in out and "    x-caller: ops/chat" in out
    assert "x-caller: app/chat" not in out

    assert main(["explain", "--config", config, "--model", "chat", "--key", "viewer"]) == 0
    assert "key 'viewer' may not use this model (the router answers 404)" in (
        capsys.readouterr().out
    )
    assert main(["explain", "--config", config, "--model", "chat", "--key", "opz"]) == 2
    assert "unknown key 'opz' (did you mean 'ops'?)" in capsys.readouterr().err


def test_fallback_chain_is_public_and_is_the_order_explain_prints(tmp_path, capsys):
    graph = load_graph(_config(tmp_path))
    chain = [r.name for r in fallback_chain(graph, graph.routes["chat"])]
    assert chain == ["chat", "left", "right", "last"]  # breadth first, each once
    assert "fallback_chain" in dispatch.__all__ and not hasattr(dispatch, "_chain")
    assert main(["explain", "--config", graph.source_file, "--model", "chat"]) == 0
    assert "fallbacks (breadth first, each once): left -> right -> last" in capsys.readouterr().out


RESCUE = """
server: {auth: none}
providers:
  plain: {plugin: openai, base_url: "http://127.0.0.1:9/v1", continuation: false}
  mock: {plugin: mock}
models:
  chat:
    targets:
      - {provider: plain, model: a}
      - {provider: plain, model: b, continuation: true}
      - {provider: mock, model: c}
    stream_recovery: continue_or_regenerate
    hedge: {after: 2, percentile: p95, floor: 0.5, min_samples: 10}
  fixed:
    targets: [{provider: mock, model: c}]
    hedge: {after: 1.5, max: 2}
"""


def test_explain_shows_who_continues_a_prefill_and_the_hedge(tmp_path, capsys):
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(RESCUE))
    assert main(["explain", "--config", str(path), "--model", "chat"]) == 0
    out = capsys.readouterr().out
    assert "connections]\n     continues a prefill: no (provider)\n  2. plain/b" in out
    assert "connections]\n     continues a prefill: yes (target)\n  3. mock/c" in out
    assert "connections]\n     continues a prefill: yes (plugin default)\n" in out
    assert "hedge: when no first token after the target's p95 time to first token (at least " in out
    assert "0.5s) once it has 10 of them, until then 2s" in out
    assert "stream recovery: continue_or_regenerate (" in out
    assert main(["explain", "--config", str(path), "--model", "fixed"]) == 0
    out = capsys.readouterr().out
    assert "hedge: when no first token after 1.5s," in out and "at most 2 per request" in out
    assert "stream recovery: error (" in out
