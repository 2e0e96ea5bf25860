"""One scheduler acts at a time; a restart across a deadline still returns the case once."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

from sqlalchemy import select

from backend.core.config import get_settings
from backend.models import Case, OutboundMessage, Unit
from backend.notifications.senders import FileSender
from backend.scheduler.jobs import tick
from backend.scheduler.lease import TTL, acquire, release
from backend.services.profiles import get_profile
from backend.workflow.referrals import refer, screen
from tests.backend.workflow.test_referrals import AT_14, new_case


def test_only_one_scheduler_holds_the_lease(db):
    now = AT_14
    assert acquire(db, "a", now)
    assert not acquire(db, "b", now + dt.timedelta(seconds=10))
    assert acquire(db, "a", now + dt.timedelta(seconds=20))  # renewed
    # a dies: after its lease runs out, b takes over.
    assert not acquire(db, "b", now + dt.timedelta(seconds=20) + TTL - dt.timedelta(seconds=1))
    assert acquire(db, "b", now + dt.timedelta(seconds=21) + TTL)
    release(db, "b")
    assert acquire(db, "a", now + dt.timedelta(seconds=22) + TTL)


def test_tick_returns_late_cases_and_sends_sms_once_across_two_schedulers(db, vault, settings_env):
    profile = get_profile("1482")
    case = new_case(db, vault)
    screen(db, case, category="mistreatment", urgent=True, profile=profile, actor="op", now=AT_14)
    county = db.scalar(select(Unit).where(Unit.code == "1482-khr-mashhad"))
    referral = refer(db, vault, profile, case, county, actor="op", now=AT_14)
    db.commit()
    sender = FileSender(settings_env / "sms.log")
    settings = get_settings()
    # Both machines' schedulers wake up after the deadline, the first one ten hours late.
    late = referral.due_at + dt.timedelta(hours=10)
    first = tick(settings, sender, "machine-1", late)
    second = tick(settings, sender, "machine-2", late + dt.timedelta(seconds=1))
    assert first.leader and first.returned == 1 and first.sms_sent == 3  # registered, referred, returned
    assert not second.leader
    again = tick(settings, sender, "machine-1", late + dt.timedelta(seconds=15))
    assert again.leader and again.returned == 0 and again.sms_sent == 0
    db.expire_all()
    assert db.get(Case, case.id).status == "returned"
    assert {m.status for m in db.scalars(select(OutboundMessage))} == {"sent"}
    lines = (settings_env / "sms.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all("09121234567" in line for line in lines)


def test_scheduler_command_runs_a_tick(db, settings_env):
    r = subprocess.run(
        [sys.executable, "-m", "backend.cli", "scheduler", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr


def test_scheduler_refuses_an_empty_database(settings_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DIDEHBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    r = subprocess.run(
        [sys.executable, "-m", "backend.cli", "scheduler", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "didehban db upgrade" in r.stdout
