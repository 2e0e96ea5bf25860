"""The console's reports page (R19): a period's figures as tables and a chart, exported as CSV and XLSX;
and the administrator's monthly "weaknesses and actions" text for the public page (R20)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from backend.api.deps import DbSession, Now
from backend.api.errors import ApiError
from backend.api.routes.reports import REPORT_ROLES, report_for
from backend.console.admin import require_admin
from backend.console.web import ConsoleError, ConsoleUser, PostedForm, field, redirect, render
from backend.models import PublicNote, Unit
from backend.reports import export
from backend.services.profiles import get_profiles
from backend.services.staff_access import visible_unit_ids
from domain.report_periods import BadPeriod, parse_jalali_month

router = APIRouter(prefix="/console", include_in_schema=False)

ERRORS_FA = {
    "invalid_period": "دوره گزارش درست نیست: ماه را مانند ۱۴۰۴/۰۷ و روز را مانند ۱۴۰۴/۰۷/۰۵ بنویسید.",
    "unit_not_found": "این واحد در دسترس شما نیست.",
    "service_not_found": "این سامانه وجود ندارد.",
    "wrong_service": "این واحد از سامانه دیگری است.",
    "forbidden": "گزارش‌ها برای مدیران واحد، ناظران و مدیر سامانه است.",
}
NOTE_MAX = 4000


def _query(
    period: str = "month", date_from: str = "", date_to: str = "", service: str = "", unit: str = ""
) -> dict[str, str]:
    """The report's form fields, as the page and its downloads both read them (bounded lengths)."""
    return {
        "period": period[:8],
        "from": date_from[:32],
        "to": date_to[:32],
        "service": service[:16],
        "unit": unit[:64],
    }


ReportQuery = Annotated[dict[str, str], Depends(_query)]


def _report(db, user, now, q: dict[str, str]) -> dict[str, Any]:
    if user.role not in REPORT_ROLES:
        raise ConsoleError(403, ERRORS_FA["forbidden"])
    return report_for(
        db,
        user,
        now,
        period=q["period"],
        date_from=q["from"],
        date_to=q["to"],
        service=q["service"],
        unit=q["unit"],
    )


def _units_in_reach(db, user) -> list[Unit]:
    visible = visible_unit_ids(db, user)
    units = db.scalars(select(Unit).order_by(Unit.service, Unit.code)).all()
    return [u for u in units if visible is None or u.id in visible]


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, user: ConsoleUser, db: DbSession, now: Now, q: ReportQuery) -> Response:
    report, error, status = None, None, 200
    try:
        report = _report(db, user, now, q)
    except ApiError as exc:
        if exc.status == 403:
            raise ConsoleError(403, ERRORS_FA["forbidden"]) from None
        error, status = ERRORS_FA.get(exc.code, exc.message), exc.status
    chart = (
        {
            "labels": [r["label_fa"] for r in report["by_category"]],
            "counts": [r["count"] for r in report["by_category"]],
            "title": "پرونده‌ها به تفکیک دسته",
        }
        if report
        else None
    )
    return render(
        request,
        "reports.html",
        status=status,
        nav="reports",
        report=report,
        error=error,
        q=q,
        query_string=request.url.query,
        services=sorted(get_profiles()),
        units=_units_in_reach(db, user),
        chart_json=json.dumps(chart, ensure_ascii=False) if chart else "",
    )


def _download(db, user, now, q: dict[str, str], suffix: str) -> Response:
    try:
        report = _report(db, user, now, q)
    except ApiError as exc:
        raise ConsoleError(exc.status, ERRORS_FA.get(exc.code, exc.message)) from None
    if suffix == "csv":
        body, media = export.to_csv(report), "text/csv; charset=utf-8"
    else:
        body = export.to_xlsx(report)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{export.file_name(report, suffix)}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/reports/export.{suffix}")
def reports_export(suffix: str, user: ConsoleUser, db: DbSession, now: Now, q: ReportQuery) -> Response:
    if suffix not in ("csv", "xlsx"):
        raise ConsoleError(404, "این قالب پشتیبانی نمی‌شود.")
    return _download(db, user, now, q, suffix)


# --- the public page's monthly text ------------------------------------------------------------


def _notes_page(request: Request, db, *, status: int = 200, error: str | None = None, done: bool = False):
    notes = db.scalars(select(PublicNote).order_by(PublicNote.month.desc(), PublicNote.service)).all()
    return render(
        request,
        "public_notes.html",
        status=status,
        nav="public_notes",
        notes=notes,
        services=sorted(get_profiles()),
        error=error,
        flash="متن ذخیره شد و در صفحه عمومی نمایش داده می‌شود." if done else None,
    )


@router.get("/admin/public-notes", response_class=HTMLResponse)
def public_notes(request: Request, user: ConsoleUser, db: DbSession, done: str = "") -> Response:
    require_admin(user)
    return _notes_page(request, db, done=bool(done))


@router.post("/admin/public-notes")
def save_public_note(
    request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, now: Now
) -> Response:
    require_admin(user)
    service, month, text = field(form, "service"), field(form, "month"), field(form, "text")
    if service not in get_profiles():
        return _notes_page(request, db, status=422, error="سامانه را انتخاب کنید.")
    try:
        chosen = parse_jalali_month(month)
    except BadPeriod:
        return _notes_page(request, db, status=422, error="ماه را مانند ۱۴۰۴/۰۷ بنویسید.")
    if not text or len(text) > NOTE_MAX:
        return _notes_page(request, db, status=422, error="متن خالی است یا بیش از اندازه بلند است.")
    key = chosen.key.removeprefix("month:")
    note = db.scalar(select(PublicNote).where(PublicNote.service == service, PublicNote.month == key))
    if note is None:
        note = PublicNote(service=service, month=key, text=text, updated_by=user.username, updated_at=now)
        db.add(note)
    else:
        note.text, note.updated_by, note.updated_at = text, user.username, now
    db.commit()
    return redirect("/console/admin/public-notes?done=1")
