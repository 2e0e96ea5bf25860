"""The scheduler writes the finished week's and month's reports to each unit head's inbox, once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from backend.core.config import get_settings
from backend.models import Notice, User
from backend.notifications.senders import FileSender
from backend.scheduler.jobs import tick
from tests.backend.reports.builders import HOUR, make_case, tehran


def test_weekly_and_monthly_reports_reach_each_unit_head_once(db, staff, settings_env):
    start = tehran(2025, 9, 23, 9, 0)  # Mehr 1404
    for i in range(3):
        make_case(db, start + i * HOUR, unit_code="1482-khr-mashhad-c01", answered_after=2 * HOUR)
    make_case(db, start, unit_code="1482-khr-neyshabur")
    db.commit()
    sender = FileSender(settings_env / "sms.log")
    now = tehran(2025, 10, 25, 9, 0)  # Saturday 1404/08/03: Mehr and the week to Friday 08/02 are over
    first = tick(get_settings(), sender, "machine-1", now)
    assert first.leader and first.reports > 0
    again = tick(get_settings(), sender, "machine-2", now + dt.timedelta(seconds=1))
    assert not again.leader
    later = tick(get_settings(), sender, "machine-1", now + dt.timedelta(seconds=15))
    assert later.reports == 0  # once each
    mashhad = db.scalar(select(User).where(User.username == "mashhad"))
    notices = db.scalars(select(Notice).where(Notice.user_id == mashhad.id, Notice.kind == "report")).all()
    keys = sorted(n.dedupe_key.split(":")[1] + ":" + n.dedupe_key.split(":")[2] for n in notices)
    assert keys == ["month:1404-07", "week:1404-07-26"]
    monthly = next(n for n in notices if "month" in n.dedupe_key)
    # Mashhad's subtree only: its centre's three cases, not Neyshabur's.
    assert "گزارش ماهانه" in monthly.text and "مهر ۱۴۰۴" in monthly.text and ": ۳ پرونده" in monthly.text
    managers = db.scalars(select(User).where(User.role == "manager")).all()
    assert len(db.scalars(select(Notice).where(Notice.kind == "report")).all()) == 2 * len(managers)
