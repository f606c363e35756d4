"""`llm-switchyard serve` with several worker processes and rate limits or spend budgets.

In memory each worker would keep its own counters and admit N times every limit and budget,
so more than one worker with either needs the Redis backend: without it, `serve` exits before
starting, and a reload that would bring such limits in is rejected. With Redis, the workers
share every budget exactly.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from router.testing import FakeUpstream, RouterProcess, chat_completion, free_port, json_reply
from router.testing.server import cli_command

KEY = "sk-workers-client"
ADMIN = "adm-workers-0123456789"


def _config(
    upstream: str, limits: bool = True, redis_url: str | None = None, budget: bool = False
) -> str:
    backend = f'  rate_limit_backend: {{url: "{redis_url}", key_prefix: "{uuid.uuid4().hex}"}}\n'
    return (
        f"server:\n  admin_key: ${{ADMIN_KEY}}\n{backend if redis_url else ''}"
        "rate_limits:\n  five: {requests_per_minute: 5}\n"
        "budgets:\n  daily: {tokens: 100000, period: day}\n"
        f'providers:\n  up: {{plugin: openai, base_url: "{upstream}/v1", api_key: "${{UP_KEY}}"}}\n'
        "models:\n  chat: {targets: [{provider: up, model: m}]"
        f"{', budgets: [daily]' if budget else ''}}}\n"
        f'keys:\n  app: {{key: "${{APP_KEY}}"{", rate_limits: [five]" if limits else ""}}}\n'
    )


ENV = {"ADMIN_KEY": ADMIN, "UP_KEY": "sk-up", "APP_KEY": KEY, "LLM_ROUTER_ACCESS_LOG": "false"}


def _serve(path: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [cli_command(), "serve", "--config", str(path), "--port", str(free_port()), *args],
        env={**os.environ, **ENV, **env},
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--workers", "2"], {}), ([], {"LLM_ROUTER_WORKERS": "2"})],
    ids=["--workers", "LLM_ROUTER_WORKERS"],
)
def test_several_workers_with_in_memory_limits_refuse_to_start(tmp_path, args, env):
    path = tmp_path / "router.yaml"
    path.write_text(_config("http://127.0.0.1:9"))
    done = _serve(path, args, env)
    assert done.returncode == 2
    assert b"error: 2 workers with in-memory rate limits" in done.stderr
    assert b"set `server.rate_limit_backend.url` to a Redis URL" in done.stderr


def test_several_workers_with_in_memory_budgets_refuse_to_start(tmp_path):
    """A spend budget counted in memory would be spent once per worker, as a limit would."""
    path = tmp_path / "router.yaml"
    path.write_text(_config("http://127.0.0.1:9", limits=False, budget=True))
    done = _serve(path, ["--workers", "2"], {})
    assert done.returncode == 2
    assert b"error: 2 workers with in-memory budgets" in done.stderr
    assert b"set `server.rate_limit_backend.url` to a Redis URL" in done.stderr


def _chat(url: str) -> int:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {KEY}"}
    return httpx.post(url + "/chat/completions", json=body, headers=headers, timeout=30).status_code


def test_a_reload_cannot_bring_in_memory_limits_to_several_workers(tmp_path):
    with FakeUpstream() as upstream:
        upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
        path = tmp_path / "router.yaml"
        path.write_text(_config(upstream.url, limits=False))
        with RouterProcess(path, env=ENV, args=["--workers", "2"]) as router:
            path.write_text(_config(upstream.url, limits=True))
            reply = httpx.post(
                router.url + "/admin/reload", headers={"x-api-key": ADMIN}, timeout=10
            )
            assert reply.status_code == 400
            assert "2 workers with in-memory rate limits" in reply.text
            assert "server.rate_limit_backend.url" in reply.text
            statuses = [_chat(router.base_url) for _ in range(7)]
            assert statuses == [200] * 7  # the active config, without limits, keeps serving
            path.write_text(_config(upstream.url, limits=False, budget=True))
            reply = httpx.post(
                router.url + "/admin/reload", headers={"x-api-key": ADMIN}, timeout=10
            )
            assert reply.status_code == 400
            assert "2 workers with in-memory budgets" in reply.text


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except Exception:  # not installed, or not running
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_two_workers_share_a_key_limit_through_redis(tmp_path):
    with FakeUpstream() as upstream:
        upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
        path = tmp_path / "router.yaml"
        path.write_text(_config(upstream.url, redis_url="redis://127.0.0.1:6379/0"))
        with (
            RouterProcess(path, env=ENV, args=["--workers", "2"]) as router,
            ThreadPoolExecutor(10) as pool,
        ):
            statuses = list(pool.map(lambda _: _chat(router.base_url), range(10)))
    assert sorted(statuses) == [200] * 5 + [429] * 5
    assert len(upstream.received("/v1/chat/completions")) == 5
