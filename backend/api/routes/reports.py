"""Reports for staff (R19, R21): the figures of a period for a service and a unit's subtree, as JSON.
A manager reports on their unit's subtree; supervisors and administrators on everything."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from backend.api.deps import DbSession, Now, current_user
from backend.api.errors import ApiError, error_responses
from backend.models import User
from backend.reports.figures import build_report, period_for_request, scope_for
from domain.report_periods import BadPeriod, local_date

router = APIRouter(prefix="/api/v1/staff", tags=["reports"], responses=error_responses(401, 404, 422))
Staff = Annotated[User, Depends(current_user)]

# Who reads reports: the unit heads, supervisors and administrators (operators and unit staff work
# cases; their unit's head reports on them).
REPORT_ROLES = ("manager", "supervisor", "admin")


class PeriodOut(BaseModel):
    kind: str
    key: str
    label_fa: str
    first_day: str
    last_day: str
    start: str
    end: str


class CountRow(BaseModel):
    key: str
    label_fa: str
    count: int


class OnTimeOut(BaseModel):
    answered: int
    on_time: int
    share: float | None


class DurationOut(BaseModel):
    label_fa: str
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class SatisfactionSummary(BaseModel):
    ratings: int
    mean: float | None
    distribution: dict[str, int]


class UnitSatisfaction(SatisfactionSummary):
    unit: str
    name_fa: str


class SatisfactionOut(BaseModel):
    overall: SatisfactionSummary
    units: list[UnitSatisfaction]


class LateUnit(BaseModel):
    unit: str
    name_fa: str
    late_returns: int


class Change(BaseModel):
    current: float | None
    previous: float | None
    change: float | None


class ReportOut(BaseModel):
    period: PeriodOut
    previous_period: PeriodOut
    service: str | None
    unit: str | None
    total: int
    by_kind: list[CountRow]
    by_category: list[CountRow]
    by_channel: list[CountRow]
    by_urgency: list[CountRow]
    by_unit: list[CountRow]
    handling: list[CountRow]
    on_time: OnTimeOut
    durations: dict[str, DurationOut]
    satisfaction: SatisfactionOut
    late_units: list[LateUnit]
    change: dict[str, Change]
    generated_at: str


def report_for(
    db, user: User, now, *, period: str, date_from: str, date_to: str, service: str, unit: str
) -> dict[str, Any]:
    """Shared by the API and the console's page and exports."""
    if user.role not in REPORT_ROLES:
        raise ApiError(403, "forbidden", "reports are for unit heads, supervisors and administrators")
    try:
        chosen = period_for_request(period, date_from, date_to, local_date(now))
    except BadPeriod as exc:
        raise ApiError(422, "invalid_period", str(exc)) from None
    return build_report(db, chosen, scope_for(db, user, service, unit))


Text = Annotated[str, Query(max_length=64)]


@router.get("/reports", response_model=ReportOut, responses=error_responses(403))
def reports(
    user: Staff,
    db: DbSession,
    now: Now,
    date_from: Annotated[str, Query(alias="from", max_length=32)] = "",
    date_to: Annotated[str, Query(alias="to", max_length=32)] = "",
    period: Annotated[str, Query(max_length=8, description="month, week or range")] = "",
    service: Annotated[str, Query(max_length=16)] = "",
    unit: Text = "",
) -> dict[str, Any]:
    """The figures of a period: `period=month&from=1404/07` (or any day of the month),
    `period=week&from=1404/07/05` (the Saturday-to-Friday week holding it), or `from=&to=` (Jalali
    days, inclusive); with nothing, the current Jalali month. `unit` narrows to that unit's subtree."""
    return report_for(
        db, user, now, period=period, date_from=date_from, date_to=date_to, service=service, unit=unit
    )
