"""What supervisors read: call logs with both recordings, scores, escalations, returned cases."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import jdatetime
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from backend.api.deps import AppSettings, DbSession, Now
from backend.console.cases import audio_response
from backend.console.web import ConsoleError, ConsoleUser, render, time_left
from backend.models import CallLog, Case, Referral, Unit, User
from backend.services.intake import case_by_code
from backend.services.profiles import get_profiles
from backend.services.staff_access import may_see, visible_unit_ids
from domain.digits import normalise_digits
from domain.tracking_code import InvalidTrackingCode, parse_tracking_code

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 100


def require_supervisor(user: User) -> None:
    if user.role not in ("supervisor", "admin"):
        raise ConsoleError(403, "این صفحه برای ناظران و مدیر سامانه است.")


def parse_jalali_date(text: str) -> dt.date | None:
    """1405/09/02 (Persian or Latin digits, / or -) to a Gregorian date; None when empty or wrong."""
    parts = [normalise_digits(p) for p in re.split(r"[/\-\s]+", text.strip())] if text else []
    try:
        year, month, day = (int(p) for p in parts)
        return jdatetime.date(year, month, day).togregorian()
    except (ValueError, TypeError):
        return None


def _local_midnight(day: dt.date, tz: str = "Asia/Tehran") -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)


@router.get("/calls", response_class=HTMLResponse)
def calls(
    request: Request,
    user: ConsoleUser,
    db: DbSession,
    date_from: str = "",
    date_to: str = "",
    service: str = "",
    outcome: str = "",
    code: str = "",
) -> Response:
    require_supervisor(user)
    query = select(CallLog)
    problems = []
    start, end = parse_jalali_date(date_from), parse_jalali_date(date_to)
    if date_from and start is None:
        problems.append("تاریخ «از» درست نیست (نمونه: ۱۴۰۵/۰۹/۰۲).")
    if date_to and end is None:
        problems.append("تاریخ «تا» درست نیست (نمونه: ۱۴۰۵/۰۹/۰۲).")
    if start:
        query = query.where(CallLog.started_at >= _local_midnight(start))
    if end:
        query = query.where(CallLog.started_at < _local_midnight(end + dt.timedelta(days=1)))
    if service:
        query = query.where(CallLog.service == service)
    if outcome:
        query = query.where(CallLog.outcome == outcome)
    if code.strip():
        try:
            wanted = parse_tracking_code(code)
        except InvalidTrackingCode:
            problems.append("کد رهگیری درست نیست.")
            wanted = None
        if wanted:
            # The call that filed it, whichever code the caller was told.
            case = case_by_code(db, wanted)
            codes = {wanted} | ({case.tracking_code, *(a.code for a in case.aliases)} if case else set())
            query = query.where(CallLog.tracking_code.in_(codes))
    logs = db.scalars(query.order_by(CallLog.started_at.desc(), CallLog.id.desc()).limit(PAGE)).all()
    cases = {}
    for log in logs:
        if log.tracking_code and log.tracking_code not in cases:
            cases[log.tracking_code] = case_by_code(db, log.tracking_code)
    outcomes = sorted(o for o in db.scalars(select(CallLog.outcome).distinct()) if o)
    return render(
        request,
        "calls.html",
        nav="calls",
        logs=logs,
        cases=cases,
        services=get_profiles(),
        outcomes=outcomes,
        filters={
            "date_from": date_from,
            "date_to": date_to,
            "service": service,
            "outcome": outcome,
            "code": code,
        },
        error=" ".join(problems) or None,
    )


@router.get("/calls/{call_id}/{which}")
def call_recording(
    call_id: int, which: str, user: ConsoleUser, db: DbSession, settings: AppSettings, download: bool = False
) -> Response:
    require_supervisor(user)
    log = db.get(CallLog, call_id) if 0 < call_id < 2**31 else None
    if log is None or which not in ("message", "call"):
        raise ConsoleError(404, "تماس پیدا نشد.")
    relative = log.message_recording if which == "message" else log.call_recording
    return audio_response(settings.recordings_dir, relative, download)


@router.get("/scores", response_class=HTMLResponse)
def scores(request: Request, user: ConsoleUser, db: DbSession) -> Response:
    if user.role not in ("supervisor", "admin", "manager"):
        raise ConsoleError(403, "این صفحه برای مدیران و ناظران است.")
    visible = visible_unit_ids(db, user)
    units = [u for u in db.scalars(select(Unit).order_by(Unit.code)) if visible is None or u.id in visible]
    managers = db.scalars(
        select(User)
        .where(User.role == "manager", User.unit_id.in_([u.id for u in units]))
        .order_by(User.username)
    ).all()
    ratings = db.execute(
        select(Case.service, func.avg(Case.satisfaction), func.count(Case.satisfaction))
        .where(Case.satisfaction.is_not(None))
        .group_by(Case.service)
    ).all()
    late = dict(
        db.execute(
            select(Referral.to_unit_id, func.count(Referral.id))
            .where(Referral.state == "returned")
            .group_by(Referral.to_unit_id)
        ).all()
    )
    return render(
        request,
        "scores.html",
        nav="scores",
        units=sorted(units, key=lambda u: (u.score, u.code)),
        managers=sorted(managers, key=lambda m: (m.score, m.username)),
        ratings=[(s, round(float(a), 2), n) for s, a, n in ratings],
        late=late,
    )


def _visible_cases(db, user: User, query) -> list[Case]:
    return [c for c in db.scalars(query) if may_see(db, user, c)]


@router.get("/escalations", response_class=HTMLResponse)
def escalations(request: Request, user: ConsoleUser, db: DbSession, now: Now) -> Response:
    require_supervisor(user)
    rows = _visible_cases(
        db, user, select(Case).where(Case.escalation_level > 0).order_by(Case.updated_at.desc()).limit(PAGE)
    )
    return render(
        request,
        "case_list.html",
        nav="escalations",
        heading="پرونده‌هایی که شهروند پیگیری‌نشده اعلام کرد",
        rows=[(c, time_left(c.due_at, now)) for c in rows],
        empty="پیگیری‌ای از شهروندان نرسیده است.",
    )


@router.get("/returned", response_class=HTMLResponse)
def returned(request: Request, user: ConsoleUser, db: DbSession, now: Now) -> Response:
    require_supervisor(user)
    case_ids = select(Referral.case_id).where(Referral.state == "returned")
    rows = _visible_cases(
        db, user, select(Case).where(Case.id.in_(case_ids)).order_by(Case.updated_at.desc()).limit(PAGE)
    )
    return render(
        request,
        "case_list.html",
        nav="returned",
        heading="پرونده‌هایی که به دلیل تأخیر واحد به ستاد بازگشت",
        rows=[(c, time_left(c.due_at, now)) for c in rows],
        empty="پرونده بازگشتی نیست.",
    )
