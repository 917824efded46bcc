"""Working days under the Chinese public-holiday calendar (policies/calendar.yml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from app.core.config import settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class HolidayCalendar:
    """Holidays and adjusted working days for the years the State Council has published."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    years: frozenset[int] = field(default_factory=frozenset)

    def is_known(self, day: date) -> bool:
        """True when the day's year has a published arrangement."""
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        """A working day: an adjusted working day, or a weekday that is not a holiday."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, days: int) -> tuple[date, bool]:
        """The date `days` working days after `start`; True when it relied on unknown years."""
        if days < 0:
            raise ValueError("days must be >= 0")
        day, left, provisional = start, days, not self.is_known(start)
        while left > 0:
            day += timedelta(days=1)
            provisional = provisional or not self.is_known(day)
            if self.is_working_day(day):
                left -= 1
        return day, provisional

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (negative when end < start)."""
        if end < start:
            return -self.working_days_between(end, start)
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count


def _expand(entry: object) -> list[date]:
    if isinstance(entry, list):
        first, last = entry
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if isinstance(entry, date):
        return [entry]
    raise ValueError(f"bad calendar entry: {entry!r}")


def load_calendar(path: Path) -> HolidayCalendar:
    """Read the calendar YAML; each year lists holiday dates or [first, last] ranges."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    holidays: set[date] = set()
    workdays: set[date] = set()
    years: set[int] = set()
    for year, spec in (data.get("years") or {}).items():
        years.add(int(year))
        for entry in spec.get("holidays") or []:
            holidays.update(_expand(entry))
        for entry in spec.get("workdays") or []:
            workdays.update(_expand(entry))
    return HolidayCalendar(frozenset(holidays), frozenset(workdays), frozenset(years))


@lru_cache(maxsize=1)
def calendar() -> HolidayCalendar:
    """The calendar of the configured policies directory (cached; reload by clearing)."""
    return load_calendar(settings.policies_dir / "calendar.yml")


def today_shanghai(now: datetime | None = None) -> date:
    """Today's date in Asia/Shanghai (dates and petition numbers use it)."""
    return (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).date()
