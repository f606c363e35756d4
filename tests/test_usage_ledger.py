"""The usage ledger through `llm-switchyard serve`, in SQLite (no setup) and in PostgreSQL: one
row per request whatever happened to it, costs from the targets' prices, and reports from
`llm-switchyard usage` and `GET /admin/usage` whose totals equal the rows'."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import sqlite3
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from router.spend.sqlite_store import SqliteStore
from router.spend.stores import LedgerError
from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunk,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)
from router.testing.ledger import ledger_rows, postgres_available, scratch_database, wait_for_rows
from router.testing.server import cli_command
from router.upstream.usage import estimate_prompt_tokens, estimate_tokens

ADMIN_KEY = "admin-key-for-the-ledger-tests"
APP_KEY, BATCH_KEY = "sk-ledger-app-client", "sk-ledger-batch-client"
MESSAGES = [{"role": "user", "content": "hi"}]
CONFIG = """
server: {{admin_key: "${{LEDGER_ADMIN_KEY}}", watch_config: false}}
spend:
  currency: EUR
  ledger: {{url: "{ledger}", flush_interval: 0.05}}
providers:
  up:
    plugin: openai
    base_url: "{upstream}/v1"
    api_key: sk-ledger-upstream
    prices:
      up-model: {{input: 2.5, cached_input: 1.25, output: 10}}
models:
  chat: {{targets: [{{provider: up, model: up-model}}], retries: {{attempts: 0}}}}
  embed:
    targets: [{{provider: up, model: small-embed, price: {{input: 0.02, output: 0}}}}]
  unpriced: {{targets: [{{provider: up, model: no-price}}], retries: {{attempts: 0}}}}
keys:
  app: {{key: {app}}}
  batch: {{key: {batch}}}
"""
# Nanos per million tokens, as the config's prices say (EUR 2.5, 1.25 and 10 per million).
INPUT, CACHED, OUTPUT, EMBED = 2_500_000_000, 1_250_000_000, 10_000_000_000, 20_000_000


def _cost(prompt: int, cached: int, completion: int, price: tuple[int, int, int]) -> int:
    total = (prompt - cached) * price[0] + cached * price[1] + completion * price[2]
    return (total + 500_000) // 1_000_000


CHAT = (INPUT, CACHED, OUTPUT)


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A database of its own on the shared PostgreSQL, dropped afterwards."""
    if not postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (or asyncpg missing)")
    with scratch_database() as url:
        yield url


def usage_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`llm-switchyard usage ...`, as a user runs it (the config's `${LEDGER_ADMIN_KEY}` set)."""
    env = {**os.environ, "LEDGER_ADMIN_KEY": ADMIN_KEY}
    return subprocess.run(
        [cli_command(), "usage", *args], capture_output=True, text=True, timeout=60, env=env
    )


class Served:
    def __init__(self, router: RouterProcess, upstream: FakeUpstream, config: Path, url: str):
        self.router, self.upstream, self.config, self.url = router, upstream, config, url

    def client(self, key: str = APP_KEY) -> openai.OpenAI:
        return closed_after_test(
            openai.OpenAI(api_key=key, base_url=self.router.base_url, max_retries=0)
        )


@contextlib.contextmanager
def serve(tmp_path: Path, ledger_url: str) -> Iterator[Served]:
    with FakeUpstream() as upstream:
        path = tmp_path / "router.yaml"
        text = CONFIG.format(ledger=ledger_url, upstream=upstream.url, app=APP_KEY, batch=BATCH_KEY)
        path.write_text(textwrap.dedent(text))
        router = RouterProcess(path, env={"LEDGER_ADMIN_KEY": ADMIN_KEY}).start()
        try:
            yield Served(router, upstream, path, ledger_url)
        finally:
            router.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    if request.param == "sqlite":
        # A folder that does not exist yet: the ledger makes it, and the file, itself.
        url = f"sqlite:///{tmp_path}/ledger/usage.db"
    else:
        url = request.getfixturevalue("pg_database")
    with serve(tmp_path, url) as started:
        yield started


COMPLETIONS = "/v1/chat/completions"


def _requests(served: Served) -> dict[str, dict[str, Any]]:
    """Send one request of each kind; what each one's ledger row must say, by request id."""
    up = served.upstream
    app, batch = served.client(APP_KEY), served.client(BATCH_KEY)
    expected: dict[str, dict[str, Any]] = {}

    # Answered, not streamed; the upstream reports cached prompt tokens.
    reply = chat_completion("Hello!", usage=(10, 5))
    reply["usage"]["prompt_tokens_details"] = {"cached_tokens": 4}
    up.add(COMPLETIONS, json_reply(reply))
    answer = app.chat.completions.create(
        model="chat", messages=MESSAGES, extra_headers={"x-request-id": "led-json"}
    )
    assert answer.choices[0].message.content == "Hello!"
    expected["led-json"] = dict(
        key_name="app", model="chat", outcome="answered", status=200, error=None, usage=(10, 4, 5)
    )

    # Streamed, with the upstream's usage at its end.
    up.add(COMPLETIONS, sse_reply(chat_chunks(["Hel", "lo"], usage=(7, 3))))
    stream = app.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, extra_headers={"x-request-id": "led-stream"}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello"
    expected["led-stream"] = dict(
        key_name="app", model="chat", outcome="answered", status=200, usage=(7, 0, 3)
    )

    # Streamed, from an upstream that never reports usage: the router's estimate.
    up.add(COMPLETIONS, sse_reply(chat_chunks(["Hel", "lo", "!"], usage=None)))
    stream = batch.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, extra_headers={"x-request-id": "led-est"}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello!"
    prompt = estimate_prompt_tokens({"messages": MESSAGES})
    expected["led-est"] = dict(
        key_name="batch", outcome="answered", usage=(prompt, 0, estimate_tokens(6))
    )

    # Failed: the upstream refuses the request; nothing was used, nothing costs.
    up.add(COMPLETIONS, json_reply({"error": {"message": "bad", "type": "x"}}, status=400))
    with pytest.raises(openai.BadRequestError):
        batch.chat.completions.create(
            model="chat", messages=MESSAGES, extra_headers={"x-request-id": "led-failed"}
        )
    expected["led-failed"] = dict(
        key_name="batch", model="chat", outcome="failed", status=400, usage=(0, 0, 0), cost=0
    )

    # A client that leaves mid-stream: charged the estimate of what was relayed ("Hel").
    release = threading.Event()
    frames = [chat_chunk({"role": "assistant", "content": "Hel"}), *chat_chunks(["lo"])[1:]]
    up.add(COMPLETIONS, sse_reply(frames, release=release))
    stream = app.chat.completions.create(
        model="chat", messages=MESSAGES, stream=True, extra_headers={"x-request-id": "led-gone"}
    )
    assert next(iter(stream)).choices[0].delta.content == "Hel"
    stream.close()
    # Its end is logged before the upstream may go on: what it had produced is all there is.
    served.router.wait_for_line(lambda line: b'"led-gone"' in line)
    release.set()
    expected["led-gone"] = dict(
        key_name="app", outcome="client_gone", status=200, usage=(prompt, 0, estimate_tokens(3))
    )

    # Embeddings, a few tokens on a cheap model: a cost of nanos, not rounded to nothing.
    up.add(
        "/v1/embeddings",
        json_reply(
            {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "model": "small-embed",
                "usage": {"prompt_tokens": 8, "total_tokens": 8},
            }
        ),
    )
    batch.embeddings.create(
        model="embed", input="some text", extra_headers={"x-request-id": "led-embed"}
    )
    expected["led-embed"] = dict(
        key_name="batch",
        model="embed",
        operation="embeddings",
        upstream_model="small-embed",
        usage=(8, 0, 0),
        cost=_cost(8, 0, 0, (EMBED, EMBED, 0)),
    )

    # A target without a price: its tokens are counted, its cost is unknown (NULL).
    up.add(COMPLETIONS, json_reply(chat_completion(usage=(3, 2))))
    batch.chat.completions.create(
        model="unpriced", messages=MESSAGES, extra_headers={"x-request-id": "led-unpriced"}
    )
    expected["led-unpriced"] = dict(
        model="unpriced", upstream_model="no-price", error=None, usage=(3, 0, 2), cost=None
    )

    # A model that does not exist: a row with no model.
    with pytest.raises(openai.NotFoundError):
        app.chat.completions.create(
            model="nope", messages=MESSAGES, extra_headers={"x-request-id": "led-unknown"}
        )
    expected["led-unknown"] = dict(model=None, provider=None, status=404, usage=(0, 0, 0), cost=0)

    # A key the router does not know: a row with no key.
    with pytest.raises(openai.AuthenticationError):
        served.client("sk-not-a-key").chat.completions.create(
            model="chat", messages=MESSAGES, extra_headers={"x-request-id": "led-nokey"}
        )
    expected["led-nokey"] = dict(key_name=None, model=None, status=401, usage=(0, 0, 0), cost=0)
    return expected


def test_one_row_per_request_with_its_cost_and_reports_that_add_up(served: Served) -> None:
    expected = _requests(served)
    # A client reusing a request id: two requests, two rows.
    for _ in range(2):
        served.upstream.add(COMPLETIONS, json_reply(chat_completion(usage=(1, 1))))
        served.client().chat.completions.create(
            model="chat", messages=MESSAGES, extra_headers={"x-request-id": "led-dup"}
        )

    rows = wait_for_rows(served.url, len(expected) + 2)
    time.sleep(0.3)  # (a row too many would show up now)
    rows = ledger_rows(served.url)
    ids = sorted(r["request_id"] for r in rows)
    assert ids == sorted([*expected, "led-dup", "led-dup"])
    assert len({(r["replica"], r["seq"]) for r in rows}) == len(rows)
    by_id = {r["request_id"]: r for r in rows}
    for request_id, want in expected.items():
        row = by_id[request_id]
        prompt, cached, completion = want.pop("usage")
        assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (
            prompt,
            cached,
            completion,
        ), request_id
        cost = want.pop("cost", _cost(prompt, cached, completion, CHAT))
        assert row["cost_nanos"] == cost, request_id
        for name, value in want.items():
            assert row[name] == value, (request_id, name)
        assert row["currency"] == "EUR"
    assert by_id["led-json"]["cost_nanos"] == 70_000  # (6 x 2.5 + 4 x 1.25 + 5 x 10) / 1e6 EUR
    assert by_id["led-json"]["provider"] == "up"
    assert by_id["led-json"]["upstream_model"] == "up-model"
    assert by_id["led-json"]["operation"] == "chat"
    assert by_id["led-json"]["attempts"] == 1
    assert by_id["led-unknown"]["attempts"] == 0
    assert by_id["led-json"]["latency_ms"] > 0

    # `llm-switchyard usage`: the same rows, grouped; totals equal the rows'.
    done = usage_cli(
        "--config", str(served.config), "--since", "1h", "--by", "key,model", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["currency"] == "EUR" and report["by"] == ["key", "model"]
    totals = report["totals"]
    assert totals["requests"] == len(rows)
    for name in ("prompt_tokens", "cached_tokens", "completion_tokens", "cost_nanos"):
        assert totals[name] == sum(r[name] or 0 for r in rows), name
        assert totals[name] == sum(group[name] for group in report["rows"]), name
    groups = {(g["key"], g["model"]): g for g in report["rows"]}
    assert groups[("batch", "unpriced")]["unpriced_requests"] == 1
    assert totals["unpriced_requests"] == 1
    app_chat = [r for r in rows if (r["key_name"], r["model"]) == ("app", "chat")]
    assert groups[("app", "chat")]["requests"] == len(app_chat)
    assert groups[("app", "chat")]["cost_nanos"] == sum(r["cost_nanos"] for r in app_chat)
    assert groups[("app", None)]["requests"] == 1  # the unknown model

    # The same report as CSV and as a table.
    done = usage_cli(
        "--config", str(served.config), "--since", "1h", "--by", "outcome", "--format", "csv",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = list(csv.reader(io.StringIO(done.stdout)))
    assert table[0][:3] == ["outcome", "requests", "prompt_tokens"] and "cost_EUR" in table[0]
    assert table[-1][0] == "total" and int(table[-1][1]) == len(rows)
    cost_column = table[0].index("cost_EUR")
    assert table[-1][cost_column] == f"{totals['cost_nanos'] / 1e9:.9f}"
    assert sum(int(line[1]) for line in table[1:-1]) == len(rows)
    done = usage_cli("--config", str(served.config), "--by", "key")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split()[:3] == ["key", "requests", "prompt_tokens"]
    assert lines[-1].split()[:2] == ["total", str(len(rows))]

    done = usage_cli("--config", str(served.config), "--by", "")  # the totals alone
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and lines[1].split()[0] == "requests"
    assert lines[3].split()[0] == str(len(rows))

    # `GET /admin/usage`: the same report as JSON.
    answer = httpx.get(
        served.router.url + "/admin/usage",
        params={"since": "1h", "by": "key,model"},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert answer.status_code == 200, answer.text
    admin = answer.json()
    assert admin["rows"] == report["rows"] and admin["totals"] == report["totals"]


def test_admin_usage_needs_the_admin_key_and_a_valid_query(tmp_path: Path) -> None:
    with serve(tmp_path, f"sqlite:///{tmp_path}/usage.db") as served:
        url = served.router.url + "/admin/usage"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"authorization": "Bearer wrong"}).status_code == 401
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        bad = httpx.get(url, params={"by": "colour"}, headers=admin)
        assert bad.status_code == 400 and "cannot group by colour" in bad.json()["error"]["message"]
        bad = httpx.get(url, params={"since": "last tuesday"}, headers=admin)
        assert bad.status_code == 400 and "is not a time" in bad.json()["error"]["message"]
        bad = httpx.get(url, params={"since": "1d", "until": "2d"}, headers=admin)
        assert bad.status_code == 400
        assert bad.json()["error"]["message"] == "until must be later than since"
        # longer ago than the calendar goes back: from its first day, not an internal error
        ages = httpx.get(url, params={"since": "99999999d"}, headers=admin)
        assert ages.status_code == 200 and ages.json()["since"] == "0001-01-01T00:00:00Z"
        edge = {"since": "0001-01-01T00:00:00+05:00", "until": "9999-12-31T23:00:00-05:00"}
        ends = httpx.get(url, params=edge, headers=admin)
        assert ends.status_code == 200
        assert (ends.json()["since"], ends.json()["until"]) == (
            "0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z",
        )  # fmt: skip
        empty = httpx.get(url, params={"by": "day"}, headers=admin)
        assert empty.status_code == 200
        assert empty.json()["rows"] == [] and empty.json()["totals"]["requests"] == 0


def test_without_a_ledger_there_is_no_usage_endpoint(router_server) -> None:
    server = router_server(
        f"""
        server: {{auth: none, admin_key: "{ADMIN_KEY}"}}
        providers: {{m: {{plugin: mock}}}}
        models: {{demo: {{targets: [{{provider: m, model: echo}}]}}}}
        """
    )
    answer = httpx.get(
        server.url + "/admin/usage", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert answer.status_code == 404 and "spend.ledger" in answer.json()["error"]["message"]


def test_a_ledger_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE llm_router_usage_schema (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO llm_router_usage_schema VALUES (2)")
    conn.commit()
    conn.close()
    done = usage_cli("--ledger", f"sqlite:///{path}")
    assert done.returncode == 1
    assert "schema is version 2, newer than this llm-switchyard's (1)" in done.stderr
    store = SqliteStore(str(path), 1.0)  # and the writer's store will not write to it
    with pytest.raises(LedgerError, match="upgrade llm-switchyard"):
        asyncio.run(store.open())
    asyncio.run(store.close())


# The table as the first ledgers made it: keyed by (replica, seq), without a rowid.
_KEYED_TABLE = """
CREATE TABLE llm_router_usage (
    replica TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, request_id TEXT NOT NULL,
    key_name TEXT, model TEXT, provider TEXT, upstream_model TEXT, operation TEXT,
    attempts INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, cost_nanos INTEGER, currency TEXT NOT NULL,
    outcome TEXT NOT NULL, status INTEGER NOT NULL, error TEXT, latency_ms REAL NOT NULL,
    PRIMARY KEY (replica, seq)
) WITHOUT ROWID;
CREATE TABLE llm_router_usage_schema (version INTEGER NOT NULL);
INSERT INTO llm_router_usage_schema VALUES (1);
"""


@pytest.mark.parametrize("keyed", [False, True], ids=["new file", "keyed file"])
def test_sqlite_rows_carry_the_ledgers_constants_in_a_new_or_keyed_file(
    tmp_path: Path, keyed: bool
) -> None:
    """The replica id and the currency are constants of the INSERT (quoted: a host name may
    hold anything), and a file whose table is keyed by (replica, seq) still takes rows, and
    skips a row it already holds."""
    path = tmp_path / "usage.db"
    if keyed:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.executescript(_KEYED_TABLE)
    replica = "it's-a-host:1:abc123"
    rows = [
        (seq, 1_700_000_000.0 + seq, f"req-{seq}", "app", "chat", "up", "up-model", "chat",
         1, 10, 0, 5, 75_000 if seq % 2 else -1, "answered", 200, "", 1.5)
        for seq in range(1, 38)  # more than one statement's 32 rows
    ]  # fmt: skip
    store = SqliteStore(str(path), 1.0)

    async def write_twice() -> None:
        await store.write(rows, (replica, "EUR"))
        if keyed:
            await store.write(rows[:3], (replica, "EUR"))  # a batch retried
        await store.close()

    asyncio.run(write_twice())
    with contextlib.closing(sqlite3.connect(path)) as conn:
        found = conn.execute(
            "SELECT replica, seq, currency, cost_nanos, error, key_name FROM llm_router_usage "
            "ORDER BY seq"
        ).fetchall()
    assert [r[1] for r in found] == list(range(1, 38))
    assert {(r[0], r[2], r[4], r[5]) for r in found} == {(replica, "EUR", None, "app")}
    assert [r[3] for r in found[:2]] == [75_000, None]


def test_a_served_router_writes_on_to_a_ledger_file_of_the_keyed_layout(tmp_path: Path) -> None:
    """A ledger file an earlier version made (its table keyed by replica and seq) is written
    to as before by `llm-switchyard serve`, and reported by `llm-switchyard usage`."""
    path = tmp_path / "usage.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(_KEYED_TABLE)
    with serve(tmp_path, f"sqlite:///{path}") as served:
        served.upstream.set_default(COMPLETIONS, json_reply(chat_completion(usage=(10, 5))))
        for _ in range(3):
            served.client().chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
        rows = wait_for_rows(served.url, 3)
    assert len({(r["replica"], r["seq"]) for r in rows}) == 3
    assert {(r["currency"], r["cost_nanos"]) for r in rows} == {("EUR", _cost(10, 0, 5, CHAT))}
    report = usage_cli("--ledger", f"sqlite:///{path}", "--since", "1h", "--format", "json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["totals"]["requests"] == 3


def test_usage_cli_errors_are_clear(tmp_path: Path) -> None:
    missing = usage_cli("--ledger", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 1 and "no ledger at" in missing.stderr
    bad = usage_cli("--ledger", f"sqlite:///{tmp_path}/none.db", "--since", "soon")
    assert bad.returncode == 2 and "'soon' is not a time" in bad.stderr
    bad = usage_cli("--ledger", f"sqlite:///{tmp_path}/none.db", "--by", "key,key")
    assert bad.returncode == 2 and "twice" in bad.stderr
    config = tmp_path / "router.yaml"
    config.write_text(
        "server: {auth: none}\nproviders: {m: {plugin: mock}}\n"
        "models: {d: {targets: [{provider: m, model: e}]}}\n"
    )
    off = usage_cli("--config", str(config))
    assert off.returncode == 2 and "has no `spend.ledger`" in off.stderr


def test_a_reloaded_price_counts_from_the_reload_on(tmp_path: Path) -> None:
    """A target's own `price` (a target whose runtime state a reload keeps), then a
    provider's `prices` (a changed provider)."""
    embedding = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
        "model": "small-embed",
        "usage": {"prompt_tokens": 1000, "total_tokens": 1000},
    }
    changes = {"before": None, "target": ("0.02", "0.04"), "provider": ("input: 2.5,", "input: 5,")}
    with serve(tmp_path, f"sqlite:///{tmp_path}/usage.db") as served:
        for when, change in changes.items():
            if change is not None:
                served.config.write_text(served.config.read_text().replace(*change))
                reload = httpx.post(
                    served.router.url + "/admin/reload",
                    headers={"authorization": f"Bearer {ADMIN_KEY}"},
                )
                assert reload.status_code == 200 and reload.json()["restart_needed"] == []
            served.upstream.add(COMPLETIONS, json_reply(chat_completion(usage=(10, 5))))
            served.client().chat.completions.create(
                model="chat", messages=MESSAGES, extra_headers={"x-request-id": f"chat-{when}"}
            )
            served.upstream.add("/v1/embeddings", json_reply(embedding))
            served.client().embeddings.create(
                model="embed", input="x", extra_headers={"x-request-id": f"embed-{when}"}
            )
        rows = {r["request_id"]: r["cost_nanos"] for r in wait_for_rows(served.url, 6)}
    chat = _cost(10, 0, 5, CHAT)
    assert (rows["chat-before"], rows["chat-target"]) == (chat, chat)
    assert rows["chat-provider"] == _cost(10, 0, 5, (5_000_000_000, CACHED, OUTPUT))
    assert (rows["embed-before"], rows["embed-target"]) == (20_000, 40_000)


def test_the_image_gives_the_default_ledger_a_writable_working_directory() -> None:
    """`spend.ledger: {}` writes to the working directory: in the image, the router's own."""
    lines = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text().splitlines()
    user = lines.index("USER 10001")
    assert "WORKDIR /var/lib/llm-switchyard" in lines[user:]
    assert any("chown 10001 /var/lib/llm-switchyard" in line for line in lines[:user])
    assert any('pip install ".[otlp,postgres]"' in line for line in lines[:user])
