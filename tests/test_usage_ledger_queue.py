"""The ledger's queue: bounded while the database cannot be written, drops counted and
logged, and what is queued at shutdown written before the router exits."""

from __future__ import annotations

import contextlib
import sqlite3
import textwrap
import time
from pathlib import Path

import httpx

from router.testing import RouterProcess, wait_until
from router.testing.ledger import ledger_rows

CONFIG = """
server: {{auth: none, watch_config: false}}
spend:
  ledger: {{url: "sqlite:///{path}", {ledger}}}
providers: {{m: {{plugin: mock}}}}
models: {{demo: {{targets: [{{provider: m, model: echo}}]}}}}
"""
BODY = {"model": "demo", "messages": [{"role": "user", "content": "hello"}]}


def _router(tmp_path: Path, ledger: str) -> tuple[RouterProcess, str]:
    db = tmp_path / "usage.db"
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(path=db, ledger=ledger)))
    return RouterProcess(path), f"sqlite:///{db}"


def _ledger_ready(url: str) -> bool:
    """The writer has opened the database and created its table: a lock taken now makes
    its writes fail, not its start."""
    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path)) as conn:
        found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'llm_router_usage'"
        return conn.execute(found).fetchone() is not None


def _metric(router: RouterProcess, name: str) -> float:
    for line in httpx.get(router.url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def _send(router: RouterProcess, ids: list[str]) -> None:
    with httpx.Client() as client:
        for request_id in ids:
            started = time.monotonic()
            answer = client.post(
                router.base_url + "/chat/completions",
                json=BODY,
                headers={"x-request-id": request_id},
            )
            assert answer.status_code == 200
            assert time.monotonic() - started < 0.5  # never waits for the locked database


def test_a_full_queue_drops_the_oldest_rows_counts_and_logs_them(tmp_path: Path) -> None:
    router, url = _router(
        tmp_path, "queue_size: 5, batch_size: 2, flush_interval: 0.05, timeout: 0.05"
    )
    with router:
        wait_until(lambda: _ledger_ready(url), "the writer has not created its table")
        locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another writer holds the file: every write fails
        try:
            ids = [f"q-{n:02}" for n in range(20)]
            _send(router, ids)
            router.wait_for_line(lambda line: b"ledger_rows_dropped" in line)
            router.wait_for_line(lambda line: b"ledger_write_failed" in line)
            assert _metric(router, "llm_router_ledger_queue_depth") <= 5 + 2  # queue + batch
            assert ledger_rows(url) == []
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        deadline = time.monotonic() + 10
        while True:
            dropped = _metric(router, "llm_router_ledger_rows_dropped_total")
            written = _metric(router, "llm_router_ledger_rows_written_total")
            if dropped + written == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert _metric(router, "llm_router_ledger_write_errors_total") > 0
    rows = ledger_rows(url)
    assert dropped + written == len(ids)
    assert len(rows) == written and 13 <= dropped <= 15  # 20 less 5 queued, less the batch
    kept = sorted(r["request_id"] for r in rows)
    assert kept[-5:] == ids[-5:]  # the newest waited; the oldest went


def test_rows_queued_at_shutdown_are_written_before_the_router_exits(tmp_path: Path) -> None:
    router, url = _router(tmp_path, "flush_interval: 3600, batch_size: 1000")
    with router:
        ids = [f"s-{n}" for n in range(5)]
        _send(router, ids)
        time.sleep(0.2)
        assert ledger_rows(url) == []  # neither a full batch nor the interval yet
    assert sorted(r["request_id"] for r in ledger_rows(url)) == ids


def test_a_batch_of_many_rows_is_written_whole_each_row_once_in_its_columns(
    tmp_path: Path,
) -> None:
    """75 rows in one batch: written as several multi-row statements (32 + 32 + 8 + 2 + 1),
    none lost, none twice, none shifted into another row's columns."""
    router, url = _router(tmp_path, "flush_interval: 3600, batch_size: 1000")
    with router:
        ids = [f"b-{n:02}" for n in range(75)]
        _send(router, ids)
    rows = sorted(ledger_rows(url), key=lambda r: r["seq"])
    assert [r["request_id"] for r in rows] == ids  # in order: seq follows the requests
    assert [r["seq"] for r in rows] == list(range(1, 76))
    assert len({r["replica"] for r in rows}) == 1
    for r in rows:
        assert (r["model"], r["provider"], r["upstream_model"]) == ("demo", "m", "echo")
        assert (r["operation"], r["outcome"], r["status"], r["error"]) == (
            "chat", "answered", 200, None,
        )  # fmt: skip
        assert r["attempts"] == 1 and r["currency"] == "USD" and r["latency_ms"] > 0
        assert r["prompt_tokens"] > 0 and r["completion_tokens"] > 0
        assert r["cost_nanos"] is None  # no price: tokens without a cost


def test_rows_left_at_shutdown_are_counted_as_dropped_and_logged(tmp_path: Path) -> None:
    router, url = _router(tmp_path, "flush_interval: 0.05, timeout: 0.05, shutdown_flush: 0.5")
    db = url.removeprefix("sqlite:///")
    with router:
        wait_until(lambda: _ledger_ready(url), "the writer has not created its table")
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            _send(router, ["left-1", "left-2", "left-3"])
            _, err = router.stop()
        finally:
            locker.execute("ROLLBACK")
            locker.close()
    drops = [line for line in err.decode().splitlines() if '"ledger_rows_dropped"' in line]
    assert drops and '"rows":3' in drops[-1]
    assert ledger_rows(url) == []


def test_worker_processes_share_one_sqlite_ledger(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    db = tmp_path / "usage.db"
    path.write_text(textwrap.dedent(CONFIG.format(path=db, ledger="flush_interval: 0.05")))
    url = f"sqlite:///{db}"
    with RouterProcess(path, args=["--workers", "2"]) as router:
        ids = [f"w-{n}" for n in range(30)]
        with httpx.Client() as client:  # a new connection each: both workers get some
            for request_id in ids:
                answer = client.post(
                    router.base_url + "/chat/completions",
                    json=BODY,
                    headers={"x-request-id": request_id, "connection": "close"},
                )
                assert answer.status_code == 200
        deadline = time.monotonic() + 15
        while len(ledger_rows(url)) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
    rows = ledger_rows(url)
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
    assert len({(r["replica"], r["seq"]) for r in rows}) == len(ids)


def test_a_row_the_database_refuses_is_dropped_alone_and_the_rest_of_its_batch_written(
    tmp_path: Path,
) -> None:
    """A batch holding a row the database cannot store (here a count past 64 bits, which
    `entry.entry` now clamps, standing for any value a driver refuses) is written row by row:
    the refused row is counted as dropped and logged, the others are written, and the
    writer goes on (it used to retry the whole batch forever, holding back every row queued
    after it). A database that fails meanwhile still keeps the rest of the batch pending."""
    import asyncio

    from router.spend.config import LedgerConfig
    from router.spend.ledger import Ledger
    from router.spend.sqlite_store import SqliteStore

    url = f"sqlite:///{tmp_path / 'usage.db'}"

    def one(seq: int, prompt: int) -> tuple[object, ...]:
        return (seq, time.time(), f"req-{seq}", "", "m", "p", "u", "chat", 1, prompt, 0, 1, 0,
                "answered", 200, "", 1.5)  # fmt: skip

    async def run() -> tuple[int, int, list[tuple[object, ...]] | None]:
        store = SqliteStore(str(tmp_path / "usage.db"), 5.0)
        ledger = Ledger(LedgerConfig(url=url), "USD", store=store)
        ledger._pending = [one(1, 3), one(2, 2**70), one(3, 4)]
        await ledger._write_pending()
        written, dropped = ledger.written, ledger.dropped
        # a database that fails while the batch is written apart: the rest stays pending
        ledger._pending = [one(4, 2**70), one(5, 5)]
        real = store.write

        async def failing(rows: list[tuple[object, ...]], per: tuple[object, ...]) -> None:
            if rows[0][0] == 5:
                raise sqlite3.OperationalError("database is locked")
            await real(rows, per)

        store.write = failing  # type: ignore[method-assign]
        with contextlib.suppress(sqlite3.OperationalError):
            await ledger._write_pending()
        pending = ledger._pending
        await store.close()
        return written, dropped, pending

    written, dropped, pending = asyncio.run(run())
    assert (written, dropped) == (2, 1)
    assert pending is not None and [row[0] for row in pending] == [5]
    assert sorted(r["request_id"] for r in ledger_rows(url)) == ["req-1", "req-3"]


def test_a_served_router_drops_only_the_row_its_ledger_refuses(tmp_path: Path) -> None:
    """Through `llm-switchyard serve`: a trigger in the ledger file refuses one request's row
    (as a database refuses a value it cannot hold); that row alone is dropped, counted and
    logged as `ledger_row_refused`, and the rows before and after it in the same batch are
    written."""
    router, url = _router(tmp_path, "flush_interval: 0.3, batch_size: 1000")
    db = url.removeprefix("sqlite:///")
    with router:
        wait_until(lambda: _ledger_ready(url), "the writer has not created its table")
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON llm_router_usage "
                "WHEN NEW.request_id = 'refused-1' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
            conn.commit()
        _send(router, ["kept-1", "refused-1", "kept-2"])
        wait_until(lambda: len(ledger_rows(url)) == 2, "the rows around the refused one")
        assert _metric(router, "llm_router_ledger_rows_dropped_total") == 1
        assert _metric(router, "llm_router_ledger_rows_written_total") == 2
        _, err = router.stop()
    assert sorted(r["request_id"] for r in ledger_rows(url)) == ["kept-1", "kept-2"]
    refused = [line for line in err.decode().splitlines() if '"ledger_row_refused"' in line]
    assert len(refused) == 1 and '"request_id":"refused-1"' in refused[0]
