"""The one source of the current time, so tests can freeze it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone


def utcnow() -> datetime:
    """Timezone-aware UTC now."""
    return datetime.now(UTC)


CHINA_TIME = timezone(timedelta(hours=8), "CST")  # licence dates are calendar dates in China (UTC+8)


def china_today() -> date:
    """Today's date in China: validity starts, ends and expires on Beijing calendar days."""
    return utcnow().astimezone(CHINA_TIME).date()
