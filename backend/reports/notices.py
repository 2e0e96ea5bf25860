"""The weekly and monthly reports in each unit head's inbox (R19, R22): once the Saturday-to-Friday week
or the Jalali month is over, every active manager gets its figures for their unit's subtree, once (the
notice's key names the period and the unit). Run by the scheduler's lease holder."""

from __future__ import annotations

import datetime as dt

import jdatetime
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Notice, Unit, User
from backend.reports.figures import ReportScope, headline, subtree_ids
from backend.workflow.staff import notify
from domain.digits import to_persian_digits
from domain.report_periods import Period, jalali_day_text, jalali_month, jalali_week, local_date

KIND = "report"


def finished_periods(now: dt.datetime, tz: str = "Asia/Tehran") -> list[Period]:
    """The last whole week and the last whole month before `now` (local time)."""
    today = local_date(now, tz)
    j = jdatetime.date.fromgregorian(date=today)
    year, month = (j.year, j.month - 1) if j.month > 1 else (j.year - 1, 12)
    return [jalali_week(today - dt.timedelta(days=7)), jalali_month(year, month)]


def notice_text(period: Period, unit: Unit, figures: dict) -> str:
    name = "هفتگی" if period.kind == "week" else "ماهانه"
    share = figures["on_time_share"]
    median = figures["median_answer_seconds"]
    mean = figures["satisfaction_mean"]
    link = f"/console/reports?period={period.kind}&date_from={jalali_day_text(period.first)}"
    return (
        to_persian_digits(
            f"گزارش {name} {unit.name_fa} ({period.label_fa}): {figures['total']} پرونده، "
            f"{figures['answered']} پاسخ داده شده، {figures['closed']} بسته شده، "
            f"{figures['returned_late']} بازگشته به دلیل تأخیر؛ پاسخ در مهلت: "
            + (f"{share * 100:.0f}٪" if share is not None else "—")
            + "؛ میانه زمان پاسخ: "
            + (f"{median / 3600:.1f} ساعت" if median is not None else "—")
            + "؛ میانگین رضایت: "
            + (f"{mean} از ۵" if mean is not None else "—")
            + "."
        )
        + f" {link}"
    )


def periodic_reports(session: Session, now: dt.datetime) -> int:
    """Write the finished week's and month's report notices not written yet. Returns how many."""
    managers = session.scalars(
        select(User).where(User.role == "manager", User.is_active.is_(True), User.unit_id.is_not(None))
    ).all()
    made = 0
    for period in finished_periods(now):
        for manager in managers:
            key = f"{KIND}:{period.key}:{manager.unit_id}"
            if (
                session.scalar(select(Notice.id).where(Notice.dedupe_key == f"{key}:{manager.id}"))
                is not None
            ):
                continue
            unit = manager.unit
            scope = ReportScope(service=unit.service, unit_ids=frozenset(subtree_ids(session, unit.id)))
            figures = headline(session, period, scope)
            made += notify(session, [manager], KIND, notice_text(period, unit, figures), key, now=now)
    return made
