"""The staff API: the inbox, acts on cases, notices, scores, password reset (R10-R15, R22).

Scope: a manager or staff member sees the cases held by their unit and the units below it; an
operator sees their service; supervisors and administrators see all. Only the unit that holds a case
may act on it, so a case returned for lateness is out of the late unit's reach at once. No response
here carries a complainant's national ID or phone number (R9).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import func, select, update

from backend.api.deps import DbSession, Now, Vault, current_user
from backend.api.errors import ApiError, error_responses
from backend.api.schemas import RequestBody, TrackingCodePath
from backend.models import Case, Notice, Unit, User
from backend.services.profiles import get_profile
from backend.services.staff_access import (
    case_view,
    load_held,
    load_visible,
    mark_notice_read,
    open_inbox,
    visible_unit_ids,
)
from backend.workflow import answers, referrals
from backend.workflow.citizen import CitizenActError, escalate_case
from backend.workflow.staff import reset_password

router = APIRouter(
    prefix="/api/v1/staff", tags=["staff"], responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429)
)
Staff = Annotated[User, Depends(current_user)]


class RecordingOut(BaseModel):
    kind: str
    path: str
    seconds: float | None


class HistoryItemOut(BaseModel):
    at: str
    action: str
    status: str | None
    actor: str
    unit: str | None
    note: str | None


class CaseView(BaseModel):
    """A case as staff see it: never the complainant's national ID or phone number (R9)."""

    tracking_code: str
    service: str
    kind: str
    category: str | None
    urgent: bool
    channel: str
    status: str
    stage: str
    unit: str | None
    due_at: str | None
    due_jalali: str | None
    seconds_left: int | None
    description: str | None
    transcript: str | None
    answer: str | None
    incomplete: bool
    escalation_level: int
    satisfaction: int | None
    recordings: list[RecordingOut]
    history: list[HistoryItemOut]


class UnitOut(BaseModel):
    code: str
    name_fa: str
    level: str
    service: str
    parent: str | None


class UnitScore(BaseModel):
    unit: str
    score: float


class ServiceSatisfaction(BaseModel):
    service: str
    average: float
    ratings: int


class ManagerScore(BaseModel):
    username: str
    unit: str
    score: float
    revoked: bool


class ScoresOut(BaseModel):
    units: list[UnitScore]
    satisfaction: list[ServiceSatisfaction]
    managers: list[ManagerScore]


class PasswordIssued(BaseModel):
    status: str


def _commit_view(db, case: Case, now) -> dict[str, Any]:
    db.commit()
    db.refresh(case)
    return case_view(case, now)


def _workflow(call):
    try:
        return call()
    except referrals.WorkflowError as exc:
        raise ApiError(409, exc.code, str(exc)) from None


def notice_view(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.id,
        "kind": notice.kind,
        "text": notice.text,
        "at": notice.created_at.isoformat(),
        "read_at": notice.read_at.isoformat() if notice.read_at else None,
    }


class NoticeOut(BaseModel):
    id: int
    kind: str
    text: str
    at: str
    read_at: str | None


class NoticesRead(BaseModel):
    marked: int


class InboxOut(BaseModel):
    unit: str | None
    cases: list[CaseView]
    notices: list[NoticeOut]
    unread_notices: int


@router.get("/inbox", response_model=InboxOut)
def inbox(user: Staff, db: DbSession, now: Now) -> dict[str, Any]:
    """What the unit holds, soonest deadline first. Opening it is what keeps a manager's password (R14)."""
    held, notices = open_inbox(db, user, now)
    db.commit()
    return {
        "unit": user.unit.code if user.unit else None,
        "cases": [case_view(c, now) for c in held],
        "notices": [notice_view(n) for n in notices],
        "unread_notices": sum(1 for n in notices if n.read_at is None),
    }


@router.post("/notices/read-all", response_model=NoticesRead)
def read_all_notices(user: Staff, db: DbSession, now: Now) -> dict[str, int]:
    """Mark every unread notice of the caller read."""
    result = db.execute(
        update(Notice)
        .where(Notice.user_id == user.id, Notice.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    return {"marked": result.rowcount or 0}


@router.post("/notices/{notice_id}/read", response_model=NoticeOut)
def read_notice(notice_id: int, user: Staff, db: DbSession, now: Now) -> dict[str, Any]:
    """Mark one notice read. Someone else's notice looks the same as a missing one."""
    notice = mark_notice_read(db, user, notice_id, now)
    if notice is None:
        raise ApiError(404, "notice_not_found", "no such notice in your inbox")
    db.commit()
    return notice_view(notice)


@router.get("/cases/{code}", response_model=CaseView)
def read_case(code: TrackingCodePath, user: Staff, db: DbSession, now: Now) -> dict[str, Any]:
    return case_view(load_visible(db, user, code), now)


NOTE_MAX = 4000  # a note explains an act; the long text is the answer (AnswerIn)


class ScreenIn(RequestBody):
    category: str = Field(max_length=40)
    urgent: bool
    kind: str | None = Field(default=None, max_length=40)


@router.post("/cases/{code}/screen", response_model=CaseView)
def screen_case(
    code: TrackingCodePath, body: ScreenIn, user: Staff, db: DbSession, now: Now
) -> dict[str, Any]:
    case = load_held(db, user, code)
    _workflow(
        lambda: referrals.screen(
            db,
            case,
            category=body.category,
            urgent=body.urgent,
            kind=body.kind,
            profile=get_profile(case.service),
            actor=user.username,
            now=now,
            user=user,
        )
    )
    return _commit_view(db, case, now)


class ReferIn(RequestBody):
    unit: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=NOTE_MAX)


@router.post("/cases/{code}/referrals", response_model=CaseView)
def refer_case(
    code: TrackingCodePath, body: ReferIn, user: Staff, db: DbSession, vault: Vault, now: Now
) -> dict[str, Any]:
    case = load_held(db, user, code)
    target = db.scalar(select(Unit).where(Unit.code == body.unit))
    if target is None:
        raise ApiError(422, "unknown_unit", f"no unit {body.unit!r}")
    _workflow(
        lambda: referrals.refer(
            db,
            vault,
            get_profile(case.service),
            case,
            target,
            actor=user.username,
            now=now,
            note=body.note,
            user=user,
        )
    )
    return _commit_view(db, case, now)


class AnswerIn(RequestBody):
    text: str = Field(min_length=1, max_length=20000)


@router.post("/cases/{code}/answer", response_model=CaseView)
def answer_case(
    code: TrackingCodePath, body: AnswerIn, user: Staff, db: DbSession, vault: Vault, now: Now
) -> dict[str, Any]:
    case = load_held(db, user, code)
    _workflow(
        lambda: answers.answer(
            db, vault, get_profile(case.service), case, body.text, actor=user.username, now=now, user=user
        )
    )
    return _commit_view(db, case, now)


class NoteIn(RequestBody):
    note: str | None = Field(default=None, max_length=NOTE_MAX)


@router.post("/cases/{code}/approve", response_model=CaseView)
def approve_case(
    code: TrackingCodePath, body: NoteIn, user: Staff, db: DbSession, vault: Vault, now: Now
) -> dict[str, Any]:
    case = load_held(db, user, code)
    _workflow(
        lambda: answers.approve(
            db,
            vault,
            get_profile(case.service),
            case,
            actor=user.username,
            now=now,
            user=user,
            note=body.note,
        )
    )
    return _commit_view(db, case, now)


@router.post("/cases/{code}/send-back", response_model=CaseView)
def send_back_case(
    code: TrackingCodePath, body: NoteIn, user: Staff, db: DbSession, vault: Vault, now: Now
) -> dict[str, Any]:
    case = load_held(db, user, code)
    _workflow(
        lambda: answers.send_back(
            db,
            vault,
            get_profile(case.service),
            case,
            body.note or "",
            actor=user.username,
            now=now,
            user=user,
        )
    )
    return _commit_view(db, case, now)


@router.post("/cases/{code}/escalations", response_model=CaseView)
def escalate_for_citizen(
    code: TrackingCodePath, body: NoteIn, user: Staff, db: DbSession, vault: Vault, now: Now
) -> dict[str, Any]:
    """An operator records a citizen's re-report from another channel (R8)."""
    if user.role not in ("operator", "admin"):
        raise ApiError(403, "forbidden", "operators record citizens' re-reports")
    case = load_visible(db, user, code)
    try:
        escalate_case(
            db, vault, get_profile(case.service), case, now=now, actor=user.username, note=body.note
        )
    except CitizenActError as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    return _commit_view(db, case, now)


@router.get("/units", response_model=list[UnitOut])
def units(user: Staff, db: DbSession) -> list[dict[str, Any]]:
    """The units in reach, with their parent: where a case can be referred."""
    visible = visible_unit_ids(db, user)
    return [
        {
            "code": u.code,
            "name_fa": u.name_fa,
            "level": u.level,
            "service": u.service,
            "parent": u.parent.code if u.parent else None,
        }
        for u in db.scalars(select(Unit).order_by(Unit.code))
        if visible is None or u.id in visible
    ]


@router.get("/scores", response_model=ScoresOut)
def scores(user: Staff, db: DbSession) -> dict[str, Any]:
    visible = visible_unit_ids(db, user)
    units = [u for u in db.scalars(select(Unit).order_by(Unit.code)) if visible is None or u.id in visible]
    managers = db.scalars(
        select(User).where(User.role == "manager", User.unit_id.in_([u.id for u in units]))
    ).all()
    # Citizens' satisfaction (R21), per service.
    ratings = db.execute(
        select(Case.service, func.avg(Case.satisfaction), func.count(Case.satisfaction))
        .where(Case.satisfaction.is_not(None))
        .group_by(Case.service)
    ).all()
    return {
        "units": [{"unit": u.code, "score": u.score} for u in units],
        "satisfaction": [{"service": s, "average": round(float(a), 2), "ratings": n} for s, a, n in ratings],
        "managers": [
            {
                "username": m.username,
                "unit": m.unit.code,
                "score": m.score,
                "revoked": m.password_revoked_at is not None,
            }
            for m in managers
        ],
    }


class PasswordIn(RequestBody):
    password: str = Field(min_length=10, max_length=256)


@router.post("/users/{username}/password", response_model=PasswordIssued)
def new_password(username: str, body: PasswordIn, user: Staff, db: DbSession, now: Now) -> dict[str, str]:
    target = db.scalar(select(User).where(User.username == username))
    if target is None:
        raise ApiError(404, "not_found", "no such user")
    try:
        reset_password(db, user, target, body.password, now=now)
    except PermissionError as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    db.commit()
    return {"status": "password issued"}
