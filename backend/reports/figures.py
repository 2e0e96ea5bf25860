"""The figures of one period for one scope: counts, handling, the on-time share, percentiles of the time
to screening, first referral and answer, satisfaction per unit, the units with the most late returns,
and the change against the previous period of the same length."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import jdatetime
from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import array
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
    return _where_between(*period.bounds(tz), scope)


def _where_between(start: dt.datetime, end: dt.datetime, scope: ReportScope) -> ColumnElement[bool]:
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


def _percentiles(
    db: Session, values: dict[str, ColumnElement[float]], where: ColumnElement[bool], ps: tuple[float, ...]
) -> dict[str, tuple[int, list[float | None]]]:
    """Per named value: (count, [its p-th percentiles]), every value in one statement, one pass.
    PostgreSQL computes them itself (percentile_cont with an array of fractions: one sort per value).
    SQLite has no percentile: the period's values are ranked once each (row_number over a materialized
    CTE) and only the one or two values around each rank come back; the interpolation is done here."""
    if _dialect(db) == "postgresql":
        columns = []
        for value in values.values():
            columns += [func.count(value), func.percentile_cont(array(ps)).within_group(value)]
        row = db.execute(select(*columns).where(where)).one()
        return {
            name: (
                row[2 * i],
                [None if v is None else float(v) for v in (row[2 * i + 1] or [None] * len(ps))],
            )
            for i, name in enumerate(values)
        }
    period = select(*[value.label(name) for name, value in values.items()]).where(where)
    rows = period.cte("report_values").prefix_with("MATERIALIZED")
    ranked = union_all(
        *[
            select(
                literal(name).label("name"),
                rows.c[name].label("value"),
                (func.row_number().over(order_by=rows.c[name]) - 1).label("i"),
                func.count().over().label("n"),
            ).where(rows.c[name].is_not(None))
            for name in values
        ]
    ).subquery()
    # The ranks wanted, floor(p * (n - 1)) and the one after it (CAST truncates: the ranks are >= 0).
    wanted = or_(*[(ranked.c.i - cast(p * (ranked.c.n - 1), Integer)).in_((0, 1)) for p in ps])
    found: dict[str, dict[int, float]] = {name: {} for name in values}
    counts = dict.fromkeys(values, 0)
    for name, value, i, n in db.execute(select(ranked).where(wanted)):
        found[name][i] = float(value)
        counts[name] = n
    out = {}
    for name in values:
        count, at = counts[name], found[name]
        figures: list[float | None] = []
        for p in ps:
            if not count:
                figures.append(None)
                continue
            rank = p * (count - 1)
            low = math.floor(rank)
            below = at[low]
            above = at.get(low + 1, below)
            figures.append(below + (above - below) * (rank - low))
        out[name] = (count, figures)
    return out


# What every period is summed up by, in this order: the total, how cases were handled, the answers given
# with no deadline missed on the way (a missed deadline always returns the case), the mean rating.
TOTALS = ("total", *HANDLING_FA, "answered_on_time", "satisfaction_mean")


def _totals(c: Any, only: ColumnElement[bool] | None = None) -> list[ColumnElement[Any]]:
    """The TOTALS as aggregates over `c`, the case table's columns or a CTE's with the same names;
    over the rows `only` holds, if given."""

    def n(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
        conditions = (*conditions, only) if only is not None else conditions
        return func.count().filter(and_(*conditions)) if conditions else func.count()

    answered = c.first_answered_at.is_not(None)
    rated = c.satisfaction.between(1, 5)
    return [
        n(),
        n(answered),
        n(c.status == CaseStatus.CLOSED.value),
        n(c.status == CaseStatus.REJECTED.value),
        n(c.late_returns > 0),
        n(c.escalation_level > 0),
        n(c.status.in_(OPEN)),
        n(answered, c.late_returns == 0),
        func.avg(case((rated if only is None else and_(rated, only), c.satisfaction))),
    ]


def _dimensions(c: Any) -> dict[str, ColumnElement[Any]]:
    """What cases are counted by; a report asks for some of them, or pairs of them ("unit", "rating")."""
    return {
        "kind": c.kind,
        "category": c.category,
        "channel": c.channel,
        "unit": func.coalesce(c.handling_unit_id, c.current_unit_id),
        "urgent": c.urgent,
        "rating": c.satisfaction,
    }


def _totals_row(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {key: int(value or 0) for key, value in zip(TOTALS[:-1], row, strict=False)}
    mean = row[len(TOTALS) - 1]
    out["satisfaction_mean"] = None if mean is None else float(mean)
    return out


Sets = tuple[tuple[str, ...], ...]
Counts = dict[tuple[str, ...], dict[Any, int]]


def _used(sets: Sets) -> list[str]:
    return [name for name in _dimensions(Case.__table__.c) if any(name in s for s in sets)]


def _read_tallies(rows: Any, sets: Sets) -> tuple[dict[str, Any], Counts]:
    """TOTALS and counts from rows (grouping set, its dimensions' values..., TOTALS...); the
    grouping set None is the grand total."""
    used = _used(sets)
    counts: Counts = {s: {} for s in sets}
    totals = _totals_row([0] * (len(TOTALS) - 1) + [None])
    for row in rows:
        group, keys, figures = row[0], row[1 : 1 + len(used)], row[1 + len(used) :]
        if group is None:
            totals = _totals_row(figures)
            continue
        key = tuple(keys[used.index(name)] for name in group)
        counts[group][key[0] if len(key) == 1 else key] = int(figures[0])
    return totals, counts


def _grouping_sets(
    c: Any, sets: Sets, prepared: bool = False
) -> tuple[Any, dict[int, tuple[str, ...] | None]]:
    """PostgreSQL: SELECT grouping(dims), dims..., TOTALS... over `c` GROUP BY GROUPING SETS (sets..., ())
    (one pass, hashed), and which set each grouping() value stands for (None: the grand total).
    `prepared`: `c` is a CTE's columns with the dimensions already under their names."""
    used = _used(sets)
    dims = {name: c[name] for name in used} if prepared else _dimensions(c)
    columns = [dims[name] for name in used]
    # grouping(a, b, ...) sets a bit, leftmost highest, for each column a row is not grouped by.
    by_mask: dict[int, tuple[str, ...] | None] = {(1 << len(used)) - 1: None}
    for group in sets:
        by_mask[sum(1 << (len(used) - 1 - i) for i, name in enumerate(used) if name not in group)] = group
    query = select(func.grouping(*columns), *columns, *_totals(c)).group_by(
        func.grouping_sets(*[tuple_(*[dims[name] for name in group]) for group in sets], tuple_())
    )
    return query, by_mask


def tallies(db: Session, where: ColumnElement[bool], sets: Sets) -> tuple[dict[str, Any], Counts]:
    """The TOTALS of the cases `where` holds, and their counts by each set of dimensions (a key per
    case: one dimension's value, or a tuple for a pair), all in one statement.
    PostgreSQL: GROUP BY GROUPING SETS, the grand total being the empty set, one pass (hashed).
    SQLite has no grouping sets: a UNION ALL of GROUP BYs over the period's cases, read once into a
    materialized CTE."""
    used = _used(sets)
    if not sets:
        return _read_tallies(
            [(None, *db.execute(select(*_totals(Case.__table__.c)).where(where)).one())], sets
        )
    if _dialect(db) == "postgresql":
        query, by_mask = _grouping_sets(Case.__table__.c, sets)
        rows = db.execute(query.where(where))
        return _read_tallies([(by_mask[row[0]], *row[1:]) for row in rows], sets)
    table = Case.__table__.c
    period = select(
        *[expr.label(name) for name, expr in _dimensions(table).items() if name in used],
        table.first_answered_at,
        table.status,
        table.late_returns,
        table.escalation_level,
        table.satisfaction,
    ).where(where)
    rows = period.cte("report_cases").prefix_with("MATERIALIZED")
    groups: list[tuple[str, ...] | None] = [*sets, None]
    query = union_all(
        *[
            select(
                literal(n).label("grouping_set"),
                *[rows.c[name] if group and name in group else null() for name in used],
                *_totals(rows.c),
            ).group_by(*[rows.c[name] for name in group or ()])
            for n, group in enumerate(groups)
        ]
    )
    return _read_tallies([(groups[row[0]], *row[1:]) for row in db.execute(query)], sets)


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


def _milestone_seconds(db: Session, names) -> dict[str, ColumnElement[float]]:
    return {name: seconds_between(db, MILESTONES[name], Case.created_at) for name in names}


def durations(db: Session, where: ColumnElement[bool]) -> dict[str, dict[str, Any]]:
    """The median and 90th percentile of the time to each milestone, in one statement."""
    return _spans(_percentiles(db, _milestone_seconds(db, MILESTONES), where, (0.5, 0.9)))


def _spans(found: dict[str, tuple[int, list[float | None]]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, (count, (median, p90)) in found.items():
        out[name] = {
            "label_fa": DURATIONS_FA[name],
            "count": count,
            "median_seconds": None if median is None else round(median, 1),
            "p90_seconds": None if p90 is None else round(p90, 1),
        }
    return out


def satisfaction(db: Session, ratings: dict[tuple[int | None, int], int]) -> dict[str, Any]:
    """Per unit and overall: the mean and the distribution of the 1-5 ratings, from the counts per
    (unit, rating) that `tallies` gives."""
    per_unit: dict[int | None, dict[int, int]] = {}
    overall = dict.fromkeys(range(1, 6), 0)
    for (unit_id, rating), n in ratings.items():
        if rating is None or not 1 <= rating <= 5:
            continue
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


def _headline(totals: dict[str, Any], median_answer: float | None) -> dict[str, Any]:
    mean = totals["satisfaction_mean"]
    return {
        "total": totals["total"],
        "answered": totals["answered"],
        "closed": totals["closed"],
        "returned_late": totals["returned_late"],
        "on_time_share": share(totals["answered_on_time"], totals["answered"]),
        "median_answer_seconds": None if median_answer is None else round(median_answer, 1),
        "satisfaction_mean": None if mean is None else round(mean, 2),
    }


def headline(db: Session, period: Period, scope: ReportScope) -> dict[str, Any]:
    """The few figures compared with the previous period: the totals and the median time to answer
    (on PostgreSQL in one statement, on SQLite in two)."""
    where = _where(period, scope)
    answer = seconds_between(db, Case.first_answered_at, Case.created_at)
    if _dialect(db) == "postgresql":
        row = db.execute(
            select(*_totals(Case.__table__.c), func.percentile_cont(0.5).within_group(answer)).where(where)
        ).one()
        median = row[-1]
        return _headline(_totals_row(row[:-1]), None if median is None else float(median))
    totals, _ = tallies(db, where, ())
    _, (median,) = _percentiles(db, {"answer": answer}, where, (0.5,))["answer"]
    return _headline(totals, median)


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


# The counts a staff report gives, by one dimension each, and the ratings per unit.
REPORT_SETS = (("kind",), ("category",), ("channel",), ("unit",), ("urgent",), ("unit", "rating"))


def _report_pass_pg(db: Session, period: Period, previous: Period, scope: ReportScope) -> tuple[Any, ...]:
    """PostgreSQL: every case figure of a report in one statement and one read of the two periods'
    cases (a materialized CTE): the period's counts and totals by GROUPING SETS, and beside them (a
    one-row subquery joined to each) its percentiles and the previous period's headline, as
    aggregates with FILTER. The previous period ends where the period starts (Period.previous)."""
    start, end = period.bounds()
    first, _ = previous.bounds()
    table = Case.__table__.c
    seconds = _milestone_seconds(db, MILESTONES)
    cases = (
        select(
            *[expr.label(name) for name, expr in _dimensions(table).items()],
            table.first_answered_at,
            table.status,
            table.late_returns,
            table.escalation_level,
            table.satisfaction,
            *[value.label(f"to_{name}") for name, value in seconds.items()],
            (table.created_at >= start).label("current"),
        )
        .where(_where_between(first, end, scope))
        .cte("report_cases")
        .prefix_with("MATERIALIZED")
    )
    c, current, earlier = cases.c, cases.c.current, ~cases.c.current
    counts, by_mask = _grouping_sets(c, REPORT_SETS, prepared=True)
    counts = counts.where(current).subquery("counts")
    beside = []
    for name in MILESTONES:
        value = c[f"to_{name}"]
        beside += [
            func.count(value).filter(current),
            func.percentile_cont(array((0.5, 0.9))).within_group(value).filter(current),
        ]
    beside += [*_totals(c, earlier), func.percentile_cont(0.5).within_group(c.to_answer).filter(earlier)]
    aside = select(*beside).subquery("beside")
    rows = db.execute(select(counts, aside).select_from(counts.join(aside, true()))).all()
    width = len(counts.c)
    totals, by = _read_tallies([(by_mask[row[0]], *row[1:width]) for row in rows], REPORT_SETS)
    extra = rows[0][width:]
    spans = {
        name: (extra[2 * i], [None if v is None else float(v) for v in (extra[2 * i + 1] or [None, None])])
        for i, name in enumerate(MILESTONES)
    }
    rest = extra[2 * len(MILESTONES) :]
    median = rest[-1]
    return totals, by, spans, _headline(_totals_row(rest[:-1]), None if median is None else float(median))


def build_report(db: Session, period: Period, scope: ReportScope) -> dict[str, Any]:
    """The period's figures in three statements over its cases (counts and totals, the percentiles,
    the previous period's headline), plus the late returns and the unit names."""
    where = _where(period, scope)
    names = labels_for(scope.service)
    previous = period.previous()
    if _dialect(db) == "postgresql":
        counts, by, found, previous_head = _report_pass_pg(db, period, previous, scope)
        spans = _spans(found)
    else:
        counts, by = tallies(db, where, REPORT_SETS)
        spans = durations(db, where)
        previous_head = headline(db, previous, scope)
    by_unit = by[("unit",)]
    units = _units(db, by_unit)
    urgency = by[("urgent",)]
    current_head = _headline(counts, spans["answer"]["median_seconds"])
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
        "by_kind": _rows(by[("kind",)], names["kinds"]),
        "by_category": _rows(by[("category",)], names["categories"]),
        "by_channel": _rows(by[("channel",)], names["channels"]),
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
        "durations": spans,
        "satisfaction": satisfaction(db, by[("unit", "rating")]),
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
