"""Deadline arithmetic (R12). Pure: times in, time out; the calendar comes from the profile.

All datetimes are timezone-aware. Rules are computed in the service's local time and the
answer is returned in UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from domain.profiles import WEEKDAYS, Calendar, DeadlineRule


def is_working_day(day: dt.date, calendar: Calendar) -> bool:
    return WEEKDAYS[day.weekday()] not in calendar.weekend and day not in calendar.holidays


def next_working_day(day: dt.date, calendar: Calendar) -> dt.date:
    day += dt.timedelta(days=1)
    while not is_working_day(day, calendar):
        day += dt.timedelta(days=1)
    return day


# Deadlines stay inside what a datetime can hold in any zone: a start out of this span is moved to its
# edge, and a deadline that would fall beyond the last representable day is that day.
EARLIEST_START = dt.datetime(1, 1, 3, tzinfo=dt.UTC)
LATEST_DUE = dt.datetime(9999, 12, 29, tzinfo=dt.UTC)


def due_at(
    start: dt.datetime, rule: DeadlineRule, calendar: Calendar, tz: str = "Asia/Tehran"
) -> dt.datetime:
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("deadlines are computed from timezone-aware datetimes")
    # Comparisons of aware datetimes never overflow; arithmetic near year 1 or 9999 can.
    start = min(max(start, EARLIEST_START), LATEST_DUE)
    try:
        return min(_due_at(start, rule, calendar, tz), LATEST_DUE)
    except OverflowError:
        return LATEST_DUE


def _due_at(start: dt.datetime, rule: DeadlineRule, calendar: Calendar, tz: str) -> dt.datetime:
    zone = ZoneInfo(tz)
    local = start.astimezone(zone)
    if rule.hours is not None:
        # Urgent cases run round the clock: a citizen in danger does not wait for Saturday.
        return (start + dt.timedelta(hours=rule.hours)).astimezone(dt.UTC)
    if rule.same_day:
        day = local.date()
        if not is_working_day(day, calendar) or local.time() >= calendar.workday_end:
            day = next_working_day(day, calendar)
        end = dt.datetime.combine(day, calendar.workday_end, tzinfo=zone)
        return end.astimezone(dt.UTC)
    assert rule.working_days is not None
    # N working days: the same time of day, N working days later (a referral on Wednesday 10:00
    # with Friday off and one day allowed is due Saturday 10:00).
    day = local.date()
    for _ in range(rule.working_days):
        day = next_working_day(day, calendar)
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone).astimezone(dt.UTC)
