"""One bad item never stops the scheduler (issue 8, fault 1): each item is its own transaction, a
failure is counted and retried, a poisoned item is quarantined and shown to administrators, and the
jobs run independently."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys

import pytest
from sqlalchemy import select, update

from backend.core.config import get_settings
from backend.core.security import hash_password
from backend.models import Case, OutboundMessage, Referral, SchedulerFailure, SchedulerJobRun, User
from backend.notifications.senders import FileSender
from backend.scheduler import jobs
from backend.scheduler.health import QUARANTINE_AFTER
from backend.scheduler.jobs import tick
from backend.services.profiles import get_profile
from backend.workflow.citizen import escalate_case
from backend.workflow.referrals import refer, screen
from tests.backend.workflow.test_referrals import AT_14, new_case, unit

PHONE = "09121234567"


def referred(db, vault, *, service="1482", to="1482-khr-mashhad", at=AT_14) -> tuple[Case, Referral]:
    profile = get_profile(service)
    case = new_case(db, vault, service=service, kind="complaint" if service == "1482" else "request")
    category = "mistreatment" if service == "1482" else "water_sewage"
    screen(db, case, category=category, urgent=True, profile=profile, actor="op", now=at)
    referral = refer(db, vault, profile, case, unit(db, to), actor="op", now=at)
    db.commit()
    return case, referral


def sms_lines(settings_env) -> list[str]:
    path = settings_env / "sms.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def run(settings_env, at: dt.datetime, holder: str = "machine-1") -> jobs.TickReport:
    return tick(get_settings(), FileSender(settings_env / "sms.log"), holder, at)


def test_an_escalated_referral_does_not_stop_the_scheduler(db, vault, settings_env, caplog):
    """The reported scenario: referred to a county, the citizen presses 9, the county's deadline
    passes. Before the fix every tick raised from then on and nothing else was done."""
    escalated, county = referred(db, vault)
    pressed_9 = AT_14 + dt.timedelta(hours=1)
    escalate_case(db, vault, get_profile("1482"), escalated, now=pressed_9)
    db.commit()
    province_due = pressed_9 + dt.timedelta(hours=3)  # the profile's rule for an urgent case
    # Late cases of another county and of another service, due before the tick.
    other, _ = referred(db, vault, to="1482-khr-neyshabur")
    water, _ = referred(db, vault, service="111", to="111-khz-abfa", at=AT_14 - dt.timedelta(days=20))

    after_county_deadline = county.due_at + dt.timedelta(minutes=30)
    assert after_county_deadline < province_due
    with caplog.at_level(logging.WARNING, logger="scheduler"):
        report = run(settings_env, after_county_deadline)
    assert report.leader and report.failed == 0 and report.failed_jobs == [] and not report.lease_lost
    assert report.returned == 2  # the other county's case and the water case
    db.expire_all()
    assert db.get(Case, other.id).status == "returned" and db.get(Case, water.id).status == "returned"
    assert db.get(Case, escalated.id).status == "escalated"
    assert db.get(Case, escalated.id).due_at == province_due  # the province's own deadline
    # Every SMS went out: three registrations, three referrals, one escalation, two returns.
    assert report.sms_sent == 9 and len(sms_lines(settings_env)) == 9
    assert {m.status for m in db.scalars(select(OutboundMessage))} == {"sent"}

    # The province's own deadline passes: the escalated case returns, on the next tick.
    report = run(settings_env, province_due + dt.timedelta(minutes=1))
    assert report.returned == 1 and report.failed == 0 and report.sms_sent == 1
    db.expire_all()
    case = db.get(Case, escalated.id)
    assert case.status == "returned" and case.current_unit.code == "1482-hq"
    assert db.scalar(select(SchedulerFailure)) is None
    runs = {r.job: r for r in db.scalars(select(SchedulerJobRun))}
    assert set(runs) == {"returns", "revocations", "digest", "reports", "sms"}
    assert all(r.last_success_at == province_due + dt.timedelta(minutes=1) for r in runs.values())


def test_a_poisoned_sms_is_quarantined_after_a_few_ticks_while_the_others_are_delivered(
    db, vault, settings_env, caplog
):
    poisoned = new_case(db, vault)
    db.commit()
    message = db.scalar(select(OutboundMessage).where(OutboundMessage.case_id == poisoned.id))
    message.to_enc = "garbage, not a Fernet token"
    db.commit()

    at = AT_14
    for attempt in range(1, QUARANTINE_AFTER + 1):
        healthy = new_case(db, vault)  # each tick has a good message to deliver too
        db.commit()
        with caplog.at_level(logging.WARNING, logger="scheduler"):
            report = run(settings_env, at)
        assert report.sms_sent == 1 and report.failed == 1, attempt
        assert report.quarantined == (1 if attempt == QUARANTINE_AFTER else 0)
        db.expire_all()
        assert (
            db.scalar(select(OutboundMessage.status).where(OutboundMessage.case_id == healthy.id)) == "sent"
        )
        at += dt.timedelta(hours=1)  # past the message's back-off
    failure = db.scalar(select(SchedulerFailure))
    assert (failure.job, failure.item, failure.tracking_code) == (
        "sms",
        str(message.id),
        poisoned.tracking_code,
    )
    assert failure.attempts == QUARANTINE_AFTER and failure.quarantined_at is not None
    assert "MissingSecret" in failure.last_error
    db.expire_all()
    assert db.get(OutboundMessage, message.id).status == "failed"

    # Quarantined: no longer tried.
    report = run(settings_env, at + dt.timedelta(hours=1))
    assert report.failed == 0
    db.expire_all()
    assert db.scalar(select(SchedulerFailure)).attempts == QUARANTINE_AFTER
    # The log names the case by its tracking code and never holds the caller's number.
    assert poisoned.tracking_code in caplog.text and PHONE not in caplog.text


def test_a_case_forced_into_an_unexpected_state_is_quarantined(db, vault, settings_env):
    odd, odd_referral = referred(db, vault)
    db.execute(update(Case).where(Case.id == odd.id).values(status="rejected"))
    db.commit()
    late = odd_referral.due_at + dt.timedelta(minutes=5)
    for attempt in range(1, QUARANTINE_AFTER + 1):
        other, _ = referred(db, vault, to="1482-khr-neyshabur", at=late - dt.timedelta(hours=4))
        report = run(settings_env, late)
        assert report.returned == 1 and report.failed == 1, attempt  # the others still go back
        db.expire_all()
        assert db.get(Case, other.id).status == "returned"
        late += dt.timedelta(minutes=1)
    failure = db.scalar(select(SchedulerFailure))
    assert (failure.job, failure.item, failure.tracking_code) == (
        "returns",
        str(odd_referral.id),
        odd.tracking_code,
    )
    assert failure.quarantined_at is not None and "rejected cannot be given the action return_late" in (
        failure.last_error
    )
    assert run(settings_env, late).failed == 0  # set aside
    db.expire_all()
    assert db.get(Referral, odd_referral.id).state == "open"  # nothing claimed, nothing half-done
    runs = {r.job: r for r in db.scalars(select(SchedulerJobRun))}
    assert runs["returns"].last_success_at == late and runs["returns"].last_failed_at is not None


def test_one_failing_job_does_not_stop_the_others(db, vault, settings_env, monkeypatch):
    db.add(
        User(
            username="idle",
            full_name="idle",
            role="manager",
            unit=unit(db, "1482-khr"),
            password_hash=hash_password("a-good-password-1482"),
            last_inbox_at=AT_14 - dt.timedelta(days=3),
        )
    )
    new_case(db, vault)
    db.commit()

    def broken(*_args, **_kwargs):
        raise RuntimeError("the returns query failed")

    monkeypatch.setattr(jobs, "late_referrals", broken)
    report = run(settings_env, AT_14)
    assert report.failed_jobs == ["returns"] and report.revoked == 1 and report.sms_sent == 1
    db.expire_all()
    assert db.scalar(select(User).where(User.username == "idle")).password_revoked_at == AT_14
    runs = {r.job: r for r in db.scalars(select(SchedulerJobRun))}
    assert runs["returns"].last_success_at is None and "returns query failed" in runs["returns"].last_error
    assert runs["sms"].last_success_at == AT_14 and runs["revocations"].last_success_at == AT_14


def poison_one_sms(db, vault, settings_env) -> Case:
    case = new_case(db, vault)
    db.commit()
    db.execute(update(OutboundMessage).where(OutboundMessage.case_id == case.id).values(to_enc="garbage"))
    db.commit()
    at = AT_14
    for _ in range(QUARANTINE_AFTER):
        run(settings_env, at)
        at += dt.timedelta(hours=1)
    assert run(settings_env, at).failed == 0  # quarantined: the jobs run clean again
    return case


def test_scheduler_status_command_shows_the_jobs_and_the_quarantined_items(db, vault, settings_env):
    case = poison_one_sms(db, vault, settings_env)
    new_case(db, vault)  # one message still waiting
    db.commit()
    r = subprocess.run(
        [sys.executable, "-m", "backend.cli", "scheduler", "--status"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for job in ("returns", "revocations", "digest", "sms"):
        assert job in out
    last = (AT_14 + dt.timedelta(hours=QUARANTINE_AFTER)).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert last in out  # the last successful tick of the jobs
    assert "quarantined items: 1" in out and f"case {case.tracking_code}" in out
    assert f"attempts {QUARANTINE_AFTER}" in out and "MissingSecret" in out
    assert "sms outbox: 1 pending, 1 failed" in out
    assert PHONE not in out


@pytest.fixture
def tokens(client, db) -> dict[str, dict[str, str]]:
    for username, role in [("root", "admin"), ("boss", "manager"), ("op", "operator")]:
        db.add(
            User(
                username=username,
                full_name=username,
                role=role,
                unit=None if role == "admin" else unit(db, "1482-hq"),
                password_hash=hash_password("a-good-password-1482"),
                last_inbox_at=dt.datetime.now(dt.UTC),
            )
        )
    db.commit()
    out = {}
    for username in ("root", "boss", "op"):
        r = client.post("/api/v1/auth/login", json={"username": username, "password": "a-good-password-1482"})
        assert r.status_code == 200, r.text
        out[username] = {"Authorization": f"Bearer {r.json()['token']}"}
    return out


def test_healthz_gives_the_scheduler_detail_to_administrators_only(client, db, vault, settings_env, tokens):
    case = poison_one_sms(db, vault, settings_env)
    assert client.get("/healthz").json() == {"status": "ok"}
    for who in ("boss", "op"):
        assert client.get("/healthz", headers=tokens[who]).json() == {"status": "ok"}
    assert client.get("/healthz", headers={"Authorization": "Bearer forged.token"}).json() == {"status": "ok"}

    r = client.get("/healthz", headers=tokens["root"])
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    detail = body["scheduler"]
    assert [j["job"] for j in detail["jobs"]] == ["returns", "revocations", "digest", "reports", "sms"]
    assert all(j["last_success_at"] for j in detail["jobs"])
    [item] = detail["quarantined"]
    assert item["job"] == "sms" and item["tracking_code"] == case.tracking_code
    assert item["attempts"] == QUARANTINE_AFTER and "MissingSecret" in item["last_error"]
    assert detail["sms_outbox"] == {"pending": 0, "failed": 1}
    assert detail["lease_holder"] == "machine-1"
    assert PHONE not in r.text
    # The documented answers: the public model and the administrator's.
    schema = client.get("/openapi.json").json()
    ok = schema["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/AdminHealth"} in ok["anyOf"]


def test_the_scheduler_refuses_an_outdated_schema(settings_env, tmp_path, monkeypatch):
    """Without the tables it keeps its health in, every job would fail: it says what to run instead."""
    from alembic import command

    from backend.core.db import make_engine
    from backend.core.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        command.downgrade(cfg, "-1")
    engine.dispose()
    monkeypatch.setenv("DIDEHBAN_DATABASE_URL", url)
    for flag in ("--once", "--status"):
        r = subprocess.run(
            [sys.executable, "-m", "backend.cli", "scheduler", flag],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and "didehban db upgrade" in r.stdout, flag
