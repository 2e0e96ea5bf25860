"""Screening, referral down the hierarchy, and the automatic return of late cases (R10-R13, R15).

Every act is a state-machine transition, an append-only event and, where the caller should know, an
SMS queued in the same transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.core.security import IdentityVault
from backend.models import Case, CaseEvent, Referral, Unit, User
from backend.services.notifications import enqueue_sms
from backend.services.org import root_unit
from domain.case_state import CaseAction, next_status
from domain.deadlines import due_at
from domain.jalali import jalali_long_fa
from domain.profiles import ServiceProfile

# What a missed deadline costs the unit and its managers (R15).
LATE_PENALTY = 5.0


class WorkflowError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _act(
    session: Session,
    case: Case,
    action: CaseAction,
    *,
    actor: str,
    now: dt.datetime,
    unit: Unit | None,
    note: str | None = None,
    user: User | None = None,
) -> None:
    old = case.status
    try:
        case.status = next_status(case.status, action).value
    except ValueError as exc:
        raise WorkflowError("illegal_transition", str(exc)) from None
    case.updated_at = now
    session.add(
        CaseEvent(
            case=case,
            at=now,
            action=action.value,
            from_status=old,
            to_status=case.status,
            actor=actor,
            actor_user_id=user.id if user else None,
            unit_id=unit.id if unit else None,
            note=note,
        )
    )


def screen(
    session: Session,
    case: Case,
    *,
    category: str,
    urgent: bool,
    profile: ServiceProfile,
    actor: str,
    now: dt.datetime,
    kind: str | None = None,
    user: User | None = None,
) -> None:
    """The operator unit's screening (غربال): classified, marked normal or urgent."""
    if category not in profile.categories:
        raise WorkflowError("invalid_category", f"category must be one of {', '.join(profile.categories)}")
    if kind is not None:
        if kind not in profile.kinds:
            raise WorkflowError("invalid_kind", f"kind must be one of {', '.join(profile.kinds)}")
        case.kind = kind
    case.category, case.urgent = category, urgent
    _act(
        session,
        case,
        CaseAction.SCREEN,
        actor=actor,
        now=now,
        unit=case.current_unit,
        user=user,
        note=f"دسته: {profile.categories[category]}" + ("، فوری" if urgent else ""),
    )


def _is_below(unit: Unit, ancestor: Unit) -> bool:
    node = unit.parent
    while node is not None:
        if node.id == ancestor.id:
            return True
        node = node.parent
    return False


def refer(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    case: Case,
    to_unit: Unit,
    *,
    actor: str,
    now: dt.datetime,
    note: str | None = None,
    user: User | None = None,
) -> Referral:
    """Refer the case down the hierarchy; the receiving unit gets its own deadline (R11, R12)."""
    holder = case.current_unit
    if to_unit.service != case.service:
        raise WorkflowError("wrong_service", "a case is referred within its own service's organisation")
    if holder is not None and not _is_below(to_unit, holder) and holder.parent_id is not None:
        raise WorkflowError("not_below", "a unit refers cases only to units below it")
    _act(session, case, CaseAction.REFER, actor=actor, now=now, unit=to_unit, user=user, note=note)
    for open_referral in session.scalars(
        select(Referral).where(Referral.case_id == case.id, Referral.state == "open")
    ):
        open_referral.state, open_referral.closed_at = "referred_on", now
    rule = profile.deadline_rule(case.kind, case.urgent)
    referral = Referral(
        case=case,
        from_unit_id=holder.id if holder else None,
        to_unit=to_unit,
        referred_by_id=user.id if user else None,
        referred_at=now,
        due_at=due_at(now, rule, profile.calendar, profile.timezone),
        note=note,
    )
    session.add(referral)
    case.current_unit, case.due_at = to_unit, referral.due_at
    session.flush()
    enqueue_sms(
        session,
        vault,
        case,
        f"referred-{referral.id}",
        f"{profile.name_fa}: پرونده {case.tracking_code} برای رسیدگی به {to_unit.name_fa} ارجاع شد. "
        f"مهلت رسیدگی: {jalali_long_fa(referral.due_at, profile.timezone)}.",
        now=now,
    )
    return referral


def return_late(
    session: Session, vault: IdentityVault, profile: ServiceProfile, referral: Referral, *, now: dt.datetime
) -> bool:
    """A referral past its deadline: the case goes back to the central office, out of the unit's
    reach, and the unit and its managers lose score (R13, R15). Returns False if another worker
    (or an earlier run) already returned it: the claim is a conditional update, so it happens once.
    Raises WorkflowError, before claiming anything, if the case is in a state that cannot be
    returned: the referral stays open and the scheduler counts (and in the end quarantines) it."""
    case = referral.case
    try:
        next_status(case.status, CaseAction.RETURN_LATE)
    except ValueError as exc:
        raise WorkflowError("cannot_return_late", str(exc)) from None
    claimed = session.execute(
        update(Referral)
        .where(Referral.id == referral.id, Referral.state == "open", Referral.due_at <= now)
        .values(state="returned", closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return False
    session.refresh(referral)
    case, unit = referral.case, referral.to_unit
    center = root_unit(session, profile)
    _act(
        session,
        case,
        CaseAction.RETURN_LATE,
        actor="scheduler",
        now=now,
        unit=center,
        note=f"مهلت {unit.name_fa} به پایان رسید",
    )
    case.current_unit, case.due_at = center, None
    unit.score = max(0.0, unit.score - LATE_PENALTY)
    from backend.workflow.staff import managers_of, notify

    for manager in managers_of(session, unit):
        manager.score = max(0.0, manager.score - LATE_PENALTY)
    # The unit's managers and the level above are warned (R15).
    notify(
        session,
        [*managers_of(session, unit), *managers_of(session, unit.parent)],
        "warning",
        f"هشدار: مهلت پرونده {case.tracking_code} در {unit.name_fa} گذشت و پرونده به ستاد بازگشت.",
        f"late:{referral.id}",
        now=now,
        case=case,
    )
    enqueue_sms(
        session,
        vault,
        case,
        f"returned-{referral.id}",
        f"{profile.name_fa}: پرونده {case.tracking_code} به دلیل تأخیر واحد رسیدگی‌کننده به ستاد "
        "بازگشت و همچنان پیگیری می‌شود.",
        now=now,
    )
    return True


def late_referrals(session: Session, now: dt.datetime) -> list[tuple[int, str]]:
    """(referral id, tracking code) of open referrals past their deadline, the most overdue first.
    Driven by the database, not by timers: a scheduler that was down when a deadline passed finds
    the referral on its next run."""
    rows = session.execute(
        select(Referral.id, Case.tracking_code)
        .join(Case, Case.id == Referral.case_id)
        .where(Referral.state == "open", Referral.due_at <= now)
        .order_by(Referral.due_at, Referral.id)
    )
    return [(referral_id, code) for referral_id, code in rows]


def enforce_deadlines(
    session: Session, vault: IdentityVault, profiles: dict[str, ServiceProfile], now: dt.datetime
) -> int:
    """Return every late referral that can be returned, each in its own transaction, never twice.
    (The scheduler does the same with a lease, failure counts and quarantine: backend/scheduler.)"""
    returned = 0
    for referral_id, _code in late_referrals(session, now):
        referral = session.get(Referral, referral_id)
        try:
            if referral is not None and return_late(
                session, vault, profiles[referral.case.service], referral, now=now
            ):
                returned += 1
        except WorkflowError:
            session.rollback()
            continue
        session.commit()
    return returned


TRANSCRIPT_MAX = 20000
REJECT_REASONS = {"duplicate": "تکراری", "out_of_scope": "خارج از حوزه رسیدگی"}


def record_transcript(
    session: Session, case: Case, text: str, *, actor: str, now: dt.datetime, user: User | None = None
) -> None:
    """The operator's transcript of the caller's message (R10). Each save is a case event, so who
    typed what and when stays in the history; the case keeps the latest text."""
    text = text.strip()
    if len(text) > TRANSCRIPT_MAX:
        raise WorkflowError("transcript_too_long", f"a transcript has at most {TRANSCRIPT_MAX} characters")
    if text == (case.transcript or ""):
        return  # nothing changed: no event
    case.transcript = text or None
    case.updated_at = now
    session.add(
        CaseEvent(
            case=case,
            at=now,
            action="transcript",
            from_status=case.status,
            to_status=case.status,
            actor=actor,
            actor_user_id=user.id if user else None,
            unit_id=case.current_unit_id,
            note=text[:200] or "متن پیام پاک شد",
        )
    )


def reject(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    case: Case,
    why: str,
    reason: str,
    *,
    actor: str,
    now: dt.datetime,
    user: User | None = None,
) -> None:
    """Screening finds the case a duplicate or out of scope: rejected with a reason, and the caller
    is told by SMS (R10, R16)."""
    if why not in REJECT_REASONS:
        raise WorkflowError("invalid_reason", f"a rejection is one of {', '.join(REJECT_REASONS)}")
    reason = reason.strip()
    if not reason:
        raise WorkflowError("reason_required", "a rejection needs a reason the caller can read")
    _act(
        session,
        case,
        CaseAction.REJECT,
        actor=actor,
        now=now,
        unit=case.current_unit,
        user=user,
        note=f"{REJECT_REASONS[why]}: {reason}",
    )
    for open_referral in session.scalars(
        select(Referral).where(Referral.case_id == case.id, Referral.state == "open")
    ):
        open_referral.state, open_referral.closed_at = "rejected", now
    case.due_at, case.closed_at = None, now
    session.flush()
    enqueue_sms(
        session,
        vault,
        case,
        f"rejected-{len(case.events)}",
        f"{profile.name_fa}: پرونده {case.tracking_code} بررسی شد و "
        f"{REJECT_REASONS[why]} شناخته شد: {reason}",
        now=now,
    )
