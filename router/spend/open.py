"""Opening the store a ledger URL names: SQLite or PostgreSQL."""

from __future__ import annotations

from router.spend.postgres_store import PostgresStore
from router.spend.sqlite_store import SqliteStore
from router.spend.stores import Store


def open_store(url: str, timeout: float) -> Store:
    """The store a ledger URL names (checked by the config: sqlite:/// or postgresql://)."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"), timeout)
    return PostgresStore(url, timeout)
