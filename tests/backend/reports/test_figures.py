"""Report figures against cases built for the test: exact counts, percentiles, a unit's subtree, the
Jalali week boundary on a Friday night in Tehran, the change against the previous period (R19)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from backend.models import Case, User
from backend.reports.figures import ReportScope, build_report, scope_for, subtree_ids
from domain.report_periods import jalali_month, jalali_week
from tests.backend.reports.builders import HOUR, late_return, make_case, tehran, unit

MEHR = jalali_month(1404, 7)  # 2025-09-23 .. 2025-10-22


@pytest.fixture
def mehr(db, staff):
    """Ten cases in Mehr 1404, one in Shahrivar (the month before), one in Aban (after)."""
    start = tehran(2025, 9, 23, 8, 0)
    ratings = [5, 4, 4, 3, 5, 1]
    for i in range(6):  # Mashhad's centre answered six complaints by phone, 10 h .. 60 h after filing
        make_case(
            db,
            start + i * 24 * HOUR,
            unit_code="1482-khr-mashhad-c01",
            category="mistreatment",
            status="closed",
            screened_after=(i + 1) * HOUR,
            referred_after=(i + 2) * HOUR,
            answered_after=(i + 1) * 10 * HOUR,
            satisfaction=ratings[i],
        )
    for i in range(3):  # Neyshabur holds three urgent web requests; two were returned for lateness
        case = make_case(
            db,
            start + (i + 1) * HOUR,
            unit_code="1482-khr-neyshabur",
            kind="request",
            channel="web",
            urgent=True,
            screened_after=HOUR,
            referred_after=2 * HOUR,
            late_returns=1 if i < 2 else 0,
            escalation_level=1 if i == 0 else 0,
        )
        if i < 2:
            late_return(db, case, "1482-khr-neyshabur", start + 100 * HOUR)
    make_case(db, start + 3 * HOUR, status="rejected")  # at the central office
    make_case(db, tehran(2025, 9, 22, 23, 59), status="closed", answered_after=5 * HOUR)  # Shahrivar
    make_case(db, tehran(2025, 10, 23, 0, 0))  # Aban
    db.commit()


def rows(report, key):
    return {r["key"]: r["count"] for r in report[key]}


def test_a_months_figures_are_exact(db, mehr):
    report = build_report(db, MEHR, ReportScope())
    assert report["total"] == 10
    assert rows(report, "by_kind") == {"complaint": 7, "request": 3}
    assert rows(report, "by_channel") == {"phone": 7, "web": 3}
    assert rows(report, "by_category") == {"mistreatment": 6, "other": 4}
    assert rows(report, "by_urgency") == {"urgent": 3, "normal": 7}
    assert rows(report, "by_unit") == {"1482-khr-mashhad-c01": 6, "1482-khr-neyshabur": 3, "1482-hq": 1}
    assert rows(report, "handling") == {
        "answered": 6,
        "closed": 6,
        "rejected": 1,
        "returned_late": 2,
        "escalated": 1,
        "open": 3,
    }
    assert report["on_time"] == {"answered": 6, "on_time": 6, "share": 1.0}
    # Answers 10..60 h: median 35 h; the 90th percentile, interpolated, 55 h.
    answer = report["durations"]["answer"]
    assert (answer["count"], answer["median_seconds"], answer["p90_seconds"]) == (6, 35 * 3600, 55 * 3600)
    # Screening: 1..6 h and three times 1 h -> sorted 1,1,1,1,2,3,4,5,6: median 2 h, p90 at 7.2 -> 5.2 h.
    screening = report["durations"]["screening"]
    assert screening["count"] == 9 and screening["median_seconds"] == 2 * 3600
    assert screening["p90_seconds"] == pytest.approx(5.2 * 3600, abs=0.1)
    overall = report["satisfaction"]["overall"]
    assert overall["ratings"] == 6 and overall["mean"] == 3.67
    assert overall["distribution"] == {"1": 1, "2": 0, "3": 1, "4": 2, "5": 2}
    assert [u["unit"] for u in report["satisfaction"]["units"]] == ["1482-khr-mashhad-c01"]
    assert report["late_units"] == [
        {"unit": "1482-khr-neyshabur", "name_fa": unit(db, "1482-khr-neyshabur").name_fa, "late_returns": 2}
    ]
    # Shahrivar had one case, answered in 5 h, none rated.
    assert report["change"]["total"] == {"current": 10, "previous": 1, "change": 9}
    assert report["change"]["median_answer_seconds"]["previous"] == 5 * 3600
    assert report["change"]["satisfaction_mean"]["previous"] is None
    assert report["previous_period"]["key"] == "month:1404-06"


def test_a_manager_sees_their_units_subtree(db, mehr):
    mashhad = db.scalar(select(User).where(User.username == "mashhad"))
    scope = scope_for(db, mashhad)
    assert scope.unit_ids == frozenset(subtree_ids(db, unit(db, "1482-khr-mashhad").id))
    report = build_report(db, MEHR, scope)
    assert report["total"] == 6 and rows(report, "by_unit") == {"1482-khr-mashhad-c01": 6}
    assert report["late_units"] == []
    khorasan = db.scalar(select(User).where(User.username == "khorasan"))
    assert build_report(db, MEHR, scope_for(db, khorasan))["total"] == 9
    # A supervisor narrows to a unit's subtree.
    admin = db.scalar(select(User).where(User.username == "admin"))
    assert build_report(db, MEHR, scope_for(db, admin, "1482", "1482-khr-neyshabur"))["total"] == 3


def test_a_unit_out_of_reach_is_not_found(db, mehr):
    from backend.api.errors import ApiError

    mashhad = db.scalar(select(User).where(User.username == "mashhad"))
    with pytest.raises(ApiError) as caught:
        scope_for(db, mashhad, "", "1482-khr-neyshabur")
    assert caught.value.status == 404


def test_the_jalali_week_ends_on_friday_midnight_in_tehran(db, staff):
    friday_night = tehran(2025, 10, 24, 23, 59, 30)  # Friday 1404/08/02, half a minute before midnight
    saturday = tehran(2025, 10, 25, 0, 0, 30)  # the next week's first half minute
    make_case(db, friday_night)
    make_case(db, saturday)
    make_case(db, saturday)
    db.commit()
    week = jalali_week(dt.date(2025, 10, 24))
    assert (week.first, week.last) == (dt.date(2025, 10, 18), dt.date(2025, 10, 24))
    assert week.first.weekday() == 5  # Saturday
    assert build_report(db, week, ReportScope())["total"] == 1
    next_week = jalali_week(dt.date(2025, 10, 25))
    report = build_report(db, next_week, ReportScope())
    assert report["total"] == 2
    assert report["change"]["total"] == {"current": 2, "previous": 1, "change": 1}


def test_milestones_follow_the_workflow(client, ivr_headers, db, staff, clock):
    """Screening, referral, answer and late returns through the real workflow keep the report columns."""
    from tests.backend.api.test_staff import login, referred_case

    code = referred_case(client, ivr_headers, urgent=False)
    clock.now += dt.timedelta(hours=3)
    r = client.post(
        f"/api/v1/staff/cases/{code}/answer", json={"text": "رسیدگی شد"}, headers=login(client, "mashhad")
    )
    assert r.status_code == 200, r.text
    db.expire_all()
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    assert case.first_screened_at is not None and case.first_referred_at is not None
    assert case.first_answered_at == clock.now
    assert case.handling_unit_id == unit(db, "1482-khr-mashhad").id
    assert case.current_unit_id != case.handling_unit_id  # the answer went up; the unit still counts
    assert case.late_returns == 0
