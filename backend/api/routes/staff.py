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
from sqlalchemy import func, select

from backend.api.deps import DbSession, Now, Vault, current_user
from backend.api.errors import ApiError
from backend.models import Case, Notice, Unit, User
from backend.services.intake import case_by_code
from backend.services.profiles import get_profile
from backend.workflow import answers, referrals
from backend.workflow.citizen import CitizenActError, escalate_case
from backend.workflow.staff import reset_password
from domain.case_state import OPEN_STATUSES, STAGE_FA, CaseStatus
from domain.jalali import jalali_text
from domain.tracking_code import InvalidTrackingCode, parse_tracking_code

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])
Staff = Annotated[User, Depends(current_user)]


def visible_unit_ids(db, user: User) -> set[int] | None:
    """None means every unit."""
    if user.role in ("admin", "supervisor"):
        return None
    if user.role == "operator" and user.unit is not None:
        return set(db.scalars(select(Unit.id).where(Unit.service == user.unit.service)))
    if user.unit is None:
        return set()
    ids, frontier = {user.unit.id}, [user.unit]
    while frontier:
        for child in frontier.pop().children:
            ids.add(child.id)
            frontier.append(child)
    return ids


def load_visible(db, user: User, code: str) -> Case:
    try:
        code = parse_tracking_code(code)
    except InvalidTrackingCode as exc:
        raise ApiError(422, "invalid_tracking_code", str(exc)) from None
    case = case_by_code(db, code)  # its own code or one an IVR node told the caller
    visible = visible_unit_ids(db, user)
    # Out of reach looks the same as absent: a unit learns nothing of cases it does not hold.
    if case is None or (visible is not None and case.current_unit_id not in visible):
        raise ApiError(404, "case_not_found", "no case with this tracking code in your reach")
    return case


def load_held(db, user: User, code: str) -> Case:
    case = load_visible(db, user, code)
    if user.role != "admin" and case.current_unit_id != user.unit_id:
        raise ApiError(403, "not_holder", "only the unit holding the case can act on it")
    return case


def case_view(case: Case, now) -> dict[str, Any]:
    due = case.due_at
    return {
        "tracking_code": case.tracking_code,
        "service": case.service,
        "kind": case.kind,
        "category": case.category,
        "urgent": case.urgent,
        "channel": case.channel,
        "status": case.status,
        "stage": STAGE_FA[CaseStatus(case.status)],
        "unit": case.current_unit.code if case.current_unit else None,
        "due_at": due.isoformat() if due else None,
        "due_jalali": jalali_text(due) if due else None,
        "seconds_left": int((due - now).total_seconds()) if due else None,
        "description": case.description,
        "transcript": case.transcript,
        "answer": case.answer,
        "incomplete": case.incomplete,
        "escalation_level": case.escalation_level,
        "satisfaction": case.satisfaction,
        "recordings": [
            {"kind": r.kind, "path": r.path, "seconds": r.duration_seconds} for r in case.recordings
        ],
        "history": [
            {
                "at": e.at.isoformat(),
                "action": e.action,
                "status": e.to_status,
                "actor": e.actor,
                "unit": e.unit.code if e.unit else None,
                "note": e.note,
            }
            for e in case.events
        ],
    }


def _commit_view(db, case: Case, now) -> dict[str, Any]:
    db.commit()
    db.refresh(case)
    return case_view(case, now)


def _workflow(call):
    try:
        return call()
    except referrals.WorkflowError as exc:
        raise ApiError(409, exc.code, str(exc)) from None


@router.get("/inbox")
def inbox(user: Staff, db: DbSession, now: Now) -> dict[str, Any]:
    """What the unit holds, soonest deadline first. Opening it is what keeps a manager's password (R14)."""
    user.last_inbox_at = now
    held = db.scalars(
        select(Case).where(
            Case.current_unit_id == user.unit_id, Case.status.in_([s.value for s in OPEN_STATUSES])
        )
    ).all()
    held = sorted(held, key=lambda c: (c.due_at is None, c.due_at or now))
    notices = db.scalars(
        select(Notice).where(Notice.user_id == user.id, Notice.read_at.is_(None)).order_by(Notice.id)
    ).all()
    db.commit()
    return {
        "unit": user.unit.code if user.unit else None,
        "cases": [case_view(c, now) for c in held],
        "notices": [
            {"id": n.id, "kind": n.kind, "text": n.text, "at": n.created_at.isoformat()} for n in notices
        ],
    }


@router.get("/cases/{code}")
def read_case(code: str, user: Staff, db: DbSession, now: Now) -> dict[str, Any]:
    return case_view(load_visible(db, user, code), now)


NOTE_MAX = 4000  # a note explains an act; the long text is the answer (AnswerIn)


class ScreenIn(BaseModel):
    category: str = Field(max_length=40)
    urgent: bool
    kind: str | None = Field(default=None, max_length=40)


@router.post("/cases/{code}/screen")
def screen_case(code: str, body: ScreenIn, user: Staff, db: DbSession, now: Now) -> dict[str, Any]:
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


class ReferIn(BaseModel):
    unit: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=NOTE_MAX)


@router.post("/cases/{code}/referrals")
def refer_case(
    code: str, body: ReferIn, user: Staff, db: DbSession, vault: Vault, now: Now
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


class AnswerIn(BaseModel):
    text: str = Field(min_length=1, max_length=20000)


@router.post("/cases/{code}/answer")
def answer_case(
    code: str, body: AnswerIn, user: Staff, db: DbSession, vault: Vault, now: Now
) -> dict[str, Any]:
    case = load_held(db, user, code)
    _workflow(
        lambda: answers.answer(
            db, vault, get_profile(case.service), case, body.text, actor=user.username, now=now, user=user
        )
    )
    return _commit_view(db, case, now)


class NoteIn(BaseModel):
    note: str | None = Field(default=None, max_length=NOTE_MAX)


@router.post("/cases/{code}/approve")
def approve_case(
    code: str, body: NoteIn, user: Staff, db: DbSession, vault: Vault, now: Now
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


@router.post("/cases/{code}/send-back")
def send_back_case(
    code: str, body: NoteIn, user: Staff, db: DbSession, vault: Vault, now: Now
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


@router.post("/cases/{code}/escalations")
def escalate_for_citizen(
    code: str, body: NoteIn, user: Staff, db: DbSession, vault: Vault, now: Now
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


@router.get("/units")
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


@router.get("/scores")
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


class PasswordIn(BaseModel):
    password: str = Field(min_length=10, max_length=256)


@router.post("/users/{username}/password")
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
