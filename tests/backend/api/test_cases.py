"""The IVR contract against a real database (SQLite file; PostgreSQL too in CI)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text

from backend.models import Caller, Case, CaseEvent, OutboundMessage
from domain.national_id import with_check_digit

NID = with_check_digit("001354241")
PHONE = "09121234567"


@pytest.fixture
def fixed_now(client):
    """The API's clock at 2026-11-22 12:00 UTC, so spooled received_at times stay inside the window."""
    from backend.api.deps import get_now

    client.app.dependency_overrides[get_now] = lambda: dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    yield
    client.app.dependency_overrides.clear()


def new_case(**overrides):
    body = {
        "service": "1482",
        "kind": "complaint",
        "urgent": True,
        "national_id": NID,
        "caller_number": PHONE,
        "channel": "phone",
        "call_id": "1700000000.1",
    }
    body.update(overrides)
    return body


def test_file_and_read_back(client, ivr_headers, db):
    r = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers)
    assert r.status_code == 201, r.text
    created = r.json()
    code = created["tracking_code"]
    assert len(code) == 10 and code.startswith("10")
    assert created["status"] == "received" and created["due_at"]

    # Read back by the number that filed it (strangers hear less: test_a_stranger_hears_stage_and_dates).
    r = client.get(f"/api/v1/cases/{code}", params={"caller_number": PHONE}, headers=ivr_headers)
    assert r.status_code == 200
    status = r.json()
    assert status["status"] == "received"
    assert status["stage"]
    assert status["unit"].startswith("ستاد ملی")
    assert status["created"]["jalali"].startswith("14")
    assert status["history"][0]["action"] == "register"
    # Identity never appears in what is read back.
    assert NID not in r.text and PHONE not in r.text and "national_id" not in status


def test_identity_is_encrypted_at_rest(client, ivr_headers, db):
    client.post("/api/v1/cases", json=new_case(), headers=ivr_headers)
    dump = " ".join(str(v) for row in db.execute(text("SELECT * FROM caller")).all() for v in row)
    assert NID not in dump and PHONE not in dump
    caller = db.scalar(select(Caller))
    assert caller.national_id_hash and caller.national_id_enc


def test_same_call_id_returns_the_same_case(client, ivr_headers, db):
    first = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers).json()
    second = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers)
    assert second.status_code == 201
    assert second.json()["tracking_code"] == first["tracking_code"]
    assert second.json()["created"] is False
    assert db.scalar(select(func.count(Case.id))) == 1
    assert db.scalar(select(func.count(OutboundMessage.id))) == 1


def test_registration_queues_an_sms_with_the_code(client, ivr_headers, db, vault):
    code = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers).json()["tracking_code"]
    msg = db.scalar(select(OutboundMessage))
    assert vault.decrypt(msg.to_enc) == PHONE
    spaced = " ".join(code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")))
    assert spaced in msg.body


def test_bad_national_id_is_refused_and_nothing_stored(client, ivr_headers, db):
    bad = NID[:9] + str((int(NID[9]) + 1) % 10)
    r = client.post("/api/v1/cases", json=new_case(national_id=bad), headers=ivr_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_national_id"
    assert "check digit" in r.json()["error"]["message"]
    assert db.scalar(select(func.count(Case.id))) == 0
    assert db.scalar(select(func.count(Caller.id))) == 0


def test_other_bad_input(client, ivr_headers, db):
    cases = [
        (new_case(service="999"), "unknown_service"),
        (new_case(kind="praise"), "invalid_kind"),
        (new_case(channel="pigeon"), "invalid_channel"),
        (new_case(caller_number="12"), "invalid_caller_number"),
        (new_case(national_id=None), "invalid_national_id"),
        (new_case(tracking_code="1234567890"), "invalid_tracking_code"),
        ({"service": "1482"}, "invalid_request"),
    ]
    for body, code in cases:
        r = client.post("/api/v1/cases", json=body, headers=ivr_headers)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == code
    assert db.scalar(select(func.count(Case.id))) == 0


def test_mistyped_and_unknown_tracking_codes(client, ivr_headers, db):
    code = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers).json()["tracking_code"]
    typo = code[:4] + str((int(code[4]) + 1) % 10) + code[5:]
    r = client.get(f"/api/v1/cases/{typo}", headers=ivr_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_tracking_code"
    from domain.tracking_code import new_tracking_code

    r = client.get(f"/api/v1/cases/{new_tracking_code('99')}", headers=ivr_headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "case_not_found"


def test_token_is_required(client, db):
    assert client.post("/api/v1/cases", json=new_case()).status_code == 401
    r = client.get("/api/v1/cases/1000000000", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_answer_is_read_only_to_the_owner(client, ivr_headers, db):
    code = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers).json()["tracking_code"]
    case = db.scalar(select(Case))
    case.answer = "مرکز بازرسی شد و مسئول خاطی توبیخ شد"
    db.commit()
    stranger = client.get(
        f"/api/v1/cases/{code}", params={"caller_number": "09350000000"}, headers=ivr_headers
    ).json()
    assert stranger["answer"] is None and stranger["has_answer"] and not stranger["owner_verified"]
    by_phone = client.get(
        f"/api/v1/cases/{code}", params={"caller_number": "+989121234567"}, headers=ivr_headers
    ).json()
    assert by_phone["owner_verified"] and by_phone["answer"] == case.answer
    by_nid = client.get(f"/api/v1/cases/{code}", params={"national_id": NID}, headers=ivr_headers).json()
    assert by_nid["answer"] == case.answer


def test_ivr_issued_code_is_kept(client, ivr_headers, db, fixed_now):
    from domain.tracking_code import new_tracking_code

    offline = new_tracking_code("21")
    r = client.post(
        "/api/v1/cases",
        json=new_case(tracking_code=offline, incomplete=True, received_at="2026-11-20T08:00:00+00:00"),
        headers=ivr_headers,
    )
    assert r.status_code == 201 and r.json()["tracking_code"] == offline
    case = db.scalar(select(Case))
    assert case.incomplete and case.created_at.isoformat().startswith("2026-11-20T08:00")
    clash = client.post(
        "/api/v1/cases", json=new_case(tracking_code=offline, call_id="other"), headers=ivr_headers
    )
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "tracking_code_taken"


def test_urgent_deadline_is_three_hours_and_111_is_ten_days(client, ivr_headers, db, fixed_now):
    urgent = client.post(
        "/api/v1/cases", json=new_case(received_at="2026-11-22T10:30:00+00:00"), headers=ivr_headers
    ).json()
    assert dt.datetime.fromisoformat(urgent["due_at"]) == dt.datetime(2026, 11, 22, 13, 30, tzinfo=dt.UTC)
    samad = client.post(
        "/api/v1/cases",
        json=new_case(service="111", urgent=False, call_id="x2", received_at="2026-11-22T10:30:00+00:00"),
        headers=ivr_headers,
    ).json()
    due = dt.datetime.fromisoformat(samad["due_at"])
    assert (due - dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)).days >= 10


def test_event_history_is_written(client, ivr_headers, db):
    client.post("/api/v1/cases", json=new_case(), headers=ivr_headers)
    ev = db.scalar(select(CaseEvent))
    assert ev.action == "register" and ev.actor == "ivr" and ev.to_status == "received"


def test_openapi_is_served(client):
    assert client.get("/docs").status_code == 200
    assert "/api/v1/cases" in client.get("/openapi.json").json()["paths"]
