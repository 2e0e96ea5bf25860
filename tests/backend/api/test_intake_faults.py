# ruff: noqa: F811  (the staff API tests' fixtures are imported and named as arguments)
"""Intake under hostile or unlucky input (issue 8, faults 2, 4, 5, 7, 8, 9, 12), on SQLite and PostgreSQL.
Races (fault 6) are in test_intake_races.py."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from backend.models import Caller, Case, CaseCode, OutboundMessage, Recording
from backend.services.status import is_owner
from domain.national_id import with_check_digit
from domain.tracking_code import new_tracking_code
from tests.backend.api.test_cases import NID, PHONE, new_case
from tests.backend.api.test_staff import START, clock, login, staff  # noqa: F401  (fixtures)

OTHER_PHONE = "09351112233"


def persian(code: str) -> str:
    return " ".join(code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")))


def file(client, ivr_headers, **overrides):
    body = new_case(received_at=START.isoformat())
    body.update(overrides)
    return client.post("/api/v1/cases", json=body, headers=ivr_headers)


# --- fault 2: every code a caller was told resolves --------------------------------------------------


def test_the_offline_code_a_caller_heard_resolves_to_the_kept_case(client, ivr_headers, db, staff, clock):
    # The backend filed the call, but its answer was lost: the IVR told the caller its own code and
    # spooled the case; the spool now delivers the same call under that code.
    kept = file(client, ivr_headers).json()["tracking_code"]
    heard = new_tracking_code("21")
    replay = file(client, ivr_headers, tracking_code=heard)
    assert replay.status_code == 201, replay.text
    assert replay.json() == {**replay.json(), "tracking_code": kept, "created": False}
    assert db.scalar(select(func.count(Case.id))) == 1
    assert db.scalar(select(CaseCode.code)) == heard

    status = client.get(f"/api/v1/cases/{heard}", headers=ivr_headers)
    assert status.status_code == 200 and status.json()["tracking_code"] == kept
    # Typed with spaces and Persian digits, as a caller reads it from the SMS.
    assert client.get(f"/api/v1/cases/{persian(heard)}", headers=ivr_headers).status_code == 200
    op = login(client, "op")
    staff_view = client.get(f"/api/v1/staff/cases/{heard}", headers=op)
    assert staff_view.status_code == 200 and staff_view.json()["tracking_code"] == kept
    rating = client.post(
        f"/api/v1/cases/{heard}/satisfaction", json={"rating": 5, "caller_number": PHONE}, headers=ivr_headers
    )
    assert rating.status_code == 409  # found (not 404): the case is not closed yet

    # The caller is told, once, which code the case is kept under.
    file(client, ivr_headers, tracking_code=heard)
    told = db.scalars(select(OutboundMessage).where(OutboundMessage.dedupe_key.like("%alias%"))).all()
    assert len(told) == 1 and persian(kept) in told[0].body and persian(heard) in told[0].body

    escalation = client.post(
        f"/api/v1/cases/{heard}/escalations", json={"caller_number": PHONE}, headers=ivr_headers
    )
    assert escalation.status_code == 201, escalation.text


def test_an_sms_reply_may_name_the_heard_code(client, ivr_headers, db, staff, clock, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("DIDEHBAN_SMS_INBOUND_SECRET", "gw-secret")
    clear_caches()
    kept = file(client, ivr_headers).json()["tracking_code"]
    heard = new_tracking_code("21")
    file(client, ivr_headers, tracking_code=heard)
    op = login(client, "op")
    client.post(
        f"/api/v1/staff/cases/{heard}/screen", json={"category": "other", "urgent": False}, headers=op
    )
    client.post(f"/api/v1/staff/cases/{heard}/answer", json={"text": "رسیدگی شد"}, headers=op)
    assert (
        client.post(f"/api/v1/staff/cases/{heard}/approve", json={}, headers=op).json()["status"] == "closed"
    )
    gateway = {"Authorization": "Bearer gw-secret"}
    # From another number the code proves nothing.
    r = client.post("/api/v1/sms/inbound", json={"from": OTHER_PHONE, "text": f"{heard} 2"}, headers=gateway)
    assert r.json()["recorded"] is False
    r = client.post(
        "/api/v1/sms/inbound", json={"from": PHONE, "text": f"{persian(heard)} ۵"}, headers=gateway
    )
    assert r.json() == {"recorded": True, "tracking_code": kept, "rating": 5}


def test_a_replay_cannot_alias_a_code_of_another_case(client, ivr_headers, db, clock):
    offline = new_tracking_code("21")
    assert file(client, ivr_headers, call_id="a", tracking_code=offline).status_code == 201
    file(client, ivr_headers, call_id="b")
    r = file(client, ivr_headers, call_id="b", tracking_code=offline)
    assert r.status_code == 409 and r.json()["error"]["code"] == "tracking_code_taken"
    assert db.scalar(select(func.count(CaseCode.id))) == 0


# --- fault 4: a later caller cannot redirect someone's SMS ---------------------------------------------


def test_a_later_call_with_the_same_national_id_keeps_each_cases_number(
    client, ivr_headers, db, vault, staff, clock
):
    first = file(client, ivr_headers, call_id="victim").json()["tracking_code"]
    second = file(client, ivr_headers, call_id="other", caller_number=OTHER_PHONE).json()["tracking_code"]
    victim = db.scalar(select(Case).where(Case.tracking_code == first))
    assert vault.decrypt(victim.phone_enc) == PHONE
    assert db.scalar(select(func.count(Caller.id))) == 1  # one person, two cases
    assert vault.decrypt(db.scalar(select(Caller)).phone_enc) == PHONE  # never rewritten

    # The victim's next SMS goes to the victim's number; the new number is not the owner.
    op = login(client, "op")
    client.post(
        f"/api/v1/staff/cases/{first}/screen", json={"category": "other", "urgent": False}, headers=op
    )
    client.post(f"/api/v1/staff/cases/{first}/referrals", json={"unit": "1482-khr"}, headers=op)
    db.expire_all()
    victim_sms = db.scalars(select(OutboundMessage).where(OutboundMessage.case_id == victim.id)).all()
    assert len(victim_sms) >= 2 and {vault.decrypt(m.to_enc) for m in victim_sms} == {PHONE}
    assert not is_owner(victim, vault, OTHER_PHONE, None)
    assert is_owner(victim, vault, PHONE, None)
    stranger = client.get(
        f"/api/v1/cases/{first}", params={"caller_number": OTHER_PHONE}, headers=ivr_headers
    )
    assert stranger.json()["owner_verified"] is False
    later = db.scalar(select(Case).where(Case.tracking_code == second))
    assert vault.decrypt(later.phone_enc) == OTHER_PHONE and is_owner(later, vault, OTHER_PHONE, None)


# --- fault 5: received_at within a window; dates always render -----------------------------------------


@pytest.mark.parametrize(
    "received_at",
    [
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        (START - dt.timedelta(days=8)).isoformat(),
        (START + dt.timedelta(hours=1)).isoformat(),
        "2026-11-22T06:00:00",  # no zone
        "yesterday",
    ],
)
def test_received_at_outside_the_window_is_refused(client, ivr_headers, db, clock, received_at):
    r = client.post("/api/v1/cases", json=new_case(received_at=received_at), headers=ivr_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_received_at"
    assert db.scalar(select(func.count(Case.id))) == 0


def test_received_at_within_the_window_and_a_little_skew(client, ivr_headers, db, clock):
    week_ago = START - dt.timedelta(days=6, hours=23)
    assert file(client, ivr_headers, call_id="old", received_at=week_ago.isoformat()).status_code == 201
    ahead = START + dt.timedelta(seconds=60)  # the node's clock runs a minute fast
    assert file(client, ivr_headers, call_id="ahead", received_at=ahead.isoformat()).status_code == 201
    case = db.scalar(select(Case).where(Case.call_id == "ahead"))
    assert case.created_at == START  # never in the future


def test_received_at_window_is_a_setting(client, ivr_headers, db, clock, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("DIDEHBAN_RECEIVED_AT_MAX_AGE_DAYS", "30")
    clear_caches()
    old = (START - dt.timedelta(days=20)).isoformat()
    assert file(client, ivr_headers, received_at=old).status_code == 201


def test_a_stored_year_one_date_does_not_break_the_inbox_or_status(client, ivr_headers, db, staff, clock):
    code = file(client, ivr_headers).json()["tracking_code"]
    case = db.scalar(select(Case))
    case.created_at = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    case.due_at = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    db.commit()
    assert client.get(f"/api/v1/cases/{code}", headers=ivr_headers).status_code == 200
    op = login(client, "op")
    assert client.get("/api/v1/staff/inbox", headers=op).status_code == 200
    assert client.get(f"/api/v1/staff/cases/{code}", headers=op).status_code == 200


# --- fault 7: bounded bodies and fields ----------------------------------------------------------------


def test_a_huge_body_is_refused_before_it_is_read(client, ivr_headers, db):
    big = new_case(description="x" * (20 * 1024 * 1024))
    r = client.post("/api/v1/cases", json=big, headers=ivr_headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    r = client.post("/api/v1/auth/login", content=b'{"username": "' + b"a" * (50 * 1024 * 1024) + b'"}')
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert db.scalar(select(func.count(Case.id))) == 0


def test_a_streamed_body_is_counted(client, ivr_headers, db):
    def chunks():
        yield b'{"service": "1482", "description": "'
        for _ in range(400):
            yield b"x" * 1024
        yield b'"}'

    r = client.post(
        "/api/v1/cases", content=chunks(), headers={**ivr_headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_the_body_limit_is_a_setting(client, ivr_headers, db, monkeypatch):
    from fastapi.testclient import TestClient

    from backend.api.main import create_app
    from tests.conftest import clear_caches

    monkeypatch.setenv("DIDEHBAN_MAX_REQUEST_BYTES", "2048")
    clear_caches()
    with TestClient(create_app()) as small:
        r = small.post("/api/v1/cases", json=new_case(description="x" * 3000), headers=ivr_headers)
        assert r.status_code == 413
        assert small.post("/api/v1/cases", json=new_case(), headers=ivr_headers).status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/cases", new_case(recording_path="a/" * 200 + "m.wav")),
        ("/api/v1/cases", new_case(national_id="1" * 41)),
        ("/api/v1/cases", new_case(caller_number="9" * 41)),
        ("/api/v1/cases", new_case(call_id="c" * 81)),
        ("/api/v1/cases", new_case(description="ش" * 20001)),
        ("/api/v1/cases", new_case(kind="k" * 41)),
        ("/api/v1/cases", new_case(category="k" * 41)),
        ("/api/v1/cases", new_case(received_at="2" * 65)),
        ("/api/v1/auth/login", {"username": "u" * 65, "password": "p"}),
        ("/api/v1/auth/login", {"username": "u", "password": "p" * 257}),
    ],
)
def test_every_free_text_field_is_bounded(client, ivr_headers, db, path, body):
    r = client.post(path, json=body, headers=ivr_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"


def test_staff_notes_and_sms_texts_are_bounded(client, ivr_headers, db, staff, clock, monkeypatch):
    from tests.conftest import clear_caches

    code = file(client, ivr_headers).json()["tracking_code"]
    op = login(client, "op")
    long_note = "n" * 4001
    for path, body in [
        (f"/api/v1/staff/cases/{code}/referrals", {"unit": "1482-khr", "note": long_note}),
        (f"/api/v1/staff/cases/{code}/approve", {"note": long_note}),
        (f"/api/v1/staff/cases/{code}/send-back", {"note": long_note}),
        (f"/api/v1/staff/cases/{code}/escalations", {"note": long_note}),
        (f"/api/v1/staff/cases/{code}/screen", {"category": "c" * 41, "urgent": False}),
        (f"/api/v1/staff/cases/{code}/answer", {"text": "a" * 20001}),
        ("/api/v1/staff/users/op/password", {"password": "p" * 257}),
    ]:
        r = client.post(path, json=body, headers=op)
        assert r.status_code == 422, (path, r.text)
    monkeypatch.setenv("DIDEHBAN_SMS_INBOUND_SECRET", "gw-secret")
    clear_caches()
    gateway = {"Authorization": "Bearer gw-secret"}
    r = client.post("/api/v1/sms/inbound", json={"from": PHONE, "text": "4" * 1601}, headers=gateway)
    assert r.status_code == 422
    assert db.scalar(select(Case)).events[-1].action == "register"  # nothing was acted on


# --- fault 8: recording paths stay inside the recordings folder ----------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "1482/../../etc/passwd",
        "/etc/shadow",
        "file:///etc/shadow",
        "http://example.org/x.wav",
        "C:\\recordings\\x.wav",
        "1482/call\x00.wav",
        "1482/call\n.wav",
        "1482/\u202ecall.wav",
        "",
        ".",
        "./..",
    ],
)
def test_recording_paths_outside_the_folder_are_refused(client, ivr_headers, db, clock, path):
    r = file(client, ivr_headers, recording_path=path)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_recording_path"
    assert db.scalar(select(func.count(Recording.id))) == 0


def test_a_recording_path_is_stored_normalised(client, ivr_headers, db, clock):
    r = file(client, ivr_headers, recording_path="1482/./20261122//call-1-message.wav")
    assert r.status_code == 201, r.text
    assert db.scalar(select(Recording.path)) == "1482/20261122/call-1-message.wav"


# --- fault 9: one identity whatever digits were typed; no 500 on any code ------------------------------


def test_full_width_digits_are_the_same_identity(client, ivr_headers, db, clock):
    fullwidth = NID.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert file(client, ivr_headers, call_id="ascii").status_code == 201
    r = file(
        client, ivr_headers, call_id="wide", national_id=fullwidth, caller_number="０９１２１２３４５６７"
    )
    assert r.status_code == 201, r.text
    assert db.scalar(select(func.count(Caller.id))) == 1
    assert db.scalar(select(func.count(func.distinct(Case.phone_hash)))) == 1


def test_digit_lookalikes_answer_422_not_500(client, ivr_headers, db, staff, clock):
    code = file(client, ivr_headers).json()["tracking_code"]
    r = client.get(f"/api/v1/cases/{code[:9]}²", headers=ivr_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_tracking_code"
    r = client.get(f"/api/v1/staff/cases/{code[:9]}²", headers=login(client, "op"))
    assert r.status_code == 422
    r = file(client, ivr_headers, call_id="sup", national_id=NID[:9] + "⁹")
    assert r.status_code == 422 and "looks like a digit" in r.json()["error"]["message"]
    r = file(client, ivr_headers, call_id="sup2", caller_number="0912123456²")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_caller_number"
    r = file(client, ivr_headers, call_id="sup3", tracking_code="21" + "²" * 8)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_tracking_code"


# --- fault 12: offline codes only from configured IVR nodes --------------------------------------------


@pytest.mark.parametrize("code", ["0000000000", new_tracking_code("99"), new_tracking_code("10")])
def test_offline_codes_from_unknown_issuers_are_refused(client, ivr_headers, db, clock, code):
    r = file(client, ivr_headers, tracking_code=code)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_tracking_code"
    assert db.scalar(select(func.count(Case.id))) == 0


def test_node_prefixes_are_a_setting(client, ivr_headers, db, clock, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("DIDEHBAN_NODE_PREFIXES", "22,23")
    clear_caches()
    assert file(client, ivr_headers, call_id="n21", tracking_code=new_tracking_code("21")).status_code == 422
    assert file(client, ivr_headers, call_id="n23", tracking_code=new_tracking_code("23")).status_code == 201
    # Even if configured, the backend's own prefix is never an offline code.
    monkeypatch.setenv("DIDEHBAN_NODE_PREFIXES", "10,22")
    clear_caches()
    assert file(client, ivr_headers, call_id="n10", tracking_code=new_tracking_code("10")).status_code == 422


def test_an_unused_nid_is_still_a_new_identity(client, ivr_headers, db, clock):
    file(client, ivr_headers, call_id="one")
    file(client, ivr_headers, call_id="two", national_id=with_check_digit("123456789"))
    assert db.scalar(select(func.count(Caller.id))) == 2


# --- control characters (PostgreSQL cannot store a NUL; found by schemathesis on login) ----------------


def test_control_characters_answer_422_on_every_database(client, ivr_headers, db, staff, clock):
    r = client.post("/api/v1/auth/login", json={"username": "op\u0000", "password": "x"})
    assert r.status_code == 422 and "control characters" in r.json()["error"]["message"]
    r = file(client, ivr_headers, call_id="nul\u0000")
    assert r.status_code == 422, r.text
    code = file(client, ivr_headers).json()["tracking_code"]
    op = login(client, "op")
    r = client.post(f"/api/v1/staff/cases/{code}/approve", json={"note": "a\u0007b"}, headers=op)
    assert r.status_code == 422 and "control characters" in r.text
    # Line breaks and tabs are text a note may hold, not control characters to refuse.
    r = client.post(f"/api/v1/staff/cases/{code}/approve", json={"note": "a\n\tb"}, headers=op)
    assert r.status_code != 422 and "control characters" not in r.text
