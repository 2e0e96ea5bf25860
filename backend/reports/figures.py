"""The figures of one period for one scope: counts, handling, the on-time share, percentiles of the time
to screening, first referral and answer, satisfaction per unit, the units with the most late returns,
and the change against the previous period of the same length."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import jdatetime
from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from backend.api.errors import ApiError
from backend.models import Case, Referral, Unit, User
from backend.services.profiles import get_profiles
from backend.services.staff_access import visible_unit_ids
from domain import report_periods as rp
from domain.case_state import OPEN_STATUSES, CaseStatus
from domain.report_periods import Period, jalali_day_text

# The unit a case counts for: the one it was last referred to, or where it sits if never referred.
CASE_UNIT = func.coalesce(Case.handling_unit_id, Case.current_unit_id)
OPEN = [s.value for s in OPEN_STATUSES]
LATE_UNITS_SHOWN = 10

HANDLING_FA = {
    "answered": "پاسخ داده شده",
    "closed": "بسته شده",
    "rejected": "رد شده",
    "returned_late": "بازگشته به دلیل تأخیر",
    "escalated": "گزارش به سطح بالاتر",
    "open": "هنوز باز",
}
URGENCY_FA = {"urgent": "فوری", "normal": "عادی"}
DURATIONS_FA = {"screening": "تا غربال", "referral": "تا نخستین ارجاع", "answer": "تا پاسخ"}
MILESTONES = {
    "screening": Case.first_screened_at,
    "referral": Case.first_referred_at,
    "answer": Case.first_answered_at,
}


@dataclass(frozen=True)
class ReportScope:
    service: str | None = None
    unit_ids: frozenset[int] | None = None  # None: every unit
    unit_code: str | None = None


def subtree_ids(db: Session, root_id: int) -> set[int]:
    """A unit and every unit below it (the unit tree is small: read once, walked here)."""
    children: dict[int | None, list[int]] = {}
    for unit_id, parent_id in db.execute(select(Unit.id, Unit.parent_id)):
        children.setdefault(parent_id, []).append(unit_id)
    ids, frontier = {root_id}, [root_id]
    while frontier:
        for child in children.get(frontier.pop(), []):
            ids.add(child)
            frontier.append(child)
    return ids


def scope_for(db: Session, user: User, service: str = "", unit: str = "") -> ReportScope:
    """What `user` may report on: a manager their unit's subtree, a supervisor or administrator all.
    A unit out of reach looks the same as a missing one."""
    if service and service not in get_profiles():
        raise ApiError(404, "service_not_found", f"no service {service[:16]!r}")
    visible = visible_unit_ids(db, user)
    ids: set[int] | None = visible
    if unit:
        row = db.scalar(select(Unit).where(Unit.code == unit))
        if row is None or (visible is not None and row.id not in visible):
            raise ApiError(404, "unit_not_found", "no unit with this code in your reach")
        if service and row.service != service:
            raise ApiError(422, "wrong_service", "the unit belongs to another service")
        ids = subtree_ids(db, row.id)
        if visible is not None:
            ids &= visible
    return ReportScope(service or None, frozenset(ids) if ids is not None else None, unit or None)


def _where(period: Period, scope: ReportScope, tz: str = "Asia/Tehran") -> ColumnElement[bool]:
    start, end = period.bounds(tz)
    conditions = [Case.created_at >= start, Case.created_at < end]
    if scope.service:
        conditions.append(Case.service == scope.service)
    if scope.unit_ids is not None:
        conditions.append(CASE_UNIT.in_(sorted(scope.unit_ids)))
    return and_(*conditions)


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def seconds_between(db: Session, later, earlier) -> ColumnElement[float]:
    if _dialect(db) == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def percentiles(
    db: Session, value: ColumnElement[float], where: ColumnElement[bool], ps: tuple[float, ...] = (0.5, 0.9)
) -> tuple[int, list[float | None]]:
    """(count, [the p-th percentile of `value`, linearly interpolated, as PostgreSQL's percentile_cont]).
    PostgreSQL computes them itself; SQLite has no percentile, so it is asked for the one or two
    values around each rank of an ordered SELECT of the single column (LIMIT 2 OFFSET k)."""
    present = and_(where, value.is_not(None))
    if _dialect(db) == "postgresql":
        row = db.execute(
            select(func.count(value), *[func.percentile_cont(p).within_group(value) for p in ps]).where(
                present
            )
        ).one()
        return row[0], [None if v is None else float(v) for v in row[1:]]
    count = db.scalar(select(func.count()).where(present)) or 0
    out: list[float | None] = []
    for p in ps:
        if not count:
            out.append(None)
            continue
        rank = p * (count - 1)
        low = math.floor(rank)
        pair = db.scalars(select(value).where(present).order_by(value).limit(2).offset(low)).all()
        below = float(pair[0])
        above = float(pair[1]) if len(pair) > 1 else below
        out.append(below + (above - below) * (rank - low))
    return count, out


def _counts(db: Session, column, where: ColumnElement[bool]) -> dict[Any, int]:
    return {key: n for key, n in db.execute(select(column, func.count()).where(where).group_by(column))}


def handling(db: Session, where: ColumnElement[bool]) -> dict[str, int]:
    def n(condition) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = db.execute(
        select(
            func.count(),
            n(Case.first_answered_at.is_not(None)),
            n(Case.status == CaseStatus.CLOSED.value),
            n(Case.status == CaseStatus.REJECTED.value),
            n(Case.late_returns > 0),
            n(Case.escalation_level > 0),
            n(Case.status.in_(OPEN)),
            # Answered with no deadline missed on the way (a missed deadline always returns the case).
            n(and_(Case.first_answered_at.is_not(None), Case.late_returns == 0)),
        ).where(where)
    ).one()
    keys = ("total", *HANDLING_FA, "answered_on_time")
    return {key: int(value or 0) for key, value in zip(keys, row, strict=True)}


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def labels_for(service: str | None) -> dict[str, dict[str, str]]:
    profiles = get_profiles()
    chosen = [profiles[service]] if service in profiles else list(profiles.values())
    out: dict[str, dict[str, str]] = {"kinds": {}, "categories": {}, "channels": {}}
    for profile in chosen:
        for key in out:
            for code, text in getattr(profile, key).items():
                out[key].setdefault(code, text)
    return out


def _rows(counts: dict[Any, int], names: dict[str, str]) -> list[dict[str, Any]]:
    rows = [
        {"key": key or "", "label_fa": names.get(key or "", key or "نامشخص"), "count": n}
        for key, n in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["count"], r["key"]))


def _units(db: Session, ids) -> dict[int, Unit]:
    ids = [i for i in ids if i is not None]
    return {u.id: u for u in db.scalars(select(Unit).where(Unit.id.in_(ids)))} if ids else {}


def durations(db: Session, where: ColumnElement[bool]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, milestone in MILESTONES.items():
        count, (median, p90) = percentiles(db, seconds_between(db, milestone, Case.created_at), where)
        out[name] = {
            "label_fa": DURATIONS_FA[name],
            "count": count,
            "median_seconds": None if median is None else round(median, 1),
            "p90_seconds": None if p90 is None else round(p90, 1),
        }
    return out


def satisfaction(db: Session, where: ColumnElement[bool]) -> dict[str, Any]:
    """Per unit and overall: the mean and the distribution of the 1-5 ratings."""
    rows = db.execute(
        select(CASE_UNIT, Case.satisfaction, func.count())
        .where(where, Case.satisfaction.between(1, 5))
        .group_by(CASE_UNIT, Case.satisfaction)
    ).all()
    per_unit: dict[int | None, dict[int, int]] = {}
    overall = dict.fromkeys(range(1, 6), 0)
    for unit_id, rating, n in rows:
        per_unit.setdefault(unit_id, dict.fromkeys(range(1, 6), 0))[int(rating)] += n
        overall[int(rating)] += n
    units = _units(db, per_unit)

    def summary(dist: dict[int, int]) -> dict[str, Any]:
        ratings = sum(dist.values())
        mean = sum(r * n for r, n in dist.items()) / ratings if ratings else None
        return {
            "ratings": ratings,
            "mean": None if mean is None else round(mean, 2),
            "distribution": {str(r): n for r, n in dist.items()},
        }

    unit_rows = [
        {
            "unit": units[u].code if u in units else "",
            "name_fa": units[u].name_fa if u in units else "نامشخص",
            **summary(dist),
        }
        for u, dist in per_unit.items()
    ]
    unit_rows.sort(key=lambda r: (-r["ratings"], r["unit"]))
    return {"overall": summary(overall), "units": unit_rows}


def late_units(db: Session, period: Period, scope: ReportScope, tz: str = "Asia/Tehran") -> list[dict]:
    """The units whose referrals were returned for lateness most often in the period."""
    start, end = period.bounds(tz)
    query = (
        select(Referral.to_unit_id, func.count().label("n"))
        .join(Unit, Unit.id == Referral.to_unit_id)
        .where(Referral.state == "returned", Referral.closed_at >= start, Referral.closed_at < end)
        .group_by(Referral.to_unit_id)
        .order_by(func.count().desc(), Referral.to_unit_id)
        .limit(LATE_UNITS_SHOWN)
    )
    if scope.service:
        query = query.where(Unit.service == scope.service)
    if scope.unit_ids is not None:
        query = query.where(Referral.to_unit_id.in_(sorted(scope.unit_ids)))
    rows = db.execute(query).all()
    units = _units(db, [r[0] for r in rows])
    return [{"unit": units[u].code, "name_fa": units[u].name_fa, "late_returns": n} for u, n in rows]


def headline(db: Session, period: Period, scope: ReportScope) -> dict[str, Any]:
    """The few figures compared with the previous period."""
    where = _where(period, scope)
    counts = handling(db, where)
    _, (median_answer,) = percentiles(
        db, seconds_between(db, Case.first_answered_at, Case.created_at), where, (0.5,)
    )
    mean = db.scalar(select(func.avg(Case.satisfaction)).where(where, Case.satisfaction.between(1, 5)))
    return {
        "total": counts["total"],
        "answered": counts["answered"],
        "closed": counts["closed"],
        "returned_late": counts["returned_late"],
        "on_time_share": share(counts["answered_on_time"], counts["answered"]),
        "median_answer_seconds": None if median_answer is None else round(median_answer, 1),
        "satisfaction_mean": None if mean is None else round(float(mean), 2),
    }


def period_view(period: Period, tz: str = "Asia/Tehran") -> dict[str, Any]:
    start, end = period.bounds(tz)
    return {
        "kind": period.kind,
        "key": period.key,
        "label_fa": period.label_fa,
        "first_day": jalali_day_text(period.first),
        "last_day": jalali_day_text(period.last),
        "start": start.isoformat(),
        "end": end.isoformat(),
    }


def build_report(db: Session, period: Period, scope: ReportScope) -> dict[str, Any]:
    where = _where(period, scope)
    names = labels_for(scope.service)
    counts = handling(db, where)
    by_unit = _counts(db, CASE_UNIT, where)
    units = _units(db, by_unit)
    urgency = _counts(db, Case.urgent, where)
    previous = period.previous()
    current_head, previous_head = headline(db, period, scope), headline(db, previous, scope)
    change = {
        key: {
            "current": current_head[key],
            "previous": previous_head[key],
            "change": None
            if current_head[key] is None or previous_head[key] is None
            else round(current_head[key] - previous_head[key], 4),
        }
        for key in current_head
    }
    return {
        "period": period_view(period),
        "previous_period": period_view(previous),
        "service": scope.service,
        "unit": scope.unit_code,
        "total": counts["total"],
        "by_kind": _rows(_counts(db, Case.kind, where), names["kinds"]),
        "by_category": _rows(_counts(db, Case.category, where), names["categories"]),
        "by_channel": _rows(_counts(db, Case.channel, where), names["channels"]),
        "by_urgency": _rows({("urgent" if bool(k) else "normal"): n for k, n in urgency.items()}, URGENCY_FA),
        "by_unit": sorted(
            (
                {
                    "key": units[u].code if u in units else "",
                    "label_fa": units[u].name_fa if u in units else "نامشخص",
                    "count": n,
                }
                for u, n in by_unit.items()
            ),
            key=lambda r: (-r["count"], r["key"]),
        ),
        "handling": [{"key": k, "label_fa": HANDLING_FA[k], "count": counts[k]} for k in HANDLING_FA],
        "on_time": {
            "answered": counts["answered"],
            "on_time": counts["answered_on_time"],
            "share": share(counts["answered_on_time"], counts["answered"]),
        },
        "durations": durations(db, where),
        "satisfaction": satisfaction(db, where),
        "late_units": late_units(db, period, scope),
        "change": change,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def period_for_request(period: str, date_from: str, date_to: str, today: dt.date) -> Period:
    """The period a request names (Jalali dates, Persian or Latin digits):
    period=month&from=1404/07 (or a day in it), period=week&from=<a day in it>, from=&to= (inclusive);
    nothing: the current Jalali month. Raises BadPeriod."""
    if period == "month":
        if not date_from:
            return rp.period_from_query(today=today)
        if len([p for p in date_from.replace("-", "/").split("/") if p.strip()]) == 2:
            return rp.parse_jalali_month(date_from)
        day = rp.parse_jalali_day(date_from)
        j = jdatetime.date.fromgregorian(date=day)
        return rp.jalali_month(j.year, j.month)
    if period == "week":
        return rp.jalali_week(rp.parse_jalali_day(date_from) if date_from else today)
    if period not in ("", "range"):
        raise rp.BadPeriod("period is month, week or range")
    return rp.period_from_query(date_from=date_from, date_to=date_to, today=today)
