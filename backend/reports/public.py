"""The public transparency page (R20): per service and Jalali month, the volume by kind, category and
channel, how cases were handled, the on-time share, satisfaction, the last 12 months, and the
administrator's "weaknesses and actions" text. No personal data, no unit below the service, and no
figure below 5 (it reads "fewer than 5"), so nobody's case can be singled out."""

from __future__ import annotations

import csv
import io
from typing import Any

import jdatetime
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from backend.models import Case, PublicNote
from backend.reports.figures import (
    HANDLING_FA,
    ReportScope,
    _rows,
    _where,
    labels_for,
    period_view,
    tallies,
)
from domain.report_periods import Period, jalali_month

# Below this a figure is not shown (k-anonymity of a small unit's or a rare category's cases).
SMALLEST_SHOWN = 5
FEWER_FA = "کمتر از ۵"
TREND_MONTHS = 12
# The counts the page gives (one statement with the totals, see figures.tallies).
PUBLIC_SETS = (("kind",), ("category",), ("channel",), ("rating",))


def shown(n: int) -> int | None:
    """A count as published: None (shown as "fewer than 5") below SMALLEST_SHOWN."""
    return n if n >= SMALLEST_SHOWN else None


def _public_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"key": r["key"], "label_fa": r["label_fa"], "count": shown(r["count"])} for r in rows]


def months_before(period: Period, count: int) -> list[Period]:
    """`count` months ending with `period`'s, oldest first."""
    j = jdatetime.date.fromgregorian(date=period.first)
    out = []
    year, month = j.year, j.month
    for _ in range(count):
        out.append(jalali_month(year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def trend(db: Session, service: str, last: Period) -> list[dict[str, Any]]:
    """Cases per month over the last 12 months: one scan, one conditional count per month."""
    months = months_before(last, TREND_MONTHS)
    first_start, _ = months[0].bounds()
    _, last_end = months[-1].bounds()
    columns = []
    for month in months:
        start, end = month.bounds()
        columns.append(
            func.coalesce(
                func.sum(case((and_(Case.created_at >= start, Case.created_at < end), 1), else_=0)), 0
            )
        )
    row = db.execute(
        select(*columns).where(
            Case.service == service, Case.created_at >= first_start, Case.created_at < last_end
        )
    ).one()
    return [
        {"month": m.key.removeprefix("month:"), "label_fa": m.label_fa, "count": shown(int(n))}
        for m, n in zip(months, row, strict=True)
    ]


def public_figures(db: Session, service: str, period: Period) -> dict[str, Any]:
    scope = ReportScope(service=service)
    where = _where(period, scope)
    names = labels_for(service)
    counts, by = tallies(db, where, PUBLIC_SETS)
    answered = counts["answered"]
    ratings = {r: n for r, n in by[("rating",)].items() if r is not None and 1 <= r <= 5}
    rated = sum(ratings.values())
    mean = sum(int(r) * n for r, n in ratings.items()) / rated if rated else None
    month = period.key.removeprefix("month:")
    note = db.scalar(select(PublicNote.text).where(PublicNote.service == service, PublicNote.month == month))
    return {
        "service": service,
        "month": month,
        "period": period_view(period),
        "total": shown(counts["total"]),
        "by_kind": _public_rows(_rows(by[("kind",)], names["kinds"])),
        "by_category": _public_rows(_rows(by[("category",)], names["categories"])),
        "by_channel": _public_rows(_rows(by[("channel",)], names["channels"])),
        "handling": [{"key": k, "label_fa": HANDLING_FA[k], "count": shown(counts[k])} for k in HANDLING_FA],
        "on_time": {
            "answered": shown(answered),
            # A share of fewer than 5 answers would single cases out too.
            "share": round(counts["answered_on_time"] / answered, 4) if answered >= SMALLEST_SHOWN else None,
        },
        "satisfaction": {
            "ratings": shown(rated),
            "mean": round(mean, 2) if mean is not None and rated >= SMALLEST_SHOWN else None,
            "distribution": {str(r): shown(ratings.get(r, 0)) for r in range(1, 6)},
        },
        "trend": trend(db, service, period),
        "weaknesses_and_actions": note,
        "suppressed_below": SMALLEST_SHOWN,
    }


def cell(value: Any) -> Any:
    """What a published figure reads as in CSV and on the page."""
    return FEWER_FA if value is None else value


def to_csv(figures: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["بخش", "مورد", "مقدار"])
    writer.writerow(["کل", "تعداد پرونده", cell(figures["total"])])
    for key, title in (
        ("by_kind", "نوع"),
        ("by_category", "دسته"),
        ("by_channel", "مجرای دریافت"),
        ("handling", "نحوه رسیدگی"),
    ):
        for row in figures[key]:
            writer.writerow([title, row["label_fa"], cell(row["count"])])
    share = figures["on_time"]["share"]
    writer.writerow(["پاسخ در مهلت", "درصد", FEWER_FA if share is None else round(share * 100, 1)])
    sat = figures["satisfaction"]
    writer.writerow(["رضایت", "تعداد نظر", cell(sat["ratings"])])
    writer.writerow(["رضایت", "میانگین", FEWER_FA if sat["mean"] is None else sat["mean"]])
    for rating, n in sat["distribution"].items():
        writer.writerow(["رضایت", f"امتیاز {rating}", cell(n)])
    for row in figures["trend"]:
        writer.writerow(["روند ماهانه", row["month"], cell(row["count"])])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
