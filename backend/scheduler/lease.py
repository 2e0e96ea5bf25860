"""A lease row decides which scheduler acts. APScheduler 3 inside a multi-worker web server would fire
every job once per worker; here every scheduler process (one per machine, say) ticks, and only the
lease holder works. A holder that dies stops renewing, and another takes over when the lease ends.

Taking the lease once per tick is not enough: a tick can outlast it (a slow SMS gateway) and then two
schedulers act at once. So the holder renews it inside the transaction of every act (`renew`): the act
commits only while the lease is still its own, and a scheduler that finds it lost stops at once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.models import SchedulerLease

NAME = "main"
TTL = dt.timedelta(seconds=45)


def renew(
    session: Session, holder: str, now: dt.datetime, *, ttl: dt.timedelta = TTL, name: str = NAME
) -> bool:
    """Extend the lease inside the caller's transaction (not committed here). True if `holder`
    holds it until now + ttl. The row stays locked until the caller commits, so on PostgreSQL no
    other scheduler can take the lease while the act it fences is being written."""
    renewed = session.execute(
        update(SchedulerLease)
        .where(
            SchedulerLease.name == name, or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now)
        )
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    ).rowcount
    return renewed == 1


def acquire(
    session: Session, holder: str, now: dt.datetime, *, ttl: dt.timedelta = TTL, name: str = NAME
) -> bool:
    """Take or renew the lease. True if `holder` holds it until now + ttl."""
    if renew(session, holder, now, ttl=ttl, name=name):
        session.commit()
        return True
    try:
        session.execute(insert(SchedulerLease).values(name=name, holder=holder, expires_at=now + ttl))
        session.commit()
        return True
    except IntegrityError:  # someone else holds it
        session.rollback()
        return False


def release(session: Session, holder: str, *, name: str = NAME) -> None:
    session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .values(expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    )
    session.commit()
