"""Rate-limit policies with the in-memory backend, through a real router and the openai SDK."""

from __future__ import annotations

import itertools
import threading
import time

import httpx
import openai
import pytest

from router.config.loader import ConfigError
from router.graph.load import load_graph
from router.testing import (
    Reply,
    RouterProcess,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)

MESSAGES = [{"role": "user", "content": "hi"}]


def config(
    url: str,
    policies: str,
    server: str = "",
    provider: str = "",
    model: str = "",
    key: str = "",
    extra: str = "",
) -> str:
    return f"""
rate_limits:
{policies}
server:
  auth: keys
{server}
providers:
  up:
    plugin: openai
    base_url: {url}/v1
    api_key: sk-upstream
{provider}
{extra}
models:
  chat:
    targets: [{{provider: up, model: up-model}}]
{model}
keys:
  app: {{key: sk-app}}
  other:
    key: sk-other
{key}
"""


def client(server, key: str = "sk-app") -> openai.OpenAI:
    return closed_after_test(openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0))


def raw(server, key: str = "sk-app", **body) -> httpx.Response:
    payload = {"model": "chat", "messages": MESSAGES, **body}
    return httpx.post(
        server.base_url + "/chat/completions",
        json=payload,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_key_policy_rejects_with_429_and_headers(fake_upstream, router_server):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    server = router_server(
        config(
            fake_upstream.url,
            "  per-app: {requests_per_minute: 2}",
            key="    rate_limits: [per-app]",
        ).replace("  app: {key: sk-app}", "  app: {key: sk-app, rate_limits: [per-app]}")
    )
    first = raw(server)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    second = raw(server)
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    third = raw(server)
    assert third.status_code == 429
    assert third.json()["error"]["code"] == "rate_limit_exceeded"
    assert "per-app" in third.json()["error"]["message"]
    assert 1 <= int(third.headers["retry-after"]) <= 60
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    assert float(third.headers["x-ratelimit-reset-requests"].rstrip("s")) > 50
    assert len(fake_upstream.received()) == 2
    # each key has its own budget: `other` carries the same policy and is still untouched
    assert raw(server, "sk-other").status_code == 200
    assert raw(server, "sk-other").status_code == 200
    assert raw(server, "sk-other").status_code == 429
    # the openai SDK sees a RateLimitError
    with pytest.raises(openai.RateLimitError):
        client(server).chat.completions.create(model="chat", messages=MESSAGES)


def test_a_fresh_window_says_when_it_next_frees_a_slot(fake_upstream, tmp_path):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    path = tmp_path / "router.yaml"
    path.write_text(
        config(
            fake_upstream.url,
            "  per-app: {requests_per_minute: 2, tokens_per_minute: 5000}",
            key="    rate_limits: [per-app]",
        ).replace("  app: {key: sk-app}", "  app: {key: sk-app, rate_limits: [per-app]}")
    )
    with RouterProcess(path, env={"LLM_ROUTER_ACCESS_LOG": "false"}) as router:
        first = raw(router)
        assert first.status_code == 200
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        # exact (2 a minute): the one admission leaves the window in exactly 60 s
        assert first.headers["x-ratelimit-reset-requests"] == "60s"
        # 5,000 tokens is counted in 0.6 s sub-windows: the rest of this one, then 60 s
        reset = float(first.headers["x-ratelimit-reset-tokens"].rstrip("s"))
        assert 60 < reset <= 60.6


def test_a_token_limit_counts_max_tokens_for_each_completion_asked_for(fake_upstream, tmp_path):
    """`n` answers of up to `max_tokens` each: the estimate counts them all (and a legacy
    completion's `best_of`, which the upstream makes and bills too)."""
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    path = tmp_path / "router.yaml"
    path.write_text(
        config(fake_upstream.url, "  g: {tokens_per_minute: 100000}", server="  rate_limits: [g]")
    )
    with RouterProcess(path, env={"LLM_ROUTER_ACCESS_LOG": "false"}) as router:
        first = raw(router, max_tokens=50, n=4)
        assert first.status_code == 200
        # the prompt (1 token + 4 per message) and 4 answers of 50
        assert first.headers["x-ratelimit-remaining-tokens"] == str(100000 - 5 - 4 * 50)


def test_a_completions_best_of_counts_as_many_answers_as_it_asks_for():
    from router.limits.admission import estimate_cost

    body = {"model": "m", "prompt": "abcd", "max_tokens": 10}
    assert estimate_cost(body) == 1 + 10
    assert estimate_cost({**body, "best_of": 3}) == 1 + 30
    assert estimate_cost({**body, "best_of": 3, "n": 2}) == 1 + 30  # n of the best_of
    assert estimate_cost({**body, "n": 5, "best_of": None}) == 1 + 50


def test_rejection_by_one_policy_consumes_nothing_from_others(fake_upstream, router_server):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    server = router_server(
        config(
            fake_upstream.url,
            "  wide: {requests_per_minute: 100}\n  narrow: {requests_per_minute: 1}",
            server="  rate_limits: [wide]",
        ).replace("  app: {key: sk-app}", "  app: {key: sk-app, rate_limits: [narrow]}")
    )
    assert raw(server).status_code == 200
    for _ in range(3):
        assert raw(server).status_code == 429  # `narrow` says no: `wide` must not count it
    ok = raw(server, "sk-other")
    assert ok.status_code == 200
    assert ok.headers["x-ratelimit-remaining-requests"] == "98"  # 2 admitted, not 5


def test_headers_on_stream_and_upstream_error(fake_upstream, router_server):
    server = router_server(
        config(
            fake_upstream.url,
            "  g: {requests_per_minute: 10, tokens_per_minute: 1000}",
            server="  rate_limits: [g]",
        )
    )
    fake_upstream.add("/v1/chat/completions", sse_reply(chat_chunks(["a", "b"])))
    with httpx.stream(
        "POST",
        server.base_url + "/chat/completions",
        json={"model": "chat", "messages": MESSAGES, "stream": True, "max_tokens": 50},
        headers={"authorization": "Bearer sk-app"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining-requests"] == "9"
        assert response.headers["x-ratelimit-limit-tokens"] == "1000"
        # the estimate: prompt (1 token + 4 per message) plus max_tokens
        assert response.headers["x-ratelimit-remaining-tokens"] == str(1000 - 5 - 50)
        response.read()
    fake_upstream.add(
        "/v1/chat/completions",
        json_reply({"error": {"message": "bad", "type": "invalid_request_error"}}, status=400),
    )
    failed = raw(server)
    assert failed.status_code == 400
    assert failed.headers["x-ratelimit-remaining-requests"] == "8"
    # the stream's usage (5 + 3) replaced its estimate (55); the failed call reported none
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion(usage=(5, 2))))
    after = raw(server)
    assert after.headers["x-ratelimit-remaining-tokens"] == str(1000 - 8 - 5 - 5)


def test_concurrency_released_after_stream_and_disconnect(fake_upstream, router_server):
    server = router_server(
        config(fake_upstream.url, "  one: {max_concurrent: 1}", server="  rate_limits: [one]")
    )
    slow = sse_reply(chat_chunks(["a"] * 40), delay=0.05)
    fake_upstream.set_default("/v1/chat/completions", slow)
    with httpx.stream(
        "POST",
        server.base_url + "/chat/completions",
        json={"model": "chat", "messages": MESSAGES, "stream": True},
        headers={"authorization": "Bearer sk-app"},
    ) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        next(chunks)
        assert raw(server, stream=True).status_code == 429  # the slot is held by the stream
    # the client left mid-stream: the slot comes back
    deadline = time.monotonic() + 5
    status = 429
    while status == 429 and time.monotonic() < deadline:
        time.sleep(0.1)
        fake_upstream.add("/v1/chat/completions", json_reply(chat_completion()))
        status = raw(server).status_code
    assert status == 200
    # a finished non-streaming request frees it at once
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion()))
    assert raw(server).status_code == 200


def _telkom(url: str, on_limit: str, extra_target: str = "") -> str:
    return f"""
rate_limits:
  quota: {{requests_per_second: 1, on_limit: {on_limit}, max_wait: 5}}
server: {{auth: keys}}
providers:
  telkom: {{plugin: openai, base_url: {url}/v1, api_key: sk-t, rate_limits: [quota]}}
  backup: {{plugin: openai, base_url: {url}/backup, api_key: sk-b}}
models:
  a: {{targets: [{{provider: telkom, model: m-a}}{extra_target}]}}
  b: {{targets: [{{provider: telkom, model: m-b}}]}}
keys:
  app: {{key: sk-app}}
"""


def test_provider_quota_shared_by_models_reject(fake_upstream, router_server):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    server = router_server(_telkom(fake_upstream.url, "reject"))
    c = client(server)
    c.chat.completions.create(model="a", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(model="b", messages=MESSAGES)  # same upstream quota
    assert "quota" in str(info.value)
    assert len(fake_upstream.received()) == 1


def test_provider_quota_fallback_moves_to_next_target(fake_upstream, router_server):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion("telkom")))
    fake_upstream.set_default("/backup/chat/completions", json_reply(chat_completion("backup")))
    server = router_server(
        _telkom(fake_upstream.url, "fallback", ", {provider: backup, model: m-x}")
    )
    c = client(server)
    first = c.chat.completions.with_raw_response.create(model="a", messages=MESSAGES)
    second = c.chat.completions.with_raw_response.create(model="a", messages=MESSAGES)
    assert first.parse().choices[0].message.content == "telkom"
    assert second.parse().choices[0].message.content == "backup"
    assert second.headers["x-router-provider"] == "backup"
    assert second.headers["x-router-attempts"] == "2"


def test_provider_quota_wait_waits_in_line(fake_upstream, router_server):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    server = router_server(_telkom(fake_upstream.url, "wait"))
    results: list[int] = []

    def one() -> None:
        results.append(raw(server, model="a").status_code)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200, 200, 200]
    times = sorted(r.at for r in fake_upstream.received())
    assert times[2] - times[0] >= 1.9  # one a second, never two in the same second
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))


def test_unknown_policy_is_a_load_error(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "rate_limits:\n"
        "  per-app: {requests_per_minute: 1}\n"
        "server: {auth: none}\n"
        "providers:\n"
        "  up: {plugin: openai, base_url: http://127.0.0.1:9/v1, rate_limits: [per-apps]}\n"
        "models:\n"
        "  chat: {targets: [{provider: up, model: m}]}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_graph(str(path))
    message = str(info.value)
    assert f"{path}:5: providers.up.rate_limits[0]" in message
    assert "did you mean 'per-app'" in message


def test_wait_is_only_for_provider_policies(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "rate_limits:\n"
        "  q: {requests_per_minute: 1, on_limit: wait}\n"
        "server: {auth: none, rate_limits: [q]}\n"
        "providers:\n"
        "  up: {plugin: openai, base_url: http://127.0.0.1:9/v1}\n"
        "models:\n"
        "  chat: {targets: [{provider: up, model: m}]}\n"
    )
    with pytest.raises(ConfigError, match=r"rate_limits\.q\.on_limit"):
        load_graph(str(path))


def test_a_silent_upstream_does_not_leak_the_slot(fake_upstream, router_server):
    server = router_server(
        config(
            fake_upstream.url, "  one: {max_concurrent: 1}", server="  rate_limits: [one]"
        ).replace(
            "    api_key: sk-upstream", "    api_key: sk-upstream\n    timeouts: {total: 0.5}"
        )
    )
    fake_upstream.add("/v1/chat/completions", Reply(hang=True))
    assert raw(server).status_code == 504
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion()))
    assert raw(server).status_code == 200
