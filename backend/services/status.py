"""What a caller may learn of a case by its tracking code (R7), and nothing of who filed it (R9)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime
from pydantic import BaseModel, Field
from sqlalchemy import Connection, bindparam, func, select

from backend.core.security import IdentityVault
from backend.models import Caller, Case, CaseCode, CaseEvent, Unit
from backend.services.intake import IntakeError, normalise_phone
from domain.case_state import STAGE_FA, CaseStatus
from domain.jalali import EARLIEST, LATEST
from domain.national_id import InvalidNationalId, parse_national_id

ACTION_FA = {
    "register": "ثبت",
    "screen": "بررسی و دسته‌بندی",
    "refer": "ارجاع",
    "answer": "پاسخ",
    "approve": "تأیید پاسخ",
    "send_back": "بازگرداندن پاسخ برای تکمیل",
    "close": "پاسخ نهایی و بستن",
    "return_late": "بازگشت به ستاد به دلیل تأخیر",
    "escalate": "گزارش به سطح بالاتر",
    "reject": "رد",
    "reopen": "بازگشایی",
    "rate": "ثبت رضایت",
}


def is_owner(
    case: Case | CaseView, vault: IdentityVault, caller_number: str | None, national_id: str | None
) -> bool:
    # The number the case was filed from, not the caller's latest: another number never becomes owner.
    if caller_number and case.phone_hash:
        try:
            if vault.lookup_hash(normalise_phone(caller_number)) == case.phone_hash:
                return True
        except IntakeError:
            pass
    if not national_id:
        return False  # before reading the caller: no look-up for a proof that was not offered
    caller = case.caller
    if caller is None:
        return False
    if caller.national_id_hash:
        try:
            return vault.lookup_hash(parse_national_id(national_id)) == caller.national_id_hash
        except InvalidNationalId:
            return False
    return False


class MomentOut(BaseModel):
    iso: str
    jalali: str
    parts: dict[str, int]


class HistoryOut(BaseModel):
    at: MomentOut | None
    status: str | None
    # For the case's owner only: what was done and by which unit.
    action: str | None = None
    action_fa: str | None = None
    unit: str | None = None


class CaseStatusOut(BaseModel):
    """What the IVR reads. Fields marked "owner" are null for anyone who has not proved they filed it."""

    tracking_code: str
    status: str
    stage: str
    created: MomentOut | None
    due: MomentOut | None
    closed: MomentOut | None
    history: list[HistoryOut]
    owner_verified: bool
    has_answer: bool
    service: str | None = Field(description="owner")
    kind: str | None = Field(description="owner")
    urgent: bool | None = Field(description="owner")
    unit: str | None = Field(description="owner")
    unit_code: str | None = Field(description="owner")
    incomplete: bool | None = Field(description="owner")
    answer: str | None = Field(description="owner")
    rated: bool | None = Field(description="owner")


def _moment(value, tz: str) -> dict[str, Any] | None:
    """As domain.jalali's jalali_text and jalali_parts say it (a test holds them equal), with one
    conversion instead of two and the calendar's day looked up once per day: jdatetime's conversion
    costs about 0.1 ms, and a status look-up has three moments or more (issue 13)."""
    if value is None:
        return None
    moment = value if value.utcoffset() is not None else value.replace(tzinfo=dt.UTC)
    local = min(max(moment, EARLIEST), LATEST).astimezone(ZoneInfo(tz))
    year, month, day = _jalali_day(local.date())
    hour, minute = local.hour, local.minute
    return {
        "iso": value.isoformat(),
        "jalali": f"{year:04d}/{month:02d}/{day:02d} {hour:02d}:{minute:02d}",
        "parts": {"year": year, "month": month, "day": day, "hour": hour, "minute": minute},
    }


@lru_cache(maxsize=4096)
def _jalali_day(day: dt.date) -> tuple[int, int, int]:
    j = jdatetime.date.fromgregorian(date=day)
    return j.year, j.month, j.day


def case_status(case: Case | CaseView, tz: str, *, owner: bool) -> dict[str, Any]:
    """A stranger holding a code hears the stage and the dates only: not what the case is about
    (kind, urgency), not who holds it, not the answer. The owner hears everything but the notes."""
    status = CaseStatus(case.status)
    history = []
    for e in case.events:
        if e.action not in ACTION_FA:
            continue
        entry: dict[str, Any] = {"at": _moment(e.at, tz), "status": e.to_status}
        if owner:
            # Notes are internal (they may name people); the caller hears actions, not notes.
            entry |= {
                "action": e.action,
                "action_fa": ACTION_FA[e.action],
                "unit": e.unit.name_fa if e.unit else None,
            }
        history.append(entry)
    unit = case.current_unit
    return {
        "tracking_code": case.tracking_code,
        "status": status.value,
        "stage": STAGE_FA[status],
        "created": _moment(case.created_at, tz),
        "due": _moment(case.due_at, tz),
        "closed": _moment(case.closed_at, tz),
        "history": history,
        "owner_verified": owner,
        # Whether there is an answer decides if the IVR asks for the national ID to read it.
        "has_answer": bool(case.answer),
        "service": case.service if owner else None,
        "kind": case.kind if owner else None,
        "urgent": case.urgent if owner else None,
        "unit": unit.name_fa if owner and unit else None,
        "unit_code": unit.code if owner and unit else None,
        "incomplete": case.incomplete if owner else None,
        # The answer is read only to whoever filed the case (same number, or the national ID).
        "answer": case.answer if owner else None,
        "rated": (case.satisfaction is not None) if owner else None,
    }


# --- the IVR's look-up by code, without the ORM ---------------------------------------------------
# The status route reads one case, its history and two unit names: one SELECT (a LEFT JOIN of the
# case, its events and the units), not four lazy loads through the identity map, which cost more
# than the database (issue 13). The rows are shaped as the ORM objects case_status and is_owner
# read, so both serve the ORM's Case (escalations, the citizens' pages) and this view alike.


@dataclass(frozen=True)
class UnitView:
    name_fa: str
    code: str


@dataclass(frozen=True)
class EventView:
    at: dt.datetime
    action: str
    to_status: str | None
    unit: UnitView | None


@dataclass
class CallerView:
    national_id_hash: str | None


@dataclass
class CaseView:
    id: int
    tracking_code: str
    service: str
    kind: str
    urgent: bool
    status: str
    incomplete: bool
    answer: str | None
    satisfaction: int | None
    created_at: dt.datetime
    due_at: dt.datetime | None
    closed_at: dt.datetime | None
    phone_hash: str | None
    caller_id: int | None
    current_unit: UnitView | None
    events: list[EventView]
    _caller: CallerView | None = None
    _conn: Connection | None = None

    @property
    def caller(self) -> CallerView | None:
        """Read only when ownership is proved by national ID (as the ORM's lazy load would)."""
        if self._caller is None and self.caller_id is not None and self._conn is not None:
            digest = self._conn.scalar(_CALLER_HASH, {"caller": self.caller_id})
            self._caller = CallerView(digest)
        return self._caller


_case, _event, _alias, _callers = (Case.__table__, CaseEvent.__table__, CaseCode.__table__, Caller.__table__)
_current, _acting = Unit.__table__.alias("current_unit"), Unit.__table__.alias("acting_unit")
_own = _case.alias("own_code")  # the case a code names, apart from the case_file the query reads
_CASE_COLUMNS = (
    _case.c.id,
    _case.c.tracking_code,
    _case.c.service,
    _case.c.kind,
    _case.c.urgent,
    _case.c.status,
    _case.c.incomplete,
    _case.c.answer,
    _case.c.satisfaction,
    _case.c.created_at,
    _case.c.due_at,
    _case.c.closed_at,
    _case.c.phone_hash,
    _case.c.caller_id,
)


def _status_query(where):
    return (
        select(
            *_CASE_COLUMNS,
            _current.c.name_fa.label("unit_name"),
            _current.c.code.label("unit_code"),
            _event.c.at.label("event_at"),
            _event.c.action.label("event_action"),
            _event.c.to_status.label("event_to"),
            _acting.c.name_fa.label("event_unit_name"),
            _acting.c.code.label("event_unit_code"),
        )
        .select_from(
            _case.outerjoin(_current, _current.c.id == _case.c.current_unit_id)
            .outerjoin(_event, _event.c.case_id == _case.c.id)
            .outerjoin(_acting, _acting.c.id == _event.c.unit_id)
        )
        .where(where)
        .order_by(_event.c.id)
    )


# A case's own code or, failing that, an alias, in one statement: an unknown code costs one round
# trip, not two (issue 13). COALESCE evaluates the alias look-up only when the own code misses, so a
# known code reads the aliases not at all; both are unique-index look-ups at any size.
_BY_CODE_OR_ALIAS = _status_query(
    _case.c.id
    == func.coalesce(
        select(_own.c.id).where(_own.c.tracking_code == bindparam("code")).scalar_subquery(),
        select(_alias.c.case_id).where(_alias.c.code == bindparam("code")).scalar_subquery(),
    )
)
_CALLER_HASH = select(_callers.c.national_id_hash).where(_callers.c.id == bindparam("caller"))


def case_view_by_code(conn: Connection, code: str) -> CaseView | None:
    """The case a (parsed) tracking code names, by its own code or an alias, as case_status reads it."""
    rows = conn.execute(_BY_CODE_OR_ALIAS, {"code": code}).all()
    if not rows:
        return None
    first = rows[0]
    return CaseView(
        *first[: len(_CASE_COLUMNS)],
        current_unit=UnitView(first.unit_name, first.unit_code) if first.unit_name is not None else None,
        events=[
            EventView(
                row.event_at,
                row.event_action,
                row.event_to,
                UnitView(row.event_unit_name, row.event_unit_code)
                if row.event_unit_name is not None
                else None,
            )
            for row in rows
            if row.event_action is not None
        ],
        _conn=conn,
    )
