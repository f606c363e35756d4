"""The ledger in PostgreSQL for many replicas: each row once, whichever replica wrote it, and
nothing lost when the database is unreachable for a while."""

from __future__ import annotations

import statistics
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from router.testing import RouterProcess
from router.testing.ledger import ledger_rows, postgres_available, scratch_database, wait_for_rows
from router.testing.tcp_proxy import TcpProxy

CONFIG = """
server: {{auth: none, watch_config: false, admin_key: "{admin}"}}
spend:
  ledger: {{url: "{ledger}", flush_interval: 0.05, timeout: 1}}
providers:
  m:
    plugin: mock
    prices: {{echo: {{input: 1, output: 2}}}}
models:
  demo: {{targets: [{{provider: m, model: echo}}]}}
"""
ADMIN_KEY = "admin-key-for-the-outage-test"
BODY = {"model": "demo", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def database() -> Iterator[str]:
    if not postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (or asyncpg missing)")
    with scratch_database() as url:
        yield url


def _router(tmp_path: Path, ledger: str, name: str = "router.yaml") -> RouterProcess:
    path = tmp_path / name
    path.write_text(textwrap.dedent(CONFIG.format(ledger=ledger, admin=ADMIN_KEY)))
    return RouterProcess(path)


def test_replicas_share_one_ledger_and_each_request_is_one_row(tmp_path, database):
    first, second = _router(tmp_path, database, "a.yaml"), _router(tmp_path, database, "b.yaml")
    with first, second:
        ids = [f"rep-{n}" for n in range(20)]
        with httpx.Client() as client:
            for n, request_id in enumerate(ids):
                router = (first, second)[n % 2]
                answer = client.post(
                    router.base_url + "/chat/completions",
                    json=BODY,
                    headers={"x-request-id": "same-id" if n < 4 else request_id},
                )
                assert answer.status_code == 200
        rows = wait_for_rows(database, len(ids))
    rows = ledger_rows(database)  # and none more once both have stopped
    assert len(rows) == len(ids)
    assert sorted(r["request_id"] for r in rows) == sorted(["same-id"] * 4 + ids[4:])
    assert len({r["replica"] for r in rows}) == 2
    assert all(r["cost_nanos"] > 0 and r["currency"] == "USD" for r in rows)


@pytest.mark.slow
def test_a_postgresql_outage_under_load_fails_no_request_and_loses_no_row(tmp_path, database):
    with TcpProxy(5432) as proxy:
        ledger = database.replace(":5432/", f":{proxy.port}/")
        with _router(tmp_path, ledger) as router:
            latencies: dict[str, list[float]] = {"before": [], "outage": [], "after": []}
            statuses: list[int] = []
            phase = ["before"]
            stop = threading.Event()
            sent = [0]
            lock = threading.Lock()

            def client(worker: int) -> None:
                with httpx.Client(timeout=30) as http:
                    while not stop.is_set():
                        with lock:
                            sent[0] += 1
                            request_id = f"outage-{sent[0]}"
                        started = time.perf_counter()
                        answer = http.post(
                            router.base_url + "/chat/completions",
                            json=BODY,
                            headers={"x-request-id": request_id},
                        )
                        elapsed = time.perf_counter() - started
                        with lock:
                            statuses.append(answer.status_code)
                            latencies[phase[0]].append(elapsed)

            with ThreadPoolExecutor(4) as pool:
                workers = [pool.submit(client, n) for n in range(4)]
                time.sleep(1.5)
                proxy.cut()
                phase[0] = "outage"
                router.wait_for_line(lambda line: b"ledger_write_failed" in line)
                started = time.monotonic()
                report = httpx.get(
                    router.url + "/admin/usage",
                    headers={"authorization": f"Bearer {ADMIN_KEY}"},
                    timeout=30,
                )
                assert report.status_code == 503, report.text
                assert "cannot read the usage ledger" in report.json()["error"]["message"]
                time.sleep(max(0.0, 10 - (time.monotonic() - started)))
                proxy.restore()
                phase[0] = "after"
                time.sleep(1.5)
                stop.set()
                for worker in workers:
                    worker.result()
            total = sent[0]
            assert statuses == [200] * total
            rows = wait_for_rows(database, total, timeout=30)
            router.wait_for_line(lambda line: b"ledger_write_recovered" in line)
            metrics = httpx.get(router.url + "/metrics").text
    assert len(rows) == total, f"{total - len(rows)} rows lost"
    assert sorted(r["request_id"] for r in rows) == sorted(
        f"outage-{n}" for n in range(1, total + 1)
    )
    assert "llm_router_ledger_rows_dropped_total 0" in metrics
    errors = [line for line in metrics.splitlines() if line.startswith("llm_router_ledger_write_")]
    assert float(errors[0].removeprefix("llm_router_ledger_write_errors_total ")) > 0
    # Requests did not wait for the database: the outage changed no latency beyond noise.
    before, outage = latencies["before"], latencies["outage"]
    assert len(outage) > 50
    assert statistics.median(outage) < 2 * statistics.median(before) + 0.01
    assert max(outage) < 1.0  # the database's timeout is 1 s: no request waited for it


def test_a_row_postgresql_refuses_is_dropped_alone(database: str) -> None:
    """As with SQLite (`test_usage_ledger_queue`): a batch holding a value the database
    cannot store is written row by row, and only that row is lost."""
    import asyncio

    from router.spend.config import LedgerConfig
    from router.spend.ledger import Ledger
    from router.spend.postgres_store import PostgresStore

    def one(seq: int, prompt: int) -> tuple[object, ...]:
        return (seq, time.time(), f"req-{seq}", "", "m", "p", "u", "chat", 1, prompt, 0, 1, 0,
                "answered", 200, "", 1.5)  # fmt: skip

    async def run() -> tuple[int, int]:
        store = PostgresStore(database, 5.0)
        ledger = Ledger(LedgerConfig(url=database), "USD", store=store)
        await store.open()
        ledger._pending = [one(1, 3), one(2, 2**70), one(3, 4)]
        await ledger._write_pending()
        await store.close()
        return ledger.written, ledger.dropped

    assert asyncio.run(run()) == (2, 1)
    assert sorted(r["request_id"] for r in ledger_rows(database)) == ["req-1", "req-3"]
