"""When a budget's period started and when it ends: calendar days, weeks and months in a
time zone, or a rolling window.

A calendar period is named by its first day (`2026-12-01`): a budget's counter is keyed by
that name, so the next period starts from nothing without anyone resetting anything, and
every replica agrees on the name from the clock alone. Midnight in the zone is found with
`zoneinfo`, so a day that daylight saving time makes 23 or 25 hours long ends when the zone's
clocks say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000
# How long a calendar period's counter counts what was spent: longer than any such period
# (a month is at most 31 days, a DST day 25 hours), so nothing leaves it before it ends.
COUNTS_FOR_MS = {"day": 2 * DAY_MS, "week": 8 * DAY_MS, "month": 32 * DAY_MS}


@dataclass(frozen=True, slots=True)
class Current:
    """The period a moment falls in: its name ("" for a rolling window) and its end (unix
    seconds; +inf for a rolling window, which has no end)."""

    name: str
    ends: float


def _first_day(period: str, day: date) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _next_first_day(period: str, first: date) -> date:
    if period == "week":
        return first + timedelta(days=7)
    if period == "month":
        return (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first + timedelta(days=1)


def _midnight(day: date, zone: ZoneInfo) -> float:
    """Unix seconds of midnight starting `day` in `zone`."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC).timestamp()


def current(period: str, zone: ZoneInfo, now: float) -> Current:
    """The calendar `period` (day, week, month) that `now` (unix seconds) falls in."""
    today = datetime.fromtimestamp(now, zone).date()
    first = _first_day(period, today)
    return Current(first.isoformat(), _midnight(_next_first_day(period, first), zone))
