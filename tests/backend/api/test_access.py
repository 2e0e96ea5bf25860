"""Who may do what with a tracking code or a staff account (issue 8, faults 3, 10, 11, 13, 15)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets

import pytest
from sqlalchemy import select

from backend.models import AccountEvent, Case, Notice, StaffSession, User
from tests.backend.api.test_cases import NID, PHONE, new_case
from tests.backend.api.test_staff import PASSWORD, START, login, referred_case
from tests.conftest import clear_caches

STRANGER = "09350000000"


def limits(monkeypatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"DIDEHBAN_{name.upper()}", value)
    clear_caches()


# --- fault 3: escalating someone else's case ---------------------------------------------------


def test_escalation_needs_the_same_proof_as_hearing_the_answer(client, ivr_headers, db, staff, clock):
    code = referred_case(client, ivr_headers, urgent=True)
    url = f"/api/v1/cases/{code}/escalations"
    for proof in ({}, {"caller_number": STRANGER}, {"caller_number": STRANGER, "national_id": "0000000000"}):
        r = client.post(url, json={**proof, "call_id": "c1"}, headers=ivr_headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_owner", (proof, r.text)
    db.expire_all()
    case = db.scalar(select(Case))
    assert case.status == "referred" and case.escalation_level == 0
    # The filer calling from another phone proves it with the national ID.
    r = client.post(url, json={"caller_number": STRANGER, "national_id": NID}, headers=ivr_headers)
    assert r.status_code == 201 and r.json()["status"] == "escalated"


# --- fault 11: what a stranger hears -----------------------------------------------------------


def test_a_stranger_hears_stage_and_dates_only(client, ivr_headers, db, staff, clock):
    code = referred_case(client, ivr_headers, urgent=True)
    stranger = client.get(f"/api/v1/cases/{code}", params={"caller_number": STRANGER}, headers=ivr_headers)
    assert stranger.status_code == 200
    seen = stranger.json()
    assert seen["stage"] and seen["status"] == "referred" and seen["created"]["jalali"] and seen["due"]
    for hidden in ("service", "kind", "urgent", "unit", "unit_code", "incomplete", "answer", "rated"):
        assert seen[hidden] is None, hidden
    assert seen["history"] and all(
        h["at"] and h["action"] is None and h["unit"] is None for h in seen["history"]
    )
    for word in ("complaint", "1482-khr", "بهزیستی", "ستاد"):
        assert word not in stranger.text
    owner = client.get(f"/api/v1/cases/{code}", params={"caller_number": PHONE}, headers=ivr_headers).json()
    assert (
        owner["kind"] == "complaint" and owner["urgent"] is True and owner["unit_code"] == "1482-khr-mashhad"
    )
    assert owner["history"][-1]["action"] == "refer"


# --- fault 13: passwords and sessions ----------------------------------------------------------


def test_passwords_are_argon2id_and_old_scrypt_hashes_are_upgraded_at_login(client, db, staff, monkeypatch):
    user = db.scalar(select(User).where(User.username == "op"))
    assert user.password_hash.startswith("$argon2id$")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1)
    user.password_hash = f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    db.commit()
    bad = client.post("/api/v1/auth/login", json={"username": "op", "password": "not-it"})
    assert bad.status_code == 401
    login(client, "op")  # the old hash still lets its owner in once ...
    db.expire_all()
    assert db.scalar(select(User).where(User.username == "op")).password_hash.startswith("$argon2id$")
    login(client, "op")  # ... and the new one from then on
    # A higher cost set by the administrator reaches each hash at its owner's next login.
    limits(monkeypatch, password_time_cost="2")
    login(client, "op")
    db.expire_all()
    assert ",t=2," in db.scalar(select(User).where(User.username == "op")).password_hash


def test_a_password_reset_ends_the_sessions_already_issued(client, db, staff, clock):
    stolen = login(client, "mashhad")
    assert client.get("/api/v1/staff/inbox", headers=stolen).status_code == 200
    r = client.post(
        "/api/v1/staff/users/mashhad/password",
        json={"password": "a-brand-new-password"},
        headers=login(client, "admin"),
    )
    assert r.status_code == 200
    r = client.get("/api/v1/staff/inbox", headers=stolen)
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_ended"
    fresh = client.post(
        "/api/v1/auth/login", json={"username": "mashhad", "password": "a-brand-new-password"}
    )
    headers = {"Authorization": f"Bearer {fresh.json()['token']}"}
    assert client.get("/api/v1/staff/inbox", headers=headers).status_code == 200


def test_logout_ends_this_session_or_every_session(client, db, staff, clock):
    desk, laptop, phone = (login(client, "khorasan") for _ in range(3))
    r = client.post("/api/v1/auth/logout", headers=desk)
    assert r.status_code == 200 and r.json() == {"ended": 1}
    assert client.get("/api/v1/staff/inbox", headers=desk).status_code == 401
    assert client.post("/api/v1/auth/logout", headers=desk).status_code == 401  # already ended
    assert client.get("/api/v1/staff/inbox", headers=laptop).status_code == 200
    r = client.post("/api/v1/auth/logout", json={"everywhere": True}, headers=laptop)
    assert r.json() == {"ended": 2}
    for headers in (laptop, phone):
        assert client.get("/api/v1/staff/inbox", headers=headers).status_code == 401
    assert client.post("/api/v1/auth/logout").status_code == 401
    reasons = [s.end_reason for s in db.scalars(select(StaffSession).order_by(StaffSession.id))]
    assert reasons == ["logout", "logout_all", "logout_all"]


def test_tokens_without_a_session_or_with_junk_are_refused(client, db, staff):
    import hmac
    import json

    body = base64.urlsafe_b64encode(json.dumps({"uid": 1, "exp": 4e9}).encode()).decode()
    old_style = f"{body}.{hmac.new(b'test-session-key', body.encode(), hashlib.sha256).hexdigest()}"
    for token in (old_style.encode(), "x.ü".encode("latin-1"), b"..", b"a" * 300):
        r = client.get("/api/v1/staff/inbox", headers={"Authorization": b"Bearer " + token})
        assert r.status_code == 401, token


# --- fault 15 (notices): marked read -----------------------------------------------------------


def test_notices_are_marked_read_by_their_owner_only(client, db, staff, clock):
    users = {u.username: u for u in db.scalars(select(User))}
    for n, who in enumerate(["mashhad", "mashhad", "mashhad", "khorasan"]):
        db.add(
            Notice(
                user_id=users[who].id, kind="warning", text=f"هشدار {n}", dedupe_key=f"t{n}", created_at=START
            )
        )
    db.commit()
    mashhad, khorasan = login(client, "mashhad"), login(client, "khorasan")
    inbox = client.get("/api/v1/staff/inbox", headers=mashhad).json()
    assert inbox["unread_notices"] == 3 and all(n["read_at"] is None for n in inbox["notices"])
    first, *_ = (n["id"] for n in inbox["notices"])
    theirs = db.scalar(select(Notice.id).where(Notice.user_id == users["khorasan"].id))
    for notice_id in (theirs, 999_999, 2**40):
        r = client.post(f"/api/v1/staff/notices/{notice_id}/read", headers=mashhad)
        assert r.status_code == 404 and r.json()["error"]["code"] == "notice_not_found"
    r = client.post(f"/api/v1/staff/notices/{first}/read", headers=mashhad)
    assert r.status_code == 200 and r.json()["read_at"].startswith(START.isoformat()[:16])
    inbox = client.get("/api/v1/staff/inbox", headers=mashhad).json()
    assert inbox["unread_notices"] == 2
    assert [n["read_at"] is not None for n in inbox["notices"]] == [True, False, False]
    assert client.post("/api/v1/staff/notices/read-all", headers=mashhad).json() == {"marked": 2}
    assert client.get("/api/v1/staff/inbox", headers=mashhad).json()["unread_notices"] == 0
    assert client.get("/api/v1/staff/inbox", headers=khorasan).json()["unread_notices"] == 1
    # A week later the read ones leave the inbox; the rows stay.
    clock.now = START + dt.timedelta(days=8)
    assert client.get("/api/v1/staff/inbox", headers=login(client, "mashhad")).json()["notices"] == []


# --- fault 10: throttling ----------------------------------------------------------------------


def assert_throttled(r, longest: int = 60) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_requests" and r.json()["error"]["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= longest


def test_status_look_ups_are_limited_per_calling_number(client, ivr_headers, db, monkeypatch):
    limits(monkeypatch, rate_limit_per_caller="3/minute")
    code = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers).json()["tracking_code"]
    from domain.tracking_code import new_tracking_code

    guesses = [code, new_tracking_code("10"), new_tracking_code("10")]  # a 404 counts as a look-up too
    for guess in guesses:
        r = client.get(f"/api/v1/cases/{guess}", params={"caller_number": STRANGER}, headers=ivr_headers)
        assert r.status_code in (200, 404)
    # The same number written another way is the same caller.
    assert_throttled(
        client.get(f"/api/v1/cases/{code}", params={"caller_number": "+989350000000"}, headers=ivr_headers)
    )
    r = client.post(
        f"/api/v1/cases/{code}/escalations", json={"caller_number": STRANGER}, headers=ivr_headers
    )
    assert_throttled(r)
    # Other callers reach the same IVR address and are not held up.
    r = client.get(f"/api/v1/cases/{code}", params={"caller_number": PHONE}, headers=ivr_headers)
    assert r.status_code == 200


def test_status_look_ups_are_limited_per_address(client, ivr_headers, db, monkeypatch):
    limits(monkeypatch, rate_limit_per_address="4/minute")
    code = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers).json()["tracking_code"]
    for n in range(4):
        r = client.get(
            f"/api/v1/cases/{code}", params={"caller_number": f"0935000000{n}"}, headers=ivr_headers
        )
        assert r.status_code == 200
    assert_throttled(client.get(f"/api/v1/cases/{code}", headers=ivr_headers))


def test_failed_logins_back_off_per_username_and_are_recorded(client, db, staff):
    for _ in range(5):
        r = client.post("/api/v1/auth/login", json={"username": "mashhad", "password": "guess"})
        assert r.status_code == 401
    # Now even the right password waits: the password is not checked during the back-off.
    right = client.post("/api/v1/auth/login", json={"username": "mashhad", "password": PASSWORD})
    assert_throttled(right, longest=15 * 60)
    variant = client.post("/api/v1/auth/login", json={"username": " Mashhad", "password": PASSWORD})
    assert_throttled(variant, longest=15 * 60)
    user = db.scalar(select(User).where(User.username == "mashhad"))
    events = db.scalars(select(AccountEvent).where(AccountEvent.user_id == user.id)).all()
    assert [e.action for e in events] == ["login_failed"] * 5 and all(e.actor == "mashhad" for e in events)
    # Another user from the same address is not locked out by someone else's failures.
    login(client, "khorasan")


def test_an_unknown_username_is_throttled_and_hashed_like_a_known_one(client, db, staff, monkeypatch):
    from argon2 import PasswordHasher

    calls = []
    real_verify = PasswordHasher.verify

    def counting_verify(self, hash, password):
        calls.append(hash)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    for username in ("mashhad", "nobody-by-this-name"):
        calls.clear()
        r = client.post("/api/v1/auth/login", json={"username": username, "password": "guess"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
        assert len(calls) == 1, username  # the same argon2 work either way
    for _ in range(4):
        client.post("/api/v1/auth/login", json={"username": "nobody-by-this-name", "password": "guess"})
    r = client.post("/api/v1/auth/login", json={"username": "nobody-by-this-name", "password": "x"})
    assert_throttled(r, longest=15 * 60)
    assert db.scalar(select(AccountEvent).where(AccountEvent.note.is_(None))) is None


def test_failed_logins_are_limited_per_address(client, db, staff, monkeypatch):
    limits(monkeypatch, login_failures_per_address="3/15minutes")
    for name in ("a1", "a2", "a3"):
        assert client.post("/api/v1/auth/login", json={"username": name, "password": "x"}).status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": "op", "password": PASSWORD})
    assert_throttled(r, longest=15 * 60)


def test_login_attempts_are_limited_per_address(client, db, staff, monkeypatch):
    limits(monkeypatch, login_attempts_per_address="3/minute")
    for _ in range(3):
        login(client, "op")
    assert_throttled(client.post("/api/v1/auth/login", json={"username": "op", "password": PASSWORD}))


def test_a_bad_limit_setting_fails_at_start(monkeypatch, settings_env):
    from backend.core.config import Settings

    monkeypatch.setenv("DIDEHBAN_RATE_LIMIT_PER_CALLER", "ten a minute")
    with pytest.raises(ValueError):
        Settings()
