"""A money budget shared exactly by three `llm-switchyard serve` replicas through Redis, with
the usage ledger of all three in one PostgreSQL database."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from router.testing import (
    FakeUpstream,
    Received,
    Reply,
    RouterProcess,
    chat_completion,
    closed_after_test,
    json_reply,
    wait_until,
)
from router.testing.ledger import ledger_rows, postgres_available, scratch_database, wait_for_rows

redis = pytest.importorskip("redis")
ADMIN = "admin-key-for-the-replica-budget-test"
AMOUNT = 1.0  # USD a day for model `gpt`
MESSAGES = [{"role": "user", "content": "Summarise the plan for the quarter in two lines."}]


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379"),
]

CONFIG = """
server:
  auth: none
  watch_config: false
  admin_key: "{admin}"
  rate_limit_backend: {{url: "redis://127.0.0.1:6379/0", key_prefix: "{prefix}"}}
spend:
  ledger: {{url: "{ledger}", flush_interval: 0.05}}
budgets:
  team: {{amount: {amount}, period: day, on_exceeded: fallback, fallback: mini}}
providers:
  a: {{plugin: openai, base_url: {upstream}/a, api_key: sk-a}}
  b: {{plugin: openai, base_url: {upstream}/b, api_key: sk-b}}
models:
  gpt:
    strategy: priority
    targets:
      - {{provider: a, model: big, price: {{input: 1000, output: 2000}}}}
      - {{provider: b, model: big, price: {{input: 1000, output: 2000}}}}
    budgets: [team]
  mini: {{targets: [{{provider: b, model: small, price: {{input: 10, output: 20}}}}]}}
"""


@pytest.fixture
def database() -> Iterator[str]:
    if not postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (or asyncpg missing)")
    with scratch_database() as url:
        yield url


def _flaky() -> object:
    """Target `a` fails one request in three with a 500 (the router then tries `b`)."""
    count = itertools.count()
    lock = threading.Lock()
    ok = json_reply(chat_completion(usage=(20, 30)))

    def reply(_: Received) -> Reply:
        with lock:
            n = next(count)
        return json_reply({"error": {"message": "boom"}}, 500) if n % 3 == 0 else ok

    return reply


def test_three_replicas_keep_a_money_budget_and_the_ledger_holds_each_request_once(
    tmp_path: Path, database: str
) -> None:
    prefix = f"test-budget-{uuid.uuid4().hex}"
    with FakeUpstream() as upstream:
        upstream.set_default("/a/chat/completions", _flaky())  # type: ignore[arg-type]
        upstream.set_default("/b/chat/completions", json_reply(chat_completion(usage=(20, 30))))
        path = tmp_path / "router.yaml"
        path.write_text(
            CONFIG.format(
                admin=ADMIN, prefix=prefix, ledger=database, amount=AMOUNT, upstream=upstream.url
            )
        )
        routers = [RouterProcess(path, env={"LLM_ROUTER_ACCESS_LOG": "false"}) for _ in range(3)]
        try:
            for router in routers:
                router.start()
            ids = [f"burst-{n}" for n in range(60)]

            def send(n: int) -> tuple[int, str]:
                client = closed_after_test(
                    openai.OpenAI(base_url=routers[n % 3].base_url, api_key="x", max_retries=0)
                )
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt",
                    messages=MESSAGES,
                    max_tokens=40,
                    extra_headers={"x-request-id": ids[n]},
                )
                return raw.status_code, raw.headers["x-router-model"]

            with ThreadPoolExecutor(30) as pool:
                answers = list(pool.map(send, range(len(ids))))
            rows = wait_for_rows(database, len(ids))
            report = httpx.get(
                routers[0].url + "/admin/usage?since=1d&by=model",
                headers={"authorization": f"Bearer {ADMIN}"},
                timeout=30,
            ).json()
        finally:
            for router in routers:
                router.stop()
            client = redis.Redis(host="127.0.0.1", port=6379)
            keys = list(client.scan_iter(f"{prefix}:*"))
            if keys:
                client.delete(*keys)
    rows = ledger_rows(database)  # and no more once every replica has stopped
    assert [status for status, _ in answers] == [200] * len(ids)
    assert sorted(r["request_id"] for r in rows) == sorted(ids)  # one row per request
    on_budget = [r for r in rows if r["model"] == "gpt"]
    fell_back = [r for r in rows if r["model"] == "mini"]
    assert len(on_budget) + len(fell_back) == len(ids)
    assert [model for _, model in answers].count("mini") == len(fell_back) > 0
    assert any(r["attempts"] > 1 for r in on_budget)  # failures were in the burst
    one_request = max(r["cost_nanos"] for r in on_budget)
    spent = sum(r["cost_nanos"] for r in on_budget)
    assert spent <= AMOUNT * 1e9 + one_request
    assert spent >= AMOUNT * 1e9 - 2 * one_request  # and the budget was not left unused
    totals = {row["model"]: row for row in report["rows"]}
    assert totals["gpt"]["cost_nanos"] == spent
    assert report["totals"]["requests"] == len(rows)
    assert report["totals"]["cost_nanos"] == sum(r["cost_nanos"] for r in rows)


ABSURD = """
server:
  auth: none
  watch_config: false
  rate_limit_backend: {{url: "redis://127.0.0.1:6379/0", key_prefix: "{prefix}"}}
rate_limits:
  tokens: {{tokens_per_minute: 100000000}}
spend:
  ledger: {{url: "{ledger}", flush_interval: 0.05}}
budgets:
  team: {{amount: 1000, period: day}}
providers:
  up: {{plugin: openai, base_url: {upstream}/v1, api_key: sk-up, rate_limits: [tokens]}}
models:
  gpt: {{targets: [{{provider: up, model: big, price: {{input: 2, output: 8}}}}], budgets: [team]}}
"""


def test_usage_too_large_to_store_is_clamped_not_a_poisoned_ledger(tmp_path: Path) -> None:
    """An upstream that reports more tokens than a database integer holds (2**64 - 1, which
    JSON parsers still read as an integer): the shared budget and token limit reconcile at
    the largest count Redis holds exactly, the ledger row holds the largest count its column
    holds, and the rows after it are written (a row the database refuses used to fail its
    batch again and again, and every row queued behind it)."""
    absurd = 2**64 - 1
    prefix = f"test-absurd-{uuid.uuid4().hex}"
    ledger = f"sqlite:///{tmp_path / 'usage.db'}"
    with FakeUpstream() as upstream:
        answer = chat_completion()
        answer["usage"] = {"prompt_tokens": absurd, "completion_tokens": absurd}
        upstream.add("/v1/chat/completions", json_reply(answer))
        upstream.set_default("/v1/chat/completions", json_reply(chat_completion(usage=(5, 2))))
        path = tmp_path / "router.yaml"
        path.write_text(ABSURD.format(prefix=prefix, ledger=ledger, upstream=upstream.url))
        with RouterProcess(path) as router:
            client = httpx.Client(base_url=router.base_url, timeout=10)
            body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
            first = client.post("/chat/completions", json=body)
            assert first.status_code == 200
            # the budget was charged all it could be: the next request is refused by it
            wait_until(
                lambda: client.post("/chat/completions", json=body).status_code == 429,
                "the absurd usage never reached the shared budget",
            )
            refused = client.post("/chat/completions", json=body)
            assert refused.json()["error"]["code"] == "budget_exceeded"
            wait_until(lambda: len(ledger_rows(ledger)) >= 3, "rows after the absurd one")
            _, err = router.stop()
        client.close()
    rows = sorted(ledger_rows(ledger), key=lambda r: r["seq"])
    assert rows[0]["prompt_tokens"] == rows[0]["completion_tokens"] == 2**63 - 1
    assert rows[0]["cost_nanos"] == 2**63 - 1
    assert [r["status"] for r in rows[1:]] == [429] * (len(rows) - 1)
    log = err.decode()
    assert "ledger_write_failed" not in log
    assert "not an integer" not in log and "out of range" not in log
