"""What a staff member may see and act on, and how a case and an inbox look to staff. Shared by the
staff API and the console, so both apply one rule (R9-R15, R22).

Scope: a manager or staff member sees the cases held by their unit and the units below it; an
operator sees their service; supervisors and administrators see all. Only the unit that holds a case
may act on it. Nothing here carries a complainant's national ID or phone number (R9).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.api.errors import ApiError
from backend.models import Case, Notice, Unit, User
from backend.services.intake import case_by_code
from domain.case_state import OPEN_STATUSES, STAGE_FA, CaseStatus
from domain.jalali import jalali_text
from domain.tracking_code import InvalidTrackingCode, parse_tracking_code

# Notices read in the last week stay listed, so one read by mistake can be found again.
NOTICES_KEPT_READ = dt.timedelta(days=7)


def visible_unit_ids(db: Session, user: User) -> set[int] | None:
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


def may_see(db: Session, user: User, case: Case) -> bool:
    visible = visible_unit_ids(db, user)
    return visible is None or case.current_unit_id in visible


def load_visible(db: Session, user: User, code: str) -> Case:
    try:
        code = parse_tracking_code(code)
    except InvalidTrackingCode as exc:
        raise ApiError(422, "invalid_tracking_code", str(exc)) from None
    case = case_by_code(db, code)  # its own code or one an IVR node told the caller
    # Out of reach looks the same as absent: a unit learns nothing of cases it does not hold.
    if case is None or not may_see(db, user, case):
        raise ApiError(404, "case_not_found", "no case with this tracking code in your reach")
    return case


def holds(user: User, case: Case) -> bool:
    """Only the holder acts (an administrator may act for anyone)."""
    return user.role == "admin" or (user.unit_id is not None and case.current_unit_id == user.unit_id)


def load_held(db: Session, user: User, code: str) -> Case:
    case = load_visible(db, user, code)
    if not holds(user, case):
        raise ApiError(403, "not_holder", "only the unit holding the case can act on it")
    return case


def case_view(case: Case, now: dt.datetime) -> dict[str, Any]:
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


def open_inbox(db: Session, user: User, now: dt.datetime) -> tuple[list[Case], list[Notice]]:
    """What the unit holds, soonest deadline first, and the user's notices. Opening it is what keeps
    a manager's password (R14): the caller commits."""
    user.last_inbox_at = now
    held = db.scalars(
        select(Case).where(
            Case.current_unit_id == user.unit_id, Case.status.in_([s.value for s in OPEN_STATUSES])
        )
    ).all()
    held = sorted(held, key=lambda c: (c.due_at is None, c.due_at or now))
    notices = db.scalars(
        select(Notice)
        .where(
            Notice.user_id == user.id,
            or_(Notice.read_at.is_(None), Notice.read_at >= now - NOTICES_KEPT_READ),
        )
        .order_by(Notice.id)
    ).all()
    return list(held), list(notices)


def mark_notice_read(db: Session, user: User, notice_id: int, now: dt.datetime) -> Notice | None:
    """Someone else's notice looks the same as a missing one (None)."""
    # An id beyond the column's range is absent too, not a database error.
    notice = db.get(Notice, notice_id) if 0 < notice_id < 2**31 else None
    if notice is None or notice.user_id != user.id:
        return None
    if notice.read_at is None:  # the first reading is the one kept
        notice.read_at = now
    return notice
