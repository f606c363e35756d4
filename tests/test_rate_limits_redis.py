"""Rate limits shared through the real Redis on 127.0.0.1:6379 by three router processes."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from router.testing import (
    RouterProcess,
    chat_chunks,
    chat_completion,
    free_port,
    json_reply,
    sse_reply,
)

redis = pytest.importorskip("redis")

MESSAGES = [{"role": "user", "content": "hi"}]


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")


def _config(upstream: str, redis_url: str, prefix: str, on_error: str = "open") -> str:
    return f"""
rate_limits:
  ten-a-minute: {{requests_per_minute: 10}}
  four-at-once: {{max_concurrent: 4}}
  tokens: {{tokens_per_minute: 700}}
  many-tokens: {{tokens_per_minute: 5000}}
  fresh: {{requests_per_minute: 3, tokens_per_day: 100000}}
server:
  auth: none
  rate_limit_backend: {{url: "{redis_url}", key_prefix: "{prefix}", on_error: {on_error}}}
providers:
  up: {{plugin: openai, base_url: {upstream}/v1, api_key: sk-up}}
  slow: {{plugin: openai, base_url: {upstream}/slow, api_key: sk-up}}
models:
  req: {{targets: [{{provider: up, model: m}}], rate_limits: [ten-a-minute]}}
  conc: {{targets: [{{provider: slow, model: m}}], rate_limits: [four-at-once]}}
  tok: {{targets: [{{provider: slow, model: m}}], rate_limits: [tokens]}}
  bigtok: {{targets: [{{provider: slow, model: m}}], rate_limits: [many-tokens]}}
  fresh: {{targets: [{{provider: up, model: m}}], rate_limits: [fresh]}}
"""


def _post(url: str, model: str, **body: object) -> int:
    payload = {"model": model, "messages": MESSAGES, **body}
    return httpx.post(url + "/chat/completions", json=payload, timeout=30).status_code


def _burst(urls: list[str], model: str, per_router: int, **body: object) -> list[int]:
    jobs = [u for u in urls for _ in range(per_router)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(lambda u: _post(u, model, **body), jobs))


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    from router.testing import FakeUpstream

    upstream = FakeUpstream().start()
    upstream.set_default("/v1/chat/completions", json_reply(chat_completion(usage=(5, 2))))
    slow = json_reply(chat_completion())
    slow.first_delay = 1.5
    upstream.set_default("/slow/chat/completions", slow)
    prefix = f"test-{uuid.uuid4().hex}"
    path = tmp_path_factory.mktemp("replicas") / "router.yaml"
    path.write_text(_config(upstream.url, "redis://127.0.0.1:6379/0", prefix))
    routers = [RouterProcess(path, env={"LLM_ROUTER_ACCESS_LOG": "false"}) for _ in range(3)]
    try:
        for router in routers:
            router.start()
        yield [r.base_url for r in routers], upstream
    finally:
        for router in routers:
            router.stop()
        upstream.stop()
        client = redis.Redis(host="127.0.0.1", port=6379)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


@pytest.mark.slow  # three `llm-switchyard serve` replicas
def test_three_replicas_admit_exactly_n_requests(replicas):
    urls, upstream = replicas
    statuses = _burst(urls, "req", 8)  # 24 concurrent requests for a budget of 10
    assert statuses.count(200) == 10
    assert statuses.count(429) == 14
    assert len(upstream.received("/v1/chat/completions")) == 10


@pytest.mark.slow  # three `llm-switchyard serve` replicas
def test_three_replicas_share_max_concurrent(replicas):
    urls, _upstream = replicas
    statuses = _burst(urls, "conc", 4)  # 12 at once, each held 1.5 s upstream
    assert statuses.count(200) == 4
    assert statuses.count(429) == 8
    # the slots come back when the requests end
    assert _burst(urls, "conc", 1) == [200, 200, 200]


@pytest.mark.slow  # three `llm-switchyard serve` replicas
def test_three_replicas_share_token_budget_and_reconcile(replicas):
    urls, _ = replicas
    # each request is estimated at 5 prompt tokens + 95 max_tokens = 100: 7 fit in 700
    statuses = _burst(urls, "tok", 4, max_tokens=95)
    assert statuses.count(200) == 7
    assert statuses.count(429) == 5
    # after the responses, each admitted request counts its reported 7 tokens, not 100
    time.sleep(0.3)
    response = httpx.post(
        urls[0] + "/chat/completions",
        json={"model": "tok", "messages": MESSAGES, "max_tokens": 95},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining-tokens"] == str(700 - 7 * 7 - 100)


@pytest.mark.slow  # three `llm-switchyard serve` replicas
def test_three_replicas_share_a_token_counter_and_reconcile(replicas):
    # 5,000 a minute is past the exact-log threshold: a sliding-window counter, as exact
    # within one window and reconciled the same way
    urls, _ = replicas
    statuses = _burst(urls, "bigtok", 4, max_tokens=995)  # 1,000 each: 5 fit
    assert statuses.count(200) == 5
    assert statuses.count(429) == 7
    time.sleep(0.3)
    response = httpx.post(
        urls[1] + "/chat/completions",
        json={"model": "bigtok", "messages": MESSAGES, "max_tokens": 995},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining-tokens"] == str(5000 - 5 * 7 - 1000)


@pytest.mark.slow  # three `llm-switchyard serve` replicas
def test_a_fresh_window_says_when_it_frees_a_slot(replicas):
    urls, _ = replicas
    response = httpx.post(
        urls[2] + "/chat/completions", json={"model": "fresh", "messages": MESSAGES}, timeout=30
    )
    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining-requests"] == "2"
    assert response.headers["x-ratelimit-reset-requests"] == "60s"  # exact: its own age
    # a day's counter: the rest of the current 14.4-minute sub-window, then a whole day
    reset = float(response.headers["x-ratelimit-reset-tokens"].rstrip("s"))
    assert 86_400 < reset <= 86_400 + 864


def _single(tmp_path: Path, upstream_url: str, redis_url: str, on_error: str):
    path = tmp_path / f"{on_error}.yaml"
    path.write_text(_config(upstream_url, redis_url, f"test-{uuid.uuid4().hex}", on_error))
    return path


def test_fail_open_and_fail_closed_without_redis(fake_upstream, tmp_path, router_server):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    dead = f"redis://127.0.0.1:{free_port()}/0"
    text_open = _single(tmp_path, fake_upstream.url, dead, "open").read_text()
    text_closed = _single(tmp_path, fake_upstream.url, dead, "closed").read_text()
    opened = router_server(text_open, name="open.yaml")
    assert [_post(opened.base_url, "req") for _ in range(12)] == [200] * 12  # no budget: open
    stats = opened.app.state.router.limiter.stats
    assert stats.failed_open == 12 and stats.backend_errors >= 1
    closed = router_server(text_closed, name="closed.yaml")
    response = httpx.post(
        closed.base_url + "/chat/completions", json={"model": "req", "messages": MESSAGES}
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "rate_limit_backend_unavailable"
    assert response.headers["retry-after"] == "1"
    assert closed.app.state.router.limiter.stats.failed_closed == 1


def test_recovers_when_redis_comes_back(fake_upstream, tmp_path, router_server):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    port = free_port()
    text = _single(tmp_path, fake_upstream.url, f"redis://127.0.0.1:{port}/0", "closed")
    server = router_server(text.read_text())
    assert _post(server.base_url, "req") == 503
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        status = 503
        while status == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
            status = _post(server.base_url, "req")
        assert status == 200
        statuses = [_post(server.base_url, "req") for _ in range(10)]
        assert statuses.count(200) == 9  # counted in the new Redis: 10 a minute in all
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)


def test_a_refused_command_is_a_loud_503_not_limits_off(fake_upstream, tmp_path, prefix):
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    path = tmp_path / "router.yaml"
    path.write_text(_config(fake_upstream.url, "redis://127.0.0.1:6379/0", prefix, "open"))
    # another program wrote a string where the bucket's sorted set goes: every script on
    # it fails with WRONGTYPE, while Redis itself is up
    redis.Redis(host="127.0.0.1", port=6379).set(f"{prefix}:rl:ten-a-minute:model:req:r60000", "x")
    router = RouterProcess(path, env={"LLM_ROUTER_ACCESS_LOG": "false"}).start()
    try:
        response = httpx.post(
            router.base_url + "/chat/completions", json={"model": "req", "messages": MESSAGES}
        )
        assert response.status_code == 503  # on_error: open does not turn the limits off
        assert response.json()["error"]["code"] == "rate_limit_backend_error"
        assert fake_upstream.received() == []
        scrape = httpx.get(router.url + "/metrics").text
        assert 'llm_router_rate_limit_backend_errors_total{kind="command"} 1' in scrape
    finally:
        _, err = router.stop()
    lines = [json.loads(line) for line in err.splitlines() if b"command_error" in line]
    assert len(lines) == 1
    assert lines[0]["level"] == "error"
    assert lines[0]["operation"] == "acquire"
    assert "WRONGTYPE" in lines[0]["error"]


def _hold(url: str, model: str) -> int:
    """A streamed request's status; the stream is closed at once (the slot freed)."""
    payload = {"model": model, "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", url + "/chat/completions", json=payload, timeout=30) as response:
        return response.status_code


def test_a_killed_replica_frees_its_slots_within_the_lease(fake_upstream, tmp_path, prefix):
    fake_upstream.set_default(
        "/v1/chat/completions", sse_reply(chat_chunks(["a"] * 600), delay=0.05)
    )
    path = tmp_path / "router.yaml"
    path.write_text(
        "rate_limits:\n"
        "  one: {max_concurrent: 1}\n"
        "server:\n"
        "  auth: none\n"
        '  rate_limit_backend: {url: "redis://127.0.0.1:6379/0", key_prefix: "'
        + prefix
        + '", lease_seconds: 1, timeout: 0.2}\n'
        "providers:\n"
        f"  up: {{plugin: openai, base_url: {fake_upstream.url}/v1, api_key: sk-up}}\n"
        "models:\n"
        "  m: {targets: [{provider: up, model: m}], rate_limits: [one]}\n"
    )
    env = {"LLM_ROUTER_ACCESS_LOG": "false"}
    doomed, survivor = RouterProcess(path, env=env), RouterProcess(path, env=env)
    try:
        doomed.start()
        survivor.start()
        payload = {"model": "m", "messages": MESSAGES, "stream": True}
        with httpx.stream(
            "POST", doomed.base_url + "/chat/completions", json=payload, timeout=30
        ) as held:
            assert held.status_code == 200
            chunks = held.iter_bytes()  # kept: a dropped iterator would close the stream
            next(chunks)
            # the stream outlives its 1 s lease several times over: renewed, still held
            until = time.monotonic() + 2.5
            while time.monotonic() < until:
                assert _hold(survivor.base_url, "m") == 429
                time.sleep(0.2)
            assert doomed.process is not None
            doomed.process.kill()  # SIGKILL: no release, no more renewals
            deadline = time.monotonic() + 10  # the bound is the 1 s lease
            while _hold(survivor.base_url, "m") == 429:
                assert time.monotonic() < deadline, "the dead replica's slot was never freed"
                time.sleep(0.1)
    finally:
        doomed.stop()
        survivor.stop()
