"""/public: the transparency page, no login, Persian RTL, and its open data as JSON and CSV (R20)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import jdatetime
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from backend.api.deps import DbSession, Now
from backend.api.errors import ApiError, error_responses
from backend.api.routes.reports import PeriodOut
from backend.console.web import templates
from backend.reports.public import FEWER_FA, cell, public_figures, to_csv
from backend.services.profiles import get_profiles
from domain.report_periods import BadPeriod, Period, jalali_month, local_date, parse_jalali_month

router = APIRouter(tags=["public"], responses=error_responses(404, 422))


class PublicCount(BaseModel):
    key: str
    label_fa: str
    count: int | None  # null: fewer than 5


class PublicOnTime(BaseModel):
    answered: int | None
    share: float | None


class PublicSatisfaction(BaseModel):
    ratings: int | None
    mean: float | None
    distribution: dict[str, int | None]


class PublicMonth(BaseModel):
    month: str
    label_fa: str
    count: int | None


class PublicFigures(BaseModel):
    """A service's month. Every count below 5 is null ("fewer than 5"), and so is a share or a mean
    over fewer than 5 cases."""

    service: str
    month: str
    period: PeriodOut
    total: int | None
    by_kind: list[PublicCount]
    by_category: list[PublicCount]
    by_channel: list[PublicCount]
    handling: list[PublicCount]
    on_time: PublicOnTime
    satisfaction: PublicSatisfaction
    trend: list[PublicMonth]
    weaknesses_and_actions: str | None
    suppressed_below: int


def _service(service: str) -> str:
    if service not in get_profiles():
        raise ApiError(404, "service_not_found", "no such service")
    return service


def _month(text: str) -> Period:
    try:
        return parse_jalali_month(text)
    except BadPeriod as exc:
        raise ApiError(422, "invalid_month", str(exc)) from None


def last_month(now) -> Period:
    """The last complete Jalali month: the page opens on figures that no longer change."""
    j = jdatetime.date.fromgregorian(date=local_date(now))
    year, month = (j.year, j.month - 1) if j.month > 1 else (j.year - 1, 12)
    return jalali_month(year, month)


ServicePath = Annotated[str, Path(max_length=16, pattern=r"^[0-9A-Za-z_-]+$")]
MonthPath = Annotated[str, Path(max_length=7, pattern=r"^[0-9]{4}-[0-9]{2}$", description="1404-07")]


@router.get("/public/data/{service}/{month}.json", response_model=PublicFigures)
def public_data(service: ServicePath, month: MonthPath, db: DbSession) -> dict[str, Any]:
    """A service's month as open data; no personal data, no figure below 5."""
    return public_figures(db, _service(service), _month(month))


@router.get("/public/data/{service}/{month}.csv", include_in_schema=False)
def public_data_csv(service: ServicePath, month: MonthPath, db: DbSession) -> Response:
    figures = public_figures(db, _service(service), _month(month))
    return Response(
        to_csv(figures),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="didehban-{service}-{figures["month"]}.csv"'},
    )


@router.get("/public", response_class=HTMLResponse, include_in_schema=False)
def public_page(request: Request, db: DbSession, now: Now, service: str = "", month: str = "") -> Response:
    profiles = get_profiles()
    service = service if service in profiles else sorted(profiles)[0]
    status, error = 200, None
    try:
        period = parse_jalali_month(month[:16]) if month else last_month(now)
    except BadPeriod:
        period, status, error = last_month(now), 422, "ماه را مانند ۱۴۰۴/۰۷ بنویسید."
    figures = public_figures(db, service, period)
    trend = {
        "labels": [m["label_fa"] for m in figures["trend"]],
        "counts": [m["count"] for m in figures["trend"]],
        "title": "پرونده‌ها در ۱۲ ماه گذشته",
    }
    response = templates.TemplateResponse(
        request,
        "public.html",
        {
            "figures": figures,
            "profile": profiles[service],
            "services": [(key, profiles[key].name_fa) for key in sorted(profiles)],
            "month_text": figures["month"].replace("-", "/"),
            "cell": cell,
            "FEWER_FA": FEWER_FA,
            "error": error,
            "chart_json": json.dumps(trend, ensure_ascii=False),
        },
        status_code=status,
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
