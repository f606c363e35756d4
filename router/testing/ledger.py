"""Test helpers for the usage ledger: read its rows straight from the database, and a
PostgreSQL database of one's own on a shared server."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def ledger_rows(url: str) -> list[dict[str, Any]]:
    """Every row of the ledger at `url`; none while its table does not exist yet."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return []
        conn = sqlite3.connect(path)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM llm_router_usage")]
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()
    import asyncpg

    async def fetch() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return [dict(r) for r in await conn.fetch("SELECT * FROM llm_router_usage")]
        except asyncpg.UndefinedTableError:
            return []
        finally:
            await conn.close()

    return asyncio.run(fetch())


def wait_for_rows(url: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The ledger's rows once there are `count` of them, or whatever is there at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = ledger_rows(url)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def postgres_available(server: str = PG_SERVER) -> bool:
    try:
        import asyncpg
    except ImportError:
        return False

    async def ping() -> None:
        conn = await asyncpg.connect(server + "/postgres", timeout=2)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


@contextlib.contextmanager
def scratch_database(server: str = PG_SERVER) -> Iterator[str]:
    """The URL of a new, empty database on `server`, dropped afterwards."""
    import asyncpg

    name = f"llm_router_test_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(server + "/postgres", timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    try:
        yield f"{server}/{name}"
    finally:
        asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
