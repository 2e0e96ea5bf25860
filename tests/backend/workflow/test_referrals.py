"""Screening, referral with its own deadline, and the automatic return of a late case (R10-R13, R15)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from backend.models import Case, CaseEvent, OutboundMessage, Referral, Unit, User
from backend.services.intake import NewCase, register_case
from backend.services.profiles import get_profile, get_profiles
from backend.workflow.referrals import WorkflowError, enforce_deadlines, refer, screen
from domain.national_id import with_check_digit

TEHRAN = ZoneInfo("Asia/Tehran")
# A Sunday, 14:00 in Tehran.
AT_14 = dt.datetime(2026, 11, 22, 14, 0, tzinfo=TEHRAN).astimezone(dt.UTC)


def unit(db, code: str) -> Unit:
    return db.scalar(select(Unit).where(Unit.code == code))


def new_case(db, vault, *, service="1482", kind="complaint", urgent=True) -> Case:
    case, _ = register_case(
        db,
        vault,
        get_profile(service),
        NewCase(
            service=service,
            kind=kind,
            urgent=urgent,
            channel="phone",
            national_id=with_check_digit("001354241"),
            caller_number="09121234567",
        ),
        backend_prefix="10",
        now=AT_14 - dt.timedelta(minutes=30),
    )
    db.flush()
    return case


def test_urgent_referral_at_14_is_due_at_17_down_the_hierarchy(db, vault):
    profile = get_profile("1482")
    case = new_case(db, vault)
    screen(db, case, category="mistreatment", urgent=True, profile=profile, actor="operator1482", now=AT_14)
    province = refer(db, vault, profile, case, unit(db, "1482-khr"), actor="operator1482", now=AT_14)
    assert province.due_at.astimezone(TEHRAN).time() == dt.time(17, 0)
    county = refer(
        db,
        vault,
        profile,
        case,
        unit(db, "1482-khr-mashhad"),
        actor="khorasan",
        now=AT_14 + dt.timedelta(minutes=20),
    )
    db.commit()
    assert case.status == "referred" and case.current_unit.code == "1482-khr-mashhad"
    assert province.state == "referred_on" and county.state == "open"
    assert [e.action for e in case.events] == ["register", "screen", "refer", "refer"]
    sms = db.scalars(
        select(OutboundMessage).where(OutboundMessage.dedupe_key.like(f"case:{case.id}:referred%"))
    )
    assert len(sms.all()) == 2  # one per referral: the caller hears of each step (R16)


def test_a_unit_refers_only_downwards_and_only_screened_cases(db, vault):
    profile = get_profile("1482")
    case = new_case(db, vault)
    with pytest.raises(WorkflowError, match="received cannot be given the action refer"):
        refer(db, vault, profile, case, unit(db, "1482-khr"), actor="x", now=AT_14)
    screen(db, case, category="other", urgent=False, profile=profile, actor="x", now=AT_14)
    refer(db, vault, profile, case, unit(db, "1482-khr-mashhad"), actor="x", now=AT_14)
    with pytest.raises(WorkflowError, match="only to units below"):
        refer(db, vault, profile, case, unit(db, "1482-khr-neyshabur"), actor="mashhad", now=AT_14)
    with pytest.raises(WorkflowError, match="own service"):
        refer(db, vault, profile, case, unit(db, "111-khz-abfa"), actor="mashhad", now=AT_14)
    with pytest.raises(WorkflowError, match="category"):
        screen(
            db, new_case(db, vault), category="gardening", urgent=False, profile=profile, actor="x", now=AT_14
        )


def test_a_late_case_returns_once_even_when_the_scheduler_was_down_at_the_deadline(db, vault):
    profile = get_profile("1482")
    case = new_case(db, vault)
    screen(db, case, category="mistreatment", urgent=True, profile=profile, actor="op", now=AT_14)
    county = unit(db, "1482-khr-mashhad")
    db.add(User(username="mgr", full_name="مدیر", role="manager", unit=county))
    referral = refer(db, vault, profile, case, county, actor="op", now=AT_14)
    db.commit()

    assert enforce_deadlines(db, vault, get_profiles(), referral.due_at - dt.timedelta(minutes=1)) == 0
    # The scheduler was down at 17:00 and comes back at 19:30: the case still returns, once.
    late_run = referral.due_at + dt.timedelta(hours=2, minutes=30)
    assert enforce_deadlines(db, vault, get_profiles(), late_run) == 1
    assert enforce_deadlines(db, vault, get_profiles(), late_run + dt.timedelta(minutes=1)) == 0
    db.expire_all()
    case = db.get(Case, case.id)
    assert case.status == "returned" and case.current_unit.code == "1482-hq"
    assert db.get(Referral, referral.id).state == "returned"
    assert county.score == 95.0 and db.scalar(select(User).where(User.username == "mgr")).score == 95.0
    events = db.scalars(select(CaseEvent).where(CaseEvent.action == "return_late")).all()
    assert len(events) == 1 and events[0].actor == "scheduler"
    returned_sms = db.scalars(
        select(OutboundMessage).where(OutboundMessage.dedupe_key.like("%returned%"))
    ).all()
    assert len(returned_sms) == 1 and case.tracking_code in returned_sms[0].body


def test_111_agencies_have_ten_working_days(db, vault):
    profile = get_profile("111")
    case = new_case(db, vault, service="111", kind="request", urgent=False)
    screen(db, case, category="water_sewage", urgent=False, profile=profile, actor="op", now=AT_14)
    referral = refer(db, vault, profile, case, unit(db, "111-khz-abfa"), actor="op", now=AT_14)
    # Sunday 22 Nov + 10 working days (Fridays off) = Thursday 3 Dec, same time of day.
    assert referral.due_at.astimezone(TEHRAN) == dt.datetime(2026, 12, 3, 14, 0, tzinfo=TEHRAN)
