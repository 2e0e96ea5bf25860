"""The whole path through the staff API, with access rules, late return, revocation (issue 5)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from backend.api.deps import get_now
from backend.core.security import hash_password
from backend.models import AccountEvent, Case, Notice, OutboundMessage, Unit, User
from tests.backend.api.test_cases import NID, PHONE, new_case

PASSWORD = "a-good-password-1482"
START = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC)  # Sunday 09:30 in Tehran


@pytest.fixture
def clock(client):
    """Moves the API's clock: clock.now = ..."""

    class Clock:
        now = START

    clock = Clock()
    client.app.dependency_overrides[get_now] = lambda: clock.now
    yield clock
    client.app.dependency_overrides.clear()


@pytest.fixture
def staff(db):
    units = {u.code: u for u in db.scalars(select(Unit))}
    for username, role, unit in [
        ("op", "operator", "1482-hq"),
        ("khorasan", "manager", "1482-khr"),
        ("mashhad", "manager", "1482-khr-mashhad"),
        ("neyshabur", "manager", "1482-khr-neyshabur"),
        ("omid", "manager", "1482-khr-mashhad-c01"),
        ("admin", "admin", None),
    ]:
        db.add(
            User(
                username=username,
                full_name=username,
                role=role,
                unit=units.get(unit),
                password_hash=hash_password(PASSWORD),
                last_inbox_at=START,
                created_at=START,
            )
        )
    db.commit()


def referred_case(client, ivr_headers, *, urgent: bool, unit: str = "1482-khr-mashhad") -> str:
    """A case filed by phone, screened by the operator and referred to `unit`."""
    code = client.post(
        "/api/v1/cases", json=new_case(received_at=START.isoformat()), headers=ivr_headers
    ).json()["tracking_code"]
    op = login(client, "op")
    r = client.post(
        f"/api/v1/staff/cases/{code}/screen", json={"category": "other", "urgent": urgent}, headers=op
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/staff/cases/{code}/referrals", json={"unit": unit}, headers=op)
    assert r.status_code == 200, r.text
    return code


def login(client, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_a_case_travels_down_and_its_answer_up_to_closure(
    client, ivr_headers, db, staff, clock, vault, settings_env
):
    code = client.post(
        "/api/v1/cases", json=new_case(urgent=False, received_at=START.isoformat()), headers=ivr_headers
    ).json()["tracking_code"]
    op, khr, mhd, omid = (login(client, u) for u in ("op", "khorasan", "mashhad", "omid"))
    steps = [
        (op, "screen", {"category": "mistreatment", "urgent": False}, "screened"),
        (op, "referrals", {"unit": "1482-khr"}, "referred"),
        (khr, "referrals", {"unit": "1482-khr-mashhad"}, "referred"),
        (mhd, "referrals", {"unit": "1482-khr-mashhad-c01", "note": "بازرسی فوری"}, "referred"),
        (omid, "answer", {"text": "مرکز بازرسی شد و کمبود غذا برطرف شد."}, "answered"),
        (mhd, "approve", {}, "approved"),
        (khr, "approve", {}, "approved"),
        (op, "approve", {"note": "پاسخ نهایی تأیید شد"}, "closed"),
    ]
    for headers, act, body, status in steps:
        clock.now += dt.timedelta(minutes=30)
        r = client.post(f"/api/v1/staff/cases/{code}/{act}", json=body, headers=headers)
        assert r.status_code == 200, (act, r.text)
        assert r.json()["status"] == status
        assert NID not in r.text and PHONE not in r.text  # never the identity (R9)
    view = r.json()
    assert [h["action"] for h in view["history"]] == [
        "register",
        "screen",
        "refer",
        "refer",
        "refer",
        "answer",
        "approve",
        "approve",
        "close",
    ]
    assert all(h["actor"] for h in view["history"])
    # The caller was told at every stage (R16) and hears the answer (R7).
    stages = {m.dedupe_key.split(":")[2].split("-")[0] for m in db.scalars(select(OutboundMessage))}
    assert {"registered", "referred", "answered", "closed"} <= stages
    status = client.get(f"/api/v1/cases/{code}", params={"caller_number": PHONE}, headers=ivr_headers).json()
    assert status["status"] == "closed" and "کمبود غذا" in status["answer"]
    # The scheduler delivers them: the caller's phone receives one message per stage, each once.
    import json

    from backend.core.config import get_settings
    from backend.notifications.senders import FileSender
    from backend.scheduler.jobs import tick

    phone = settings_env / "phone.log"
    queued = len(db.scalars(select(OutboundMessage)).all())
    assert tick(get_settings(), FileSender(phone), "s1", clock.now).sms_sent == queued
    assert tick(get_settings(), FileSender(phone), "s1", clock.now + dt.timedelta(minutes=1)).sms_sent == 0
    received = [json.loads(line) for line in phone.read_text(encoding="utf-8").splitlines()]
    # registered, referred three times, answered, closed
    assert len(received) == queued == 6 and {m["to"] for m in received} == {PHONE}
    assert any(code in m["text"] and "بسته شد" in m["text"] for m in received)


def test_a_county_never_sees_another_countys_cases(client, ivr_headers, db, staff, clock):
    code = referred_case(client, ivr_headers, urgent=True)
    assert client.get(f"/api/v1/staff/cases/{code}", headers=login(client, "neyshabur")).status_code == 404
    assert client.get(f"/api/v1/staff/cases/{code}", headers=login(client, "khorasan")).status_code == 200
    # The province sees it but only the holding county may act on it.
    r = client.post(
        f"/api/v1/staff/cases/{code}/answer", json={"text": "x"}, headers=login(client, "khorasan")
    )
    assert r.status_code == 403
    inbox = client.get("/api/v1/staff/inbox", headers=login(client, "mashhad")).json()
    assert [c["tracking_code"] for c in inbox["cases"]] == [code]
    assert 0 < inbox["cases"][0]["seconds_left"] <= 3 * 3600  # urgent: three hours


def test_late_case_leaves_the_units_reach_and_warns(client, ivr_headers, db, staff, clock, settings_env):
    from backend.core.config import get_settings
    from backend.notifications.senders import FileSender
    from backend.scheduler.jobs import tick

    code = referred_case(client, ivr_headers, urgent=True)
    op = login(client, "op")
    report = tick(get_settings(), FileSender(settings_env / "sms.log"), "s1", START + dt.timedelta(hours=4))
    assert report.returned == 1
    clock.now = START + dt.timedelta(hours=4)
    mashhad = login(client, "mashhad")
    assert client.get(f"/api/v1/staff/cases/{code}", headers=mashhad).status_code == 404
    inbox = client.get("/api/v1/staff/inbox", headers=mashhad).json()
    assert inbox["cases"] == [] and any("هشدار" in n["text"] for n in inbox["notices"])
    province_notices = client.get("/api/v1/staff/inbox", headers=login(client, "khorasan")).json()["notices"]
    assert any(code in n["text"] for n in province_notices)  # the level above is warned too
    back = client.get(f"/api/v1/staff/cases/{code}", headers=op).json()
    assert back["status"] == "returned" and back["unit"] == "1482-hq"
    scores = client.get("/api/v1/staff/scores", headers=login(client, "khorasan")).json()
    assert {"unit": "1482-khr-mashhad", "score": 95.0} in scores["units"]


def test_inactive_manager_loses_password_and_only_the_admin_restores_it(
    client, db, staff, clock, settings_env
):
    from backend.core.config import get_settings
    from backend.notifications.senders import FileSender
    from backend.scheduler.jobs import tick

    # Everyone opened the inbox at START; the Mashhad manager opens it again a day later.
    clock.now = START + dt.timedelta(hours=24)
    client.get("/api/v1/staff/inbox", headers=login(client, "mashhad"))
    tick(get_settings(), FileSender(settings_env / "sms.log"), "s1", START + dt.timedelta(hours=49))
    clock.now = START + dt.timedelta(hours=49)
    r = client.post("/api/v1/auth/login", json={"username": "neyshabur", "password": PASSWORD})
    assert r.status_code == 401 and r.json()["error"]["code"] == "password_revoked"
    assert (
        client.post("/api/v1/auth/login", json={"username": "mashhad", "password": PASSWORD}).status_code
        == 200
    )
    # A manager cannot issue it; the administrator can.
    new = {"password": "a-brand-new-password"}
    assert (
        client.post(
            "/api/v1/staff/users/neyshabur/password", json=new, headers=login(client, "mashhad")
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/staff/users/neyshabur/password", json=new, headers=login(client, "admin")
        ).status_code
        == 200
    )
    r = client.post("/api/v1/auth/login", json={"username": "neyshabur", "password": new["password"]})
    assert r.status_code == 200
    user = db.scalar(select(User).where(User.username == "neyshabur"))
    actions = [e.action for e in db.scalars(select(AccountEvent).where(AccountEvent.user_id == user.id))]
    assert actions == ["password_revoked", "login_refused", "password_reset"]


def test_escalation_notifies_the_level_above(client, ivr_headers, db, staff, clock):
    code = referred_case(client, ivr_headers, urgent=True)
    r = client.post(f"/api/v1/cases/{code}/escalations", json={"caller_number": PHONE}, headers=ivr_headers)
    assert r.status_code == 201 and r.json()["status"] == "escalated"
    assert db.scalar(select(Case)).current_unit.code == "1482-khr"
    khorasan = db.scalar(select(User).where(User.username == "khorasan"))
    assert db.scalar(select(Notice).where(Notice.user_id == khorasan.id, Notice.kind == "escalation"))


def test_morning_digest_once_a_day(client, ivr_headers, db, staff, clock):
    from backend.services.profiles import get_profiles
    from backend.workflow.staff import morning_digest

    referred_case(client, ivr_headers, urgent=False)
    early = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)  # 06:30 Tehran: not yet
    assert morning_digest(db, get_profiles(), early) == 0
    morning = dt.datetime(2026, 11, 23, 4, 0, tzinfo=dt.UTC)  # 07:30 Tehran
    assert morning_digest(db, get_profiles(), morning) == 1
    assert morning_digest(db, get_profiles(), morning + dt.timedelta(hours=2)) == 0
    db.commit()
    digest = db.scalar(select(Notice).where(Notice.kind == "digest"))
    assert "۱ پرونده در انتظار رسیدگی" in digest.text and not any(ch in "0123456789" for ch in digest.text)


def test_bad_login_and_no_token(client, staff):
    r = client.post("/api/v1/auth/login", json={"username": "op", "password": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
    assert client.get("/api/v1/staff/inbox").status_code == 401
    assert (
        client.get("/api/v1/staff/inbox", headers={"Authorization": "Bearer forged.sig"}).status_code == 401
    )


def test_an_sms_reply_rates_the_closed_case(client, ivr_headers, db, staff, clock, monkeypatch):
    from tests.conftest import clear_caches

    monkeypatch.setenv("DIDEHBAN_SMS_INBOUND_SECRET", "gw-secret")
    clear_caches()
    code = client.post(
        "/api/v1/cases", json=new_case(received_at=START.isoformat()), headers=ivr_headers
    ).json()["tracking_code"]
    op = login(client, "op")
    client.post(f"/api/v1/staff/cases/{code}/screen", json={"category": "other", "urgent": False}, headers=op)
    client.post(f"/api/v1/staff/cases/{code}/answer", json={"text": "رسیدگی شد"}, headers=op)
    assert (
        client.post(f"/api/v1/staff/cases/{code}/approve", json={}, headers=op).json()["status"] == "closed"
    )
    gateway = {"Authorization": "Bearer gw-secret"}
    assert client.post("/api/v1/sms/inbound", json={"from": PHONE, "text": "4"}).status_code == 401
    r = client.post("/api/v1/sms/inbound", json={"from": "+989121234567", "text": "مرسی"}, headers=gateway)
    assert r.json()["recorded"] is False
    r = client.post("/api/v1/sms/inbound", json={"from": "+989121234567", "text": " ۴ "}, headers=gateway)
    assert r.json() == {"recorded": True, "tracking_code": code, "rating": 4}
    assert (
        client.post("/api/v1/sms/inbound", json={"from": PHONE, "text": "1"}, headers=gateway).json()[
            "recorded"
        ]
        is False
    )  # rated once
    scores = client.get("/api/v1/staff/scores", headers=op).json()
    assert scores["satisfaction"] == [{"service": "1482", "average": 4.0, "ratings": 1}]
    units = client.get("/api/v1/staff/units", headers=login(client, "khorasan")).json()
    assert {u["code"] for u in units} == {
        "1482-khr",
        "1482-khr-mashhad",
        "1482-khr-mashhad-c01",
        "1482-khr-mashhad-c02",
        "1482-khr-mashhad-c03",
        "1482-khr-neyshabur",
        "1482-khr-neyshabur-c01",
        "1482-khr-neyshabur-c02",
        "1482-khr-sabzevar",
        "1482-khr-sabzevar-c01",
        "1482-khr-torbat",
        "1482-khr-torbat-c01",
    }
