"""Deadline arithmetic at fixed times (R12): pure, in Tehran time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from domain.deadlines import due_at
from domain.profiles import Calendar, DeadlineRule

TEHRAN = ZoneInfo("Asia/Tehran")
CAL = Calendar(weekend=["friday"], holidays=[dt.date(2026, 11, 28)])  # a Saturday holiday


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TEHRAN)


def local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(TEHRAN)


def test_urgent_at_14_is_due_at_17_even_on_a_friday_night():
    three_hours = DeadlineRule(hours=3)
    assert local(due_at(at(22, 14), three_hours, CAL)) == at(22, 17)
    assert local(due_at(at(27, 23, 30), three_hours, CAL)) == dt.datetime(2026, 11, 28, 2, 30, tzinfo=TEHRAN)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (at(22, 10), at(23, 10)),  # Sunday -> Monday
        (at(25, 10), at(26, 10)),  # Wednesday -> Thursday (a working day here)
        (at(26, 10), at(29, 10)),  # Thursday -> past Friday and the Saturday holiday -> Sunday
        (at(27, 10), at(29, 10)),  # filed on a Friday -> Sunday
    ],
)
def test_one_working_day(start, due):
    assert local(due_at(start, DeadlineRule(working_days=1), CAL)) == due


def test_violation_reports_the_same_working_day():
    same_day = DeadlineRule(same_day=True)
    assert local(due_at(at(22, 9), same_day, CAL)) == at(22, 14, 30)
    # After the working day ends, or on Friday: the end of the next working day.
    assert local(due_at(at(22, 15), same_day, CAL)) == at(23, 14, 30)
    assert local(due_at(at(27, 9), same_day, CAL)) == at(29, 14, 30)


def test_ten_working_days_for_111():
    ten = DeadlineRule(working_days=10)
    assert local(due_at(at(22, 14), ten, Calendar(weekend=["friday"]))) == dt.datetime(
        2026, 12, 3, 14, 0, tzinfo=TEHRAN
    )


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(dt.datetime(2026, 11, 22, 14, 0), DeadlineRule(hours=3), CAL)


def test_a_rule_has_exactly_one_form():
    with pytest.raises(ValueError, match="exactly one"):
        DeadlineRule(hours=3, working_days=1)
