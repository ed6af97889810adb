"""Working-day deadlines (工作日): weekends off, plus a deployment's holiday calendar.

China's public holidays move every year and come with make-up working days (调休) on weekends, published
by the State Council each winter; no library carries them reliably, so the deployment supplies them
(``HUB_WORKING_CALENDAR_FILE``) and this module only does the counting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.errors import InvalidInput

# Government deadlines and daily quotas follow the local calendar day, not UTC.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class WorkingCalendarInvalid(InvalidInput):
    code = "working_calendar_invalid"
    title = "The working-day calendar file is not valid"


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # weekend days that are working days (调休)

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
        if days < 0:
            msg = "days must not be negative"
            raise ValueError(msg)
        current, left = start, days
        while left:
            current += timedelta(days=1)
            if self.is_working_day(current):
                left -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative when ``end`` is before ``start``."""
        if end < start:
            return -self.working_days_between(end, start)
        return sum(1 for n in range(1, (end - start).days + 1) if self.is_working_day(start + timedelta(days=n)))


@lru_cache(maxsize=8)
def load_calendar(path: Path | None) -> WorkingCalendar:
    if path is None:
        return WorkingCalendar()
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        holidays = frozenset(date.fromisoformat(d) for d in raw.get("holidays", []))
        workdays = frozenset(date.fromisoformat(d) for d in raw.get("workdays", []))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        msg = f"{path}: expected {{'holidays': [YYYY-MM-DD...], 'workdays': [...]}}"
        raise WorkingCalendarInvalid(msg) from exc
    if holidays & workdays:
        raise WorkingCalendarInvalid(f"{path}: a day cannot be both a holiday and a working day")
    return WorkingCalendar(holidays, workdays)


def local_day(moment: datetime) -> date:
    """The Asia/Shanghai calendar day of an aware datetime."""
    return moment.astimezone(LOCAL_TZ).date()
