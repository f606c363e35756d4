"""Where ledger rows go: a SQLite file (the default) or PostgreSQL, behind one small contract.

A store creates its tables when missing, writes batches of rows (a batch is one
transaction), and sums rows for the reports. A row is named by (replica, seq): the process
that wrote it and its own counter, so two requests never merge into one row, whatever request
id a client sent. In PostgreSQL that pair is the table's key and a row already there is
skipped, so a batch retried after a lost answer is not written twice. A SQLite transaction
has no lost answer (it commits in this process, or raises and is rolled back), so its table
keeps rows in the order written, without that key: a fifth of a row's cost.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

SCHEMA_VERSION = 1
TABLE = "llm_router_usage"
VERSION_TABLE = "llm_router_usage_schema"

# Report dimensions and the columns they group by (`day` is each store's own expression).
DIMENSIONS = ("key", "model", "provider", "upstream_model", "operation", "outcome", "day")
_COLUMN_OF = {"key": "key_name"}

# One aggregated group: dimension values in order, then these sums.
SUMS = (
    "COUNT(*)",
    "SUM(prompt_tokens)",
    "SUM(cached_tokens)",
    "SUM(completion_tokens)",
    "SUM(cost_nanos)",
    "SUM(CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END)",
)


# What a driver raises for a value it cannot bind (a number past 64 bits, a text it cannot
# encode, a type it does not know): part of each store's `refuses`.
BIND_ERRORS: tuple[type[Exception], ...] = (OverflowError, ValueError, TypeError)


class LedgerError(Exception):
    """The ledger's database cannot be used: its message says why, without credentials."""


class Store(Protocol):
    """What the writer and the reports need of a database."""

    where: str  # for logs and errors: the file, or host/database (never a password)

    async def open(self) -> None:
        """Connect and create the tables if missing; raises LedgerError or the driver's."""

    async def write(self, rows: list[tuple[Any, ...]], per_ledger: tuple[Any, ...]) -> None:
        """Insert rows (values of `ROW_COLUMNS`), each with the values `per_ledger` of the
        `PER_LEDGER` columns, in one transaction, skipping those already there."""

    def refuses(self, exc: BaseException) -> bool:
        """Whether `exc`, from `write`, says the database refused the rows themselves (a
        value it cannot hold): writing the same rows again cannot succeed."""

    async def aggregate(
        self, by: tuple[str, ...], since: float, until: float
    ) -> list[tuple[Any, ...]]:
        """Per group of `by` (and currency) in [since, until): its values, the currency,
        then `SUMS`."""

    async def close(self) -> None: ...


def group_sql(by: tuple[str, ...], day: str, placeholders: tuple[str, str]) -> str:
    """The report's query, for dimension names already checked against DIMENSIONS."""
    exprs = [day if name == "day" else _COLUMN_OF.get(name, name) for name in by]
    keys = ", ".join([*exprs, "currency"])
    low, high = placeholders
    return (
        f"SELECT {keys}, {', '.join(SUMS)} FROM {TABLE} "
        f"WHERE at >= {low} AND at < {high} GROUP BY {keys}"
    )


def describe(url: str) -> str:
    """A ledger URL for logs: scheme, host, port and database, never user or password."""
    if url.startswith("sqlite:///"):
        return "sqlite " + url.removeprefix("sqlite:///")
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql {parts.hostname or 'localhost'}{port}{parts.path or ''}"
