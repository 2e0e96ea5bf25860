"""A citizen's escalation hands the case, and its deadline, to the level above (issue 8, fault 1)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from backend.models import Case, Referral
from backend.services.profiles import get_profile, get_profiles
from backend.workflow.answers import answer
from backend.workflow.citizen import REPEAT_WINDOW, escalate_case
from backend.workflow.referrals import enforce_deadlines, refer, screen
from tests.backend.workflow.test_referrals import AT_14, new_case, unit


def referred_case(db, vault, to: str = "1482-khr-mashhad") -> tuple[Case, Referral]:
    profile = get_profile("1482")
    case = new_case(db, vault)
    screen(db, case, category="mistreatment", urgent=True, profile=profile, actor="op", now=AT_14)
    referral = refer(db, vault, profile, case, unit(db, to), actor="op", now=AT_14)
    db.commit()
    return case, referral


def test_escalation_closes_the_units_referral_and_opens_one_at_the_parent_with_its_own_deadline(db, vault):
    profile = get_profile("1482")
    case, county = referred_case(db, vault)
    pressed_9 = AT_14 + dt.timedelta(hours=1)
    escalate_case(db, vault, profile, case, now=pressed_9)
    db.commit()

    assert county.state == "escalated" and county.closed_at == pressed_9
    open_now = db.scalars(select(Referral).where(Referral.case_id == case.id, Referral.state == "open")).all()
    assert len(open_now) == 1
    province = open_now[0]
    assert province.to_unit.code == "1482-khr" and province.from_unit.code == "1482-hq"
    # Its own deadline, from the profile's rule for an urgent case: three hours from the escalation.
    assert province.due_at == pressed_9 + dt.timedelta(hours=3) != county.due_at
    assert case.status == "escalated" and case.current_unit.code == "1482-khr"
    assert case.due_at == province.due_at

    # Escalated again a day later: to the central office, which has no deadline over itself.
    escalate_case(db, vault, profile, case, now=pressed_9 + REPEAT_WINDOW + dt.timedelta(minutes=1))
    db.commit()
    assert province.state == "escalated"
    assert db.scalar(select(Referral).where(Referral.case_id == case.id, Referral.state == "open")) is None
    assert case.current_unit.code == "1482-hq" and case.due_at is None and case.escalation_level == 2


def test_the_old_deadline_no_longer_returns_an_escalated_case_but_the_new_one_does(db, vault):
    profile = get_profile("1482")
    case, county = referred_case(db, vault)
    escalate_case(db, vault, profile, case, now=AT_14 + dt.timedelta(hours=1))
    db.commit()
    # The county's deadline passes: nothing to return, and nothing raises.
    assert enforce_deadlines(db, vault, get_profiles(), county.due_at + dt.timedelta(minutes=30)) == 0
    db.expire_all()
    assert db.get(Case, case.id).status == "escalated"
    # The province's own deadline passes: the case returns to the central office.
    assert enforce_deadlines(db, vault, get_profiles(), case.due_at + dt.timedelta(minutes=1)) == 1
    db.expire_all()
    case = db.get(Case, case.id)
    assert case.status == "returned" and case.current_unit.code == "1482-hq"
    assert unit(db, "1482-khr").score == 95.0 and unit(db, "1482-khr-mashhad").score == 100.0


def test_the_level_an_escalated_case_reached_answers_it_up_to_the_centre(db, vault):
    profile = get_profile("1482")
    case, _county = referred_case(db, vault)
    escalate_case(db, vault, profile, case, now=AT_14 + dt.timedelta(hours=1))
    answer(db, vault, profile, case, "پیگیری شد", actor="khorasan", now=AT_14 + dt.timedelta(hours=2))
    db.commit()
    assert case.status == "answered" and case.current_unit.code == "1482-hq" and case.due_at is None
    assert db.scalar(select(Referral).where(Referral.case_id == case.id, Referral.state == "open")) is None


def test_the_sweep_leaves_a_case_it_cannot_return_and_returns_the_others(db, vault):
    odd, odd_referral = referred_case(db, vault)
    other, _ = referred_case(db, vault, to="1482-khr-neyshabur")
    db.execute(update(Case).where(Case.id == odd.id).values(status="closed"))  # forced by hand
    db.commit()
    assert enforce_deadlines(db, vault, get_profiles(), AT_14 + dt.timedelta(hours=4)) == 1
    db.expire_all()
    assert db.get(Case, other.id).status == "returned"
    # Nothing was claimed for the case in an unexpected state: its referral is still open.
    assert db.get(Referral, odd_referral.id).state == "open" and db.get(Case, odd.id).status == "closed"
