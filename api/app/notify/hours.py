"""Office hours of the people behind the bot (policies/guidance.yml `office_hours`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import yaml

from app.core.workdays import SHANGHAI, calendar
from app.policy.catalogue import get_catalogue

WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class OfficeHours:
    """ISO weekdays (1 = Monday), opening and closing time in Asia/Shanghai, the text residents
    read and how long a clerk takes per resident (for the estimated wait)."""

    days: frozenset[int]
    open: time
    close: time
    text: str
    minutes_per_resident: int

    def is_open_day(self, day: date) -> bool:
        """A listed weekday that is not a public holiday, or an adjusted working day (调休)."""
        cal = calendar()
        if day in cal.workdays:
            return True
        return day.isoweekday() in self.days and day not in cal.holidays

    def is_open(self, now: datetime) -> bool:
        """True when a person answers at this moment."""
        local = now.astimezone(SHANGHAI)
        return self.is_open_day(local.date()) and self.open <= local.time() < self.close

    def next_open(self, now: datetime) -> datetime | None:
        """The next opening moment after `now` (Asia/Shanghai), None when none within 60 days."""
        local = now.astimezone(SHANGHAI)
        for offset in range(61):
            day = local.date() + timedelta(days=offset)
            start = datetime.combine(day, self.open, tzinfo=SHANGHAI)
            if start > local and self.is_open_day(day):
                return start
        return None


def next_open_text(moment: datetime, now: datetime) -> str:
    """'今天 9:00', '明天 9:00', '周一 9:00', or '10月8日（周三）9:00' a week or more away."""
    local_now = now.astimezone(SHANGHAI)
    local = moment.astimezone(SHANGHAI)
    clock = f"{local.hour}:{local.minute:02d}"
    days = (local.date() - local_now.date()).days
    weekday = "周" + WEEKDAYS[local.weekday()]
    if days == 0:
        return f"今天 {clock}"
    if days == 1:
        return f"明天 {clock}"
    if days < 7:
        return f"{weekday} {clock}"
    return f"{local.month}月{local.day}日（{weekday}）{clock}"


def _parse_time(value: object, where: str) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: time must be HH:MM") from exc


def read_office_hours(path: Path) -> OfficeHours:
    """Parse the `office_hours` block of a guidance.yml (ValueError naming the field)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    block = data.get("office_hours")
    where = f"{path.name}: office_hours"
    if not isinstance(block, dict):
        raise ValueError(f"{where} is missing")
    days = frozenset(int(d) for d in block.get("days") or [])
    if not days or not days <= set(range(1, 8)):
        raise ValueError(f"{where}.days must list ISO weekdays 1-7")
    hours = OfficeHours(
        days=days,
        open=_parse_time(block.get("open"), f"{where}.open"),
        close=_parse_time(block.get("close"), f"{where}.close"),
        text=str(block.get("text") or ""),
        minutes_per_resident=int(block.get("minutes_per_resident") or 5),
    )
    if hours.open >= hours.close:
        raise ValueError(f"{where}: open must be before close")
    return hours


_cache: dict[Path, tuple[float, OfficeHours]] = {}


def office_hours() -> OfficeHours:
    """The office hours of the loaded catalogue (re-read when guidance.yml changes)."""
    path = get_catalogue().directory / "guidance.yml"
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, read_office_hours(path))
        _cache[path] = cached
    return cached[1]
