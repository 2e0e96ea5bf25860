"""What a citizen can do to a filed case by phone: re-report it (R8) and rate its handling (R21)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.security import IdentityVault
from backend.models import Case, CaseEvent, Referral, Unit
from backend.services.notifications import enqueue_sms
from domain.case_state import CaseAction, CaseStatus, next_status
from domain.deadlines import due_at
from domain.profiles import ServiceProfile

# A second "press 9" within this time is the same complaint, not a new escalation.
REPEAT_WINDOW = dt.timedelta(hours=24)


class CitizenActError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Escalation:
    status: str
    level: int
    unit_code: str | None
    already: bool


def escalate_case(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    case: Case,
    *,
    now: dt.datetime,
    actor: str = "ivr",
    note: str | None = None,
) -> Escalation:
    """Raise the case to the level above its current unit, and tell that level's managers."""
    last = session.scalar(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, CaseEvent.action == "escalate")
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    if last is not None and now - last.at < REPEAT_WINDOW:
        unit_code = case.current_unit.code if case.current_unit else None
        return Escalation(case.status, case.escalation_level, unit_code, already=True)
    try:
        new_status = next_status(case.status, CaseAction.ESCALATE)
    except ValueError as exc:
        raise CitizenActError("cannot_escalate", str(exc)) from None
    current: Unit | None = case.current_unit
    target = current.parent if current is not None and current.parent is not None else current
    old_status = case.status
    case.status = new_status.value
    case.escalation_level += 1
    case.current_unit = target
    case.updated_at = now
    _hand_referral_up(session, profile, case, target, now=now)
    session.add(
        CaseEvent(
            case=case,
            at=now,
            action="escalate",
            from_status=old_status,
            to_status=new_status.value,
            actor=actor,
            unit_id=target.id if target else None,
            note=note or "شهروند اعلام کرد پرونده پیگیری نشده است",
        )
    )
    session.flush()
    from backend.workflow.staff import managers_of, notify

    # The managers at the level the case was raised to hear of it at once (R8).
    notify(
        session,
        managers_of(session, target),
        "escalation",
        f"پرونده {case.tracking_code} از سوی شهروند پیگیری‌نشده اعلام شد و به این واحد رسید.",
        f"escalation:{case.id}:{case.escalation_level}",
        now=now,
        case=case,
    )
    enqueue_sms(
        session,
        vault,
        case,
        f"escalated-{case.escalation_level}",
        f"{profile.name_fa}: گزارش شما درباره پرونده {case.tracking_code} به مدیران سطح بالاتر "
        "فرستاده شد و پیگیری می‌شود.",
        now=now,
    )
    return Escalation(case.status, case.escalation_level, target.code if target else None, already=False)


def _hand_referral_up(
    session: Session, profile: ServiceProfile, case: Case, target: Unit | None, *, now: dt.datetime
) -> None:
    """The unit the case is taken from no longer holds it: its open referral ends ("escalated"), and
    the level above gets its own referral and deadline. Left open, the old referral would fall due
    later and return a case that is no longer that unit's (issue 8)."""
    handed = False
    for open_referral in session.scalars(
        select(Referral).where(Referral.case_id == case.id, Referral.state == "open")
    ):
        open_referral.state, open_referral.closed_at = "escalated", now
        handed = True
    # The central office has no deadline over itself: a case raised to the top waits there, as a
    # returned case does. Only a case that was with a unit on a deadline gets a new one.
    if not handed:
        return
    if target is None or target.parent is None:
        case.due_at = None
        return
    rule = profile.deadline_rule(case.kind, case.urgent)
    referral = Referral(
        case=case,
        # Its answer goes up the hierarchy from the level it was raised to.
        from_unit_id=target.parent_id,
        to_unit=target,
        referred_at=now,
        due_at=due_at(now, rule, profile.calendar, profile.timezone),
        note="ارجاع به سطح بالاتر در پی پیگیری شهروند",
    )
    session.add(referral)
    case.due_at = referral.due_at


def rate_case(session: Session, case: Case, rating: int, *, now: dt.datetime, actor: str = "ivr") -> None:
    if case.status != CaseStatus.CLOSED.value:
        raise CitizenActError("case_not_closed", "only a closed case can be rated")
    if not 1 <= rating <= 5:
        raise CitizenActError("invalid_rating", "a rating is a whole number from 1 to 5")
    case.satisfaction = rating
    session.add(
        CaseEvent(
            case=case,
            at=now,
            action="rate",
            from_status=case.status,
            to_status=case.status,
            actor=actor,
            note=f"رضایت: {rating} از ۵",
        )
    )
