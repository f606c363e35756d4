"""The ledger in PostgreSQL, for many replicas: `asyncpg`, one connection per process.

A batch is one `INSERT ... SELECT FROM unnest(...)` statement: one round trip however many
rows, and `ON CONFLICT DO NOTHING` makes a retried batch harmless. Tables are created under
an advisory lock, so replicas starting together do not race.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from router.spend.entry import COLUMNS, PER_LEDGER, ROW_COLUMNS, insert_value
from router.spend.stores import (
    BIND_ERRORS,
    SCHEMA_VERSION,
    TABLE,
    VERSION_TABLE,
    LedgerError,
    describe,
    group_sql,
)

_TYPES = {
    "replica": "text",
    "seq": "bigint",
    "at": "timestamptz",
    "request_id": "text",
    "key_name": "text",
    "model": "text",
    "provider": "text",
    "upstream_model": "text",
    "operation": "text",
    "attempts": "integer",
    "prompt_tokens": "bigint",
    "cached_tokens": "bigint",
    "completion_tokens": "bigint",
    "cost_nanos": "bigint",
    "currency": "text",
    "outcome": "text",
    "status": "integer",
    "error": "text",
    "latency_ms": "double precision",
}
_NOT_NULL = {
    "replica",
    "seq",
    "at",
    "request_id",
    "attempts",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "currency",
    "outcome",
    "status",
    "latency_ms",
}
_COLUMN_DEFS = ",\n    ".join(
    f"{name} {_TYPES[name]}{' NOT NULL' * (name in _NOT_NULL)}" for name in COLUMNS
)
_CREATE = [
    "SELECT pg_advisory_xact_lock(hashtext('llm_router_usage_schema'))",
    f"CREATE TABLE IF NOT EXISTS {TABLE} (\n    {_COLUMN_DEFS},\n    PRIMARY KEY (replica, seq)\n)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_at ON {TABLE} (at)",
    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version integer NOT NULL)",
    f"INSERT INTO {VERSION_TABLE} (version) SELECT {SCHEMA_VERSION} "
    f"WHERE NOT EXISTS (SELECT 1 FROM {VERSION_TABLE})",
]
# A row's columns come as arrays (`unnest`), then the `PER_LEDGER` ones as single values.
_UNNEST = ", ".join(f"${i}::{_TYPES[name]}[]" for i, name in enumerate(ROW_COLUMNS, 1))
_PER_LEDGER = {
    name: f"${i}::{_TYPES[name]}" for i, name in enumerate(PER_LEDGER, len(ROW_COLUMNS) + 1)
}
_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "
    f"SELECT {', '.join(_PER_LEDGER.get(c) or insert_value(c, c) for c in COLUMNS)} "
    f"FROM unnest({_UNNEST}) AS batch ({', '.join(ROW_COLUMNS)}) ON CONFLICT DO NOTHING"
)
_AT = ROW_COLUMNS.index("at")
_DAY = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError:
        raise LedgerError(
            "a PostgreSQL ledger needs asyncpg: pip install 'llm-switchyard[postgres]'"
        ) from None
    return asyncpg


class PostgresStore:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.where = describe(url)
        self.timeout = timeout
        self._conn: Any = None

    async def _connect(self, create: bool) -> Any:
        conn = await _asyncpg().connect(self.url, timeout=self.timeout)
        try:
            if create:
                async with conn.transaction():
                    for statement in _CREATE:
                        await conn.execute(statement, timeout=self.timeout)
            await _check_version(conn, self.timeout)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def open(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._connect(create=True)

    async def write(self, rows: list[tuple[Any, ...]], per_ledger: tuple[Any, ...]) -> None:
        await self.open()
        columns = [list(column) for column in zip(*rows, strict=True)]
        columns[_AT] = [datetime.fromtimestamp(at, UTC) for at in columns[_AT]]
        try:
            await self._conn.execute(_INSERT, *columns, *per_ledger, timeout=self.timeout)
        except BaseException:
            self._drop()  # unknown state: a new connection for the next try
            raise

    def refuses(self, exc: BaseException) -> bool:
        # A value asyncpg cannot encode (its DataError is a ValueError), or one the server
        # refuses (SQLSTATE classes 22 and 23); not a connection or server failure.
        pg = _asyncpg().exceptions
        return isinstance(
            exc,
            (*BIND_ERRORS, pg.DataError, pg.IntegrityConstraintViolationError),
        )

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def aggregate(
        self, by: tuple[str, ...], since: float, until: float
    ) -> list[tuple[Any, ...]]:
        conn = await self._connect(create=False)
        try:
            low, high = (datetime.fromtimestamp(t, UTC) for t in (since, until))
            records = await conn.fetch(
                group_sql(by, _DAY, ("$1", "$2")), low, high, timeout=self.timeout
            )
        finally:
            await conn.close(timeout=self.timeout)
        return [tuple(record.values()) for record in records]

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=self.timeout)
            except Exception:
                conn.terminate()


async def _check_version(conn: Any, timeout: float) -> None:
    asyncpg = _asyncpg()
    try:
        found = await conn.fetchval(f"SELECT max(version) FROM {VERSION_TABLE}", timeout=timeout)
    except asyncpg.UndefinedTableError:
        raise LedgerError("this database holds no llm-switchyard ledger") from None
    if found is not None and found > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger's schema is version {found}, newer than this llm-switchyard's "
            f"({SCHEMA_VERSION}): upgrade llm-switchyard"
        )
