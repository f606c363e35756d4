"""Calendar periods of budgets: their names and ends in a time zone, across month ends and
daylight saving time changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from router.spend.periods import current

PARIS = ZoneInfo("Europe/Paris")


def _at(text: str, zone: ZoneInfo = UTC) -> float:  # type: ignore[assignment]
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def test_a_day_starts_and_ends_at_midnight_in_its_zone() -> None:
    # 23:30 UTC on Dec 1 is already Dec 2 in Paris
    period = current("day", PARIS, _at("2026-12-01T23:30:00"))
    assert period.name == "2026-12-02"
    assert period.ends == _at("2026-12-03T00:00:00", PARIS)
    assert current("day", ZoneInfo("UTC"), _at("2026-12-01T23:30:00")).name == "2026-12-01"


def test_a_day_changed_by_daylight_saving_time_is_23_or_25_hours() -> None:
    spring = current("day", PARIS, _at("2026-03-29T12:00:00", PARIS))
    assert spring.ends - _at("2026-03-29T00:00:00", PARIS) == 23 * 3600
    autumn = current("day", PARIS, _at("2026-10-25T12:00:00", PARIS))
    assert autumn.ends - _at("2026-10-25T00:00:00", PARIS) == 25 * 3600


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    week = current("week", PARIS, _at("2026-12-06T22:00:00", PARIS))  # a Sunday
    assert week.name == "2026-11-30"
    assert week.ends == _at("2026-12-07T00:00:00", PARIS)
    month = current("month", ZoneInfo("America/New_York"), _at("2027-01-01T03:00:00"))
    assert month.name == "2026-12-01"  # still Dec 31 in New York
    assert month.ends == _at("2027-01-01T00:00:00", ZoneInfo("America/New_York"))
    february = current("month", PARIS, _at("2028-02-15T00:00:00"))
    assert february.ends == _at("2028-03-01T00:00:00", PARIS)
