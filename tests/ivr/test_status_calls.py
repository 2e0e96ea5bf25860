"""Hearing a status by phone (R7), the answer only to its owner (R9), escalation (R8), survey (R21)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from backend.models import Case, CaseEvent
from domain.national_id import with_check_digit
from tests.ivr.test_calls import NID, OTHER_NID

CALLER = "09121234567"
ANSWER = "مرکز بازرسی شد و کمبود غذا برطرف شد."


def file_case(client_db, vault, *, answer: str | None = None, status: str | None = None) -> str:
    from backend.services.intake import NewCase, register_case
    from backend.services.profiles import get_profile

    case, _ = register_case(
        client_db,
        vault,
        get_profile("1482"),
        NewCase(
            service="1482",
            kind="complaint",
            urgent=True,
            channel="phone",
            national_id=NID,
            caller_number=CALLER,
            call_id="earlier-call",
        ),
        backend_prefix="10",
        now=dt.datetime.now(dt.UTC),
    )
    case.answer = answer
    if status:
        case.status = status
    client_db.commit()
    return case.tracking_code


async def test_owner_hears_stage_dates_and_answer(backend, place_call, db, vault):
    code = file_case(db, vault, answer=ANSWER)
    t = await place_call(["2", f"{code}#", ""])
    played = t.played
    assert "stage-received" in played and "kind-complaint" in played and "urgent-word" in played
    assert "unit-1482-hq" in played
    # Dates in words: "registered on" is followed by a day ordinal and a Jalali month.
    i = played.index("registered-on")
    assert played[i + 1].startswith("ord-") and played[i + 2].startswith("month-")
    assert "deadline-is" in played
    answer_prompt = played[played.index("answer-is") + 1]
    assert answer_prompt.startswith("dyn-")
    assert t.variables["DIDEHBAN_OUTCOME"] == "status"
    assert t.variables["DIDEHBAN_TRACKING_CODE"] == code  # the call log names the case


async def test_another_number_must_prove_ownership_with_the_national_id(backend, place_call, db, vault):
    code = file_case(db, vault, answer=ANSWER)
    t = await place_call(["2", f"{code}#", f"{NID}#", "1", ""], caller="09350000000")
    assert "answer-only-for-owner" in t.played and "answer-is" in t.played
    assert t.variables["DIDEHBAN_PATH"].endswith("owner:nid")


async def test_a_stranger_does_not_hear_the_answer(backend, place_call, db, vault):
    code = file_case(db, vault, answer=ANSWER)
    t = await place_call(["2", f"{code}#", f"{OTHER_NID}#", "1", ""], caller="09350000000")
    assert "not-owner" in t.played and "answer-is" not in t.played


async def test_a_mistyped_code_is_caught_by_its_check_digit(backend, place_call, db, vault):
    code = file_case(db, vault)
    typo = code[:3] + str((int(code[3]) + 1) % 10) + code[4:]
    t = await place_call(["2", f"{typo}#", f"{code}#", ""])
    assert t.played.count("tracking-code-invalid") == 1 and "status-intro" in t.played
    assert "no-answer-yet" in t.played


async def test_unknown_code_is_said_so(backend, place_call, db, vault):
    from domain.tracking_code import new_tracking_code

    t = await place_call(["2", f"{new_tracking_code('99')}#", "", "", ""])
    assert "case-not-found" in t.played


async def test_press_9_escalates(backend, place_call, db, vault):
    code = file_case(db, vault)
    t = await place_call(["2", f"{code}#", "9"])
    assert "escalated" in t.played and t.variables["DIDEHBAN_OUTCOME"] == "escalated"
    db.expire_all()
    case = db.scalar(select(Case))
    assert case.status == "escalated" and case.escalation_level == 1
    assert db.scalar(select(CaseEvent).where(CaseEvent.action == "escalate")).actor == "ivr"
    # Pressing 9 again the same day is the same complaint, not a second escalation.
    t = await place_call(["2", f"{code}#", "9"])
    assert "already-escalated" in t.played
    db.expire_all()
    assert db.scalar(select(Case)).escalation_level == 1


async def test_owner_of_a_closed_case_rates_it(backend, place_call, db, vault):
    code = file_case(db, vault, answer=ANSWER, status="closed")
    t = await place_call(["2", f"{code}#", "4", ""])
    assert "satisfaction-survey" in t.played and "thanks-for-rating" in t.played
    db.expire_all()
    assert db.scalar(select(Case)).satisfaction == 4


async def test_backend_down_during_status_says_so(ivr_env, fastagi, place_call, db, vault):
    code = file_case(db, vault)
    t = await place_call(["2", f"{code}#"])
    assert "status-unavailable" in t.played and t.variables["DIDEHBAN_OUTCOME"] == "failed"


async def test_111_status(backend, place_call, db, vault):
    from backend.services.intake import NewCase, register_case
    from backend.services.profiles import get_profile

    case, _ = register_case(
        db,
        vault,
        get_profile("111"),
        NewCase(
            service="111",
            kind="request",
            urgent=False,
            channel="phone",
            national_id=with_check_digit("555555556"),
            caller_number=CALLER,
        ),
        backend_prefix="10",
        now=dt.datetime.now(dt.UTC),
    )
    db.commit()
    t = await place_call(["2", f"{case.tracking_code}#", ""], service="111")
    assert "welcome-111" in t.played and "unit-111-khz" in t.played


async def test_a_stranger_hears_the_stage_and_dates_but_not_what_the_case_is(backend, place_call, db, vault):
    code = file_case(db, vault)
    t = await place_call(["2", f"{code}#", ""], caller="09350000000")
    played = t.played
    assert "stage-received" in played and "registered-on" in played and "deadline-is" in played
    i = played.index("registered-on")
    assert played[i + 1].startswith("ord-") and played[i + 2].startswith("month-")
    assert not any(p.startswith(("kind-", "unit-")) for p in played)
    assert "case-kind-is" not in played and "urgent-word" not in played and "handled-by" not in played


async def test_a_stranger_cannot_escalate_without_the_national_id(backend, place_call, db, vault):
    code = file_case(db, vault)
    t = await place_call(["2", f"{code}#", "9", f"{OTHER_NID}#", "1"], caller="09350000000")
    assert "enter-national-id" in t.played and "not-owner" in t.played and "escalated" not in t.played
    db.expire_all()
    assert db.scalar(select(Case)).escalation_level == 0
    # The filer calling from another phone proves it and escalates.
    t = await place_call(["2", f"{code}#", "9", f"{NID}#", "1"], caller="09350000000")
    assert "escalated" in t.played and t.variables["DIDEHBAN_OUTCOME"] == "escalated"
    db.expire_all()
    assert db.scalar(select(Case)).escalation_level == 1


async def test_an_owner_proved_by_national_id_escalates_without_a_second_proof(
    backend, place_call, db, vault
):
    code = file_case(db, vault, answer=ANSWER)
    t = await place_call(["2", f"{code}#", f"{NID}#", "1", "9"], caller="09350000000")
    assert "answer-is" in t.played and "escalated" in t.played
    assert t.played.count("enter-national-id") == 1
