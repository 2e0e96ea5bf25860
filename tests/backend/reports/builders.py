"""Cases built for report tests, straight into the database with the milestones a test wants."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Case, Referral, Unit

TEHRAN = ZoneInfo("Asia/Tehran")
_codes = itertools.count(1)
HOUR = dt.timedelta(hours=1)


def tehran(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TEHRAN).astimezone(dt.UTC)


def unit(db: Session, code: str) -> Unit:
    return db.scalar(select(Unit).where(Unit.code == code))


def make_case(
    db: Session,
    created: dt.datetime,
    *,
    unit_code: str = "1482-hq",
    service: str = "1482",
    kind: str = "complaint",
    category: str | None = "other",
    channel: str = "phone",
    status: str = "referred",
    urgent: bool = False,
    screened_after: dt.timedelta | None = None,
    referred_after: dt.timedelta | None = None,
    answered_after: dt.timedelta | None = None,
    late_returns: int = 0,
    escalation_level: int = 0,
    satisfaction: int | None = None,
) -> Case:
    handler = unit(db, unit_code)
    case = Case(
        tracking_code=f"9{next(_codes):09d}",
        service=service,
        kind=kind,
        category=category,
        channel=channel,
        status=status,
        urgent=urgent,
        created_at=created,
        current_unit_id=handler.id,
        handling_unit_id=handler.id,
        first_screened_at=created + screened_after if screened_after is not None else None,
        first_referred_at=created + referred_after if referred_after is not None else None,
        first_answered_at=created + answered_after if answered_after is not None else None,
        late_returns=late_returns,
        escalation_level=escalation_level,
        satisfaction=satisfaction,
    )
    db.add(case)
    db.flush()
    return case


def late_return(db: Session, case: Case, unit_code: str, at: dt.datetime) -> None:
    db.add(
        Referral(
            case_id=case.id,
            to_unit_id=unit(db, unit_code).id,
            referred_at=at - 48 * HOUR,
            due_at=at - HOUR,
            state="returned",
            closed_at=at,
        )
    )
    db.flush()
