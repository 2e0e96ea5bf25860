"""Keeps a case's report milestones (first screening, first referral, first answer, late returns, the
unit handling it) in step with the events written for it. One listener, so no act in the workflow can
forget it; the migration that added the columns filled them from the existing history."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from backend.models.case import Case, CaseEvent, Referral

FIRST = {"screen": "first_screened_at", "refer": "first_referred_at", "answer": "first_answered_at"}


def _case_of(session: Session, obj: CaseEvent | Referral) -> Case | None:
    if obj.case is not None:
        return obj.case
    return session.get(Case, obj.case_id) if obj.case_id is not None else None


@event.listens_for(Session, "before_flush")
def _keep_milestones(session: Session, _ctx, _instances) -> None:
    for obj in list(session.new):
        if isinstance(obj, CaseEvent):
            case = _case_of(session, obj)
            if case is None:
                continue
            column = FIRST.get(obj.action)
            if column is not None and getattr(case, column) is None:
                setattr(case, column, obj.at)
            elif obj.action == "return_late":
                case.late_returns = (case.late_returns or 0) + 1
        elif isinstance(obj, Referral):
            case = _case_of(session, obj)
            unit_id = obj.to_unit.id if obj.to_unit is not None else obj.to_unit_id
            if case is not None and unit_id is not None:
                case.handling_unit_id = unit_id
