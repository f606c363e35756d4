"""The ledger in a SQLite file: the stdlib driver in one worker thread, WAL mode.

WAL lets the reports read while the writer writes, and lets several worker processes share
one file (each waits up to the ledger's `timeout` for the write lock).

A batch is written as multi-row INSERTs of 32, 16, ..., 1 rows (its size in binary): a
statement per row (`executemany`) costs the driver a step, a reset and a hand-over of the
interpreter lock to and from the event loop's thread for every row, a fifth of a row's
cost. The values the same in every row (`PER_LEDGER`) are constants of the statements, not
bound per row (the driver copies every text it binds). At most six statements are ever
prepared, and 32 rows bind 544 values, below the 999 that old SQLite builds allow.

The table is a rowid table without a key on (replica, seq) (`router.spend.stores`): each
row is appended, where a key of a text and a number cost every insert a search of its own
tree. A file made by an earlier version keeps its key; the same INSERT works on both.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from router.spend.entry import COLUMNS, PER_LEDGER, ROW_COLUMNS, insert_value
from router.spend.stores import (
    BIND_ERRORS,
    SCHEMA_VERSION,
    TABLE,
    VERSION_TABLE,
    LedgerError,
    group_sql,
)

T = TypeVar("T")

_CREATE = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS {TABLE} (
    replica TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    request_id TEXT NOT NULL,
    key_name TEXT,
    model TEXT,
    provider TEXT,
    upstream_model TEXT,
    operation TEXT,
    attempts INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_nanos INTEGER,
    currency TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    error TEXT,
    latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_at ON {TABLE} (at);
CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL);
INSERT INTO {VERSION_TABLE} (version)
    SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {VERSION_TABLE});
COMMIT;
"""
CHUNK = 32  # rows per statement at most (a power of two)
_WIDTH = len(ROW_COLUMNS)


def _quoted(value: str) -> str:
    """A string as a constant of an SQL statement."""
    return "'" + value.replace("'", "''") + "'"


def inserts(per_ledger: tuple[str, ...]) -> dict[int, str]:
    """Per number of rows (each power of two up to CHUNK): the INSERT of that many rows, with
    `per_ledger` as the `PER_LEDGER` columns' constants."""
    fixed = dict(zip(PER_LEDGER, per_ledger, strict=True))
    values = ", ".join(_quoted(fixed[c]) if c in fixed else insert_value(c, "?") for c in COLUMNS)
    return {
        n: f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES "
        f"{', '.join([f'({values})'] * n)} ON CONFLICT DO NOTHING"
        for n in (1 << i for i in range(CHUNK.bit_length()))
    }


_DAY = "strftime('%Y-%m-%d', at, 'unixepoch')"
_REFUSALS = (
    *BIND_ERRORS,
    sqlite3.DataError,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
)


class SqliteStore:
    def __init__(self, path: str, timeout: float) -> None:
        self.path = Path(path)
        self.where = f"sqlite {path}"
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._inserts: tuple[tuple[Any, ...], dict[int, str]] = ((), {})  # (for, statements)
        # One thread, so the connection is only ever used by the thread that opened it.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="llm-switchyard-ledger")

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    def _connect(self, create: bool) -> sqlite3.Connection:
        if not create and not self.path.is_file():
            raise LedgerError(f"no ledger at {self.path}: nothing written yet, or another path")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            if create:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_CREATE)
            _check_version(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect(create=True)
        return self._conn

    async def open(self) -> None:
        await self._run(self._connection)

    def _write(self, rows: list[tuple[Any, ...]], per_ledger: tuple[Any, ...]) -> None:
        conn = self._connection()
        if self._inserts[0] != per_ledger:
            self._inserts = (per_ledger, inserts(per_ledger))
        statements = self._inserts[1]
        values = list(itertools.chain.from_iterable(rows))  # one flat list: sliced per statement
        try:
            conn.execute("BEGIN IMMEDIATE")
            at, left = 0, len(rows)
            while left:
                n = CHUNK if left >= CHUNK else 1 << (left.bit_length() - 1)
                end = at + n * _WIDTH
                conn.execute(statements[n], values[at:end])
                at, left = end, left - n
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def write(self, rows: list[tuple[Any, ...]], per_ledger: tuple[Any, ...]) -> None:
        await self._run(lambda: self._write(rows, per_ledger))

    def refuses(self, exc: BaseException) -> bool:
        # A value the driver cannot bind (a number past 64 bits, a text it cannot encode, a
        # type it does not know) or a row a constraint refuses; not a locked or failing file.
        return isinstance(exc, _REFUSALS)

    def _aggregate(self, by: tuple[str, ...], since: float, until: float) -> list[tuple[Any, ...]]:
        conn = self._connect(create=False)
        try:
            return conn.execute(group_sql(by, _DAY, ("?", "?")), (since, until)).fetchall()
        finally:
            conn.close()

    async def aggregate(
        self, by: tuple[str, ...], since: float, until: float
    ) -> list[tuple[Any, ...]]:
        return await self._run(lambda: self._aggregate(by, since, until))

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        try:
            await self._run(self._close)
        finally:
            self._thread.shutdown(wait=False)


def _check_version(conn: sqlite3.Connection) -> None:
    try:
        found = conn.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()
    except sqlite3.OperationalError:
        raise LedgerError("this SQLite file holds no llm-switchyard ledger") from None
    if found and found[0] is not None and found[0] > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger's schema is version {found[0]}, newer than this llm-switchyard's "
            f"({SCHEMA_VERSION}): upgrade llm-switchyard"
        )
