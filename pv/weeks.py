"""Weekly data intervals: [Monday 06:00 UTC, next Monday 06:00 UTC), as the DAG's timetable makes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

WEEK = timedelta(days=7)


def week_end_on_or_before(moment: datetime) -> datetime:
    """The latest Monday 06:00 UTC at or before `moment`."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    monday = (moment - timedelta(days=moment.weekday())).replace(hour=6, minute=0, second=0, microsecond=0)
    return monday if monday <= moment else monday - WEEK


def most_recent_complete_week(now: datetime | None = None) -> tuple[datetime, datetime]:
    end = week_end_on_or_before(now or datetime.now(UTC))
    return end - WEEK, end


def weeks_between(first_start: datetime, last_start: datetime) -> list[tuple[datetime, datetime]]:
    """Every weekly interval whose start lies in [first_start, last_start], aligned to Mondays 06:00."""
    start = week_end_on_or_before(first_start)
    if start < first_start:
        start += WEEK
    out = []
    while start <= last_start:
        out.append((start, start + WEEK))
        start += WEEK
    return out
