from datetime import UTC, datetime

from pv.weeks import most_recent_complete_week, week_end_on_or_before, weeks_between


def test_most_recent_complete_week_is_previous_monday_to_monday_0600_utc():
    start, end = most_recent_complete_week(datetime(2026, 11, 25, 18, 2, tzinfo=UTC))  # a Wednesday
    assert (start, end) == (datetime(2026, 11, 16, 6, tzinfo=UTC), datetime(2026, 11, 23, 6, tzinfo=UTC))


def test_monday_before_0600_belongs_to_the_week_before():
    start, end = most_recent_complete_week(datetime(2026, 11, 23, 5, 59, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 11, 9, 6, tzinfo=UTC), datetime(2026, 11, 16, 6, tzinfo=UTC))
    assert week_end_on_or_before(datetime(2026, 11, 23, 6, tzinfo=UTC)) == datetime(2026, 11, 23, 6, tzinfo=UTC)


def test_weeks_between_tiles_without_gaps():
    weeks = weeks_between(datetime(2024, 1, 1, 6, tzinfo=UTC), datetime(2024, 2, 26, 6, tzinfo=UTC))
    assert len(weeks) == 9
    assert all(a[1] == b[0] for a, b in zip(weeks, weeks[1:], strict=False))
    assert weeks[0][0].weekday() == 0 and weeks[0][0].hour == 6
