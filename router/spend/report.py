"""Usage reports from the ledger: requests, tokens and cost per group, and their totals.

One function serves `llm-switchyard usage` and `GET /admin/usage`. The database sums each group
(a million rows never cross the wire); the totals are the sum of the groups, so they equal
the rows'. Costs are summed in whole nanos and shown in the ledger's currency.
"""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from router.spend.open import open_store
from router.spend.prices import NANOS
from router.spend.stores import DIMENSIONS, LedgerError

DEFAULT_SINCE = "7d"
DEFAULT_BY = "model"
_AGO = re.compile(r"^(\d+)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
FIGURES = (
    "requests",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "cost",
    "unpriced_requests",
)


# The first and last days a report can name (the ends of Python's calendar).
_FIRST_DAY = datetime(1, 1, 1, tzinfo=UTC).timestamp()
_LAST_DAY = datetime(9999, 12, 31, tzinfo=UTC).timestamp()


class ReportError(ValueError):
    """A report that cannot be made as asked: its message says what to change."""


def parse_time(text: str, now: float) -> float:
    """Unix seconds for `7d`, `24h`, `30m`, `2w` (that long before `now`), a date
    (`2026-12-01`, midnight UTC) or an ISO 8601 time (UTC unless it has an offset)."""
    text = text.strip()
    ago = _AGO.match(text)
    if ago:  # (longer ago than the calendar goes back: from its first day)
        return max(now - int(ago.group(1)) * _UNIT[ago.group(2)], _FIRST_DAY)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"'{text}' is not a time: give a duration ago (7d, 24h, 30m, 2w), a date "
            "(2026-12-01) or an ISO 8601 time (2026-12-01T09:30:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max(moment.timestamp(), _FIRST_DAY), _LAST_DAY)  # (an offset past either end)


def parse_by(text: str) -> tuple[str, ...]:
    """The dimensions of `key,model`, checked; `` (empty) for the totals alone."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in DIMENSIONS]
    if unknown:
        raise ReportError(
            f"cannot group by {', '.join(unknown)}: choose from {', '.join(DIMENSIONS)}"
        )
    if len(set(names)) != len(names):
        raise ReportError(f"'{text}' names a dimension twice")
    return names


@dataclass
class Group:
    """One row of a report: its dimension values and what its requests add up to."""

    values: dict[str, str | None] = field(default_factory=dict)
    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_nanos: int = 0
    unpriced_requests: int = 0  # used tokens on a target without a price: no cost counted

    def add(self, other: Group) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_nanos += other.cost_nanos
        self.unpriced_requests += other.unpriced_requests

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": float(cost(self.cost_nanos)),
            "cost_nanos": self.cost_nanos,
            "unpriced_requests": self.unpriced_requests,
        }


@dataclass
class Report:
    since: float
    until: float
    by: tuple[str, ...]
    currency: str
    rows: list[Group]
    totals: Group


def cost(nanos: int) -> Decimal:
    """Nanos as an exact amount of the currency."""
    return Decimal(nanos) / NANOS


def _int(value: Any) -> int:
    return int(value) if value is not None else 0  # PostgreSQL sums bigints as numeric


async def usage_report(
    url: str,
    by: tuple[str, ...],
    since: float,
    until: float,
    currency: str,
    timeout: float = 10.0,
) -> Report:
    """The report for the ledger at `url`: rows in [since, until) grouped by `by`;
    `currency` labels a report with no rows."""
    if until <= since:
        raise ReportError("until must be later than since")
    store = open_store(url, timeout)
    try:
        found = await store.aggregate(by, since, until)
    finally:
        await store.close()
    rows: list[Group] = []
    currencies = set()
    for record in found:
        values, rest = record[: len(by)], record[len(by) :]
        currencies.add(rest[0])
        requests, prompt, cached, completion, nanos, unpriced = map(_int, rest[1:])
        group = Group(dict(zip(by, values, strict=True)), requests, prompt, cached, completion)
        group.cost_nanos, group.unpriced_requests = nanos, unpriced
        rows.append(group)
    if len(currencies) > 1:
        raise ReportError(
            f"the ledger holds costs in {', '.join(sorted(currencies))} in this period "
            "(`spend.currency` changed): report each period on its own with --since/--until"
        )
    rows.sort(key=lambda g: tuple(v or "" for v in g.values.values()))
    totals = Group()
    for group in rows:
        totals.add(group)
    return Report(since, until, by, currencies.pop() if currencies else currency, rows, totals)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def as_json(report: Report) -> dict[str, Any]:
    """The report as plain data: a list of groups plus totals (`GET /admin/usage`)."""
    return {
        "object": "usage_report",
        "since": _iso(report.since),
        "until": _iso(report.until),
        "by": list(report.by),
        "currency": report.currency,
        "rows": [{**group.values, **group.figures()} for group in report.rows],
        "totals": report.totals.figures(),
    }


def _cells(report: Report, group: Group, places: int) -> list[str]:
    amount = cost(group.cost_nanos).quantize(Decimal(1).scaleb(-places))
    return [
        str(group.requests),
        str(group.prompt_tokens),
        str(group.cached_tokens),
        str(group.completion_tokens),
        f"{amount:f}",
        str(group.unpriced_requests),
    ]


def _header(report: Report) -> list[str]:
    return [*report.by, *(f"cost_{report.currency}" if f == "cost" else f for f in FIGURES)]


def as_csv(report: Report) -> str:
    """A header, one line per group, then `total`; costs exact to the nano."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_header(report))
    for group in report.rows if report.by else []:
        writer.writerow([*(v or "" for v in group.values.values()), *_cells(report, group, 9)])
    label = ["total", *[""] * (len(report.by) - 1)] if report.by else []
    writer.writerow([*label, *_cells(report, report.totals, 9)])
    return out.getvalue()


def as_table(report: Report) -> str:
    """Aligned columns for a terminal, costs to six decimals, a `total` line last."""
    lines = [_header(report)]
    groups = report.rows if report.by else []  # without dimensions, the totals say it all
    lines += [[*(v or "-" for v in g.values.values()), *_cells(report, g, 6)] for g in groups]
    label = ["total", *[""] * (len(report.by) - 1)] if report.by else []
    lines.append([*label, *_cells(report, report.totals, 6)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    dims = len(report.by)
    rendered = [
        "  ".join(
            cell.ljust(w) if i < dims else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]
    title = f"usage {_iso(report.since)} to {_iso(report.until)}, cost in {report.currency}"
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([title, *rendered[:-1], rule, rendered[-1]]) + "\n"


def period(since: str | None, until: str | None, now: float | None = None) -> tuple[float, float]:
    """[since, until) in unix seconds from the CLI's or the query's words."""
    now = time.time() if now is None else now
    low = parse_time(since or DEFAULT_SINCE, now)
    high = parse_time(until, now) if until else now + 1  # "now", the last instant included
    return low, high


__all__ = [
    "DEFAULT_BY",
    "LedgerError",
    "Report",
    "ReportError",
    "as_csv",
    "as_json",
    "as_table",
    "parse_by",
    "period",
    "usage_report",
]
