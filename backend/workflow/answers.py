"""The answer and its way up (R11): the unit holding the case answers; the answer goes to the unit
that referred it, which approves it on up or sends it back; at the top it is approved and closed,
and the caller is told, with a request to rate the handling (R16, R21)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.security import IdentityVault
from backend.models import Case, Referral, Unit, User
from backend.services.notifications import enqueue_sms
from backend.services.org import root_unit
from backend.workflow.referrals import WorkflowError, _act
from domain.case_state import CaseAction
from domain.deadlines import due_at
from domain.profiles import ServiceProfile


def _open_referral(session: Session, case: Case, unit: Unit) -> Referral | None:
    return session.scalar(
        select(Referral)
        .where(Referral.case_id == case.id, Referral.to_unit_id == unit.id, Referral.state == "open")
        .order_by(Referral.id.desc())
    )


def _referral_to(session: Session, case: Case, unit: Unit) -> Referral | None:
    """The latest referral that brought the case to `unit` (whoever referred it there is its superior)."""
    return session.scalar(
        select(Referral)
        .where(Referral.case_id == case.id, Referral.to_unit_id == unit.id)
        .order_by(Referral.id.desc())
    )


def answer(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    case: Case,
    text: str,
    *,
    actor: str,
    now: dt.datetime,
    user: User | None = None,
) -> None:
    if not text.strip():
        raise WorkflowError("empty_answer", "an answer needs text")
    holder = case.current_unit
    _act(session, case, CaseAction.ANSWER, actor=actor, now=now, unit=holder, user=user, note=text)
    case.answer = text.strip()
    referral = _open_referral(session, case, holder) if holder else None
    if referral is not None:
        referral.state, referral.closed_at = "answered", now
    # The answer goes up to whoever referred the case here (the central office if nobody did).
    superior = (
        referral.from_unit if referral is not None and referral.from_unit else root_unit(session, profile)
    )
    case.current_unit, case.due_at = superior, None
    session.flush()
    enqueue_sms(
        session,
        vault,
        case,
        f"answered-{len(case.events)}",
        f"{profile.name_fa}: برای پرونده {case.tracking_code} پاسخ ثبت شد و در حال تأیید است.",
        now=now,
    )


def approve(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    case: Case,
    *,
    actor: str,
    now: dt.datetime,
    user: User | None = None,
    note: str | None = None,
) -> str:
    """Approve the answer at the current level: on up, or closed at the top. Returns the new status."""
    holder = case.current_unit
    top = root_unit(session, profile)
    if holder is None or holder.id == top.id:
        _act(session, case, CaseAction.CLOSE, actor=actor, now=now, unit=holder, user=user, note=note)
        case.closed_at, case.due_at = now, None
        enqueue_sms(
            session,
            vault,
            case,
            "closed",
            f"{profile.name_fa}: پرونده {case.tracking_code} پاسخ نهایی گرفت و بسته شد. پاسخ را با تماس "
            f"با {profile.number} و وارد کردن کد رهگیری بشنوید. لطفاً رضایت خود را با فرستادن عددی از ۱ تا ۵ "
            "در پاسخ همین پیامک اعلام کنید.",
            now=now,
        )
        return case.status
    _act(session, case, CaseAction.APPROVE, actor=actor, now=now, unit=holder, user=user, note=note)
    came_from = _referral_to(session, case, holder)
    case.current_unit = came_from.from_unit if came_from is not None and came_from.from_unit else top
    return case.status


def send_back(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    case: Case,
    note: str,
    *,
    actor: str,
    now: dt.datetime,
    user: User | None = None,
) -> Referral:
    """The answer is not good enough: back to the unit that gave it, with a fresh deadline."""
    answered = session.scalar(
        select(Referral)
        .where(Referral.case_id == case.id, Referral.state == "answered")
        .order_by(Referral.id.desc())
    )
    if answered is None:
        raise WorkflowError("nothing_to_send_back", "no unit has answered this case")
    holder = case.current_unit
    _act(
        session, case, CaseAction.SEND_BACK, actor=actor, now=now, unit=answered.to_unit, user=user, note=note
    )
    answered.state = "sent_back"
    rule = profile.deadline_rule(case.kind, case.urgent)
    referral = Referral(
        case=case,
        from_unit_id=answered.from_unit_id or (holder.id if holder else None),
        to_unit=answered.to_unit,
        referred_by_id=user.id if user else None,
        referred_at=now,
        due_at=due_at(now, rule, profile.calendar, profile.timezone),
        note=note,
    )
    session.add(referral)
    case.current_unit, case.due_at, case.answer = answered.to_unit, referral.due_at, None
    session.flush()
    return referral
