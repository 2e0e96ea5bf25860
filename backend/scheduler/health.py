"""What the scheduler remembers about its own work, in the database: when each job last ran clean,
and the items that keep failing (counted, then quarantined). Read by `didehban scheduler --status`
and by /healthz for administrators."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backend.models import OutboundMessage, SchedulerFailure, SchedulerJobRun, SchedulerLease

JOBS = ("returns", "revocations", "digest", "reports", "sms")
# A poisoned item is tried this many times (one tick each), then set aside for an administrator.
QUARANTINE_AFTER = 3

_LONG_NUMBER = re.compile(r"\d{7,}")


def describe(exc: BaseException) -> str:
    """An error as it may be stored and logged: no SQL parameters, no long numbers (a phone number
    or a national ID in some library's message), bounded length."""
    text = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
    text = _LONG_NUMBER.sub("[number]", f"{type(exc).__name__}: {text}".strip())
    return text[:300]


def failures_of(session: Session, job: str) -> dict[str, bool]:
    """The job's failing items: item -> quarantined?"""
    rows = session.execute(
        select(SchedulerFailure.item, SchedulerFailure.quarantined_at).where(SchedulerFailure.job == job)
    )
    return {item: quarantined_at is not None for item, quarantined_at in rows}


def record_failure(
    session: Session,
    job: str,
    item: str,
    error: str,
    now: dt.datetime,
    *,
    tracking_code: str | None = None,
) -> SchedulerFailure:
    """Count one more failed attempt; quarantine the item once it has failed QUARANTINE_AFTER times.
    Not committed here."""
    row = session.scalar(
        select(SchedulerFailure).where(SchedulerFailure.job == job, SchedulerFailure.item == item)
    )
    if row is None:
        row = SchedulerFailure(job=job, item=item, attempts=0, first_failed_at=now, last_failed_at=now)
        session.add(row)
    row.attempts += 1
    row.last_error, row.last_failed_at = error, now
    row.tracking_code = tracking_code or row.tracking_code
    if row.attempts >= QUARANTINE_AFTER and row.quarantined_at is None:
        row.quarantined_at = now
    return row


def clear_failure(session: Session, job: str, item: str) -> None:
    """The item succeeded after failing before: it starts again from nothing."""
    session.execute(
        delete(SchedulerFailure).where(SchedulerFailure.job == job, SchedulerFailure.item == item)
    )


def release_quarantine(session: Session, job: str | None = None) -> int:
    """An administrator fixed the cause: the quarantined items are tried again (from zero attempts)."""
    statement = delete(SchedulerFailure).where(SchedulerFailure.quarantined_at.is_not(None))
    if job is not None:
        statement = statement.where(SchedulerFailure.job == job)
    return session.execute(statement).rowcount


def record_run(
    session: Session, job: str, now: dt.datetime, holder: str, *, clean: bool, error: str | None = None
) -> None:
    """Not committed here."""
    run = session.get(SchedulerJobRun, job)
    if run is None:
        run = SchedulerJobRun(job=job)
        session.add(run)
    run.last_run_at, run.holder = now, holder
    if clean:
        run.last_success_at = now
    else:
        run.last_failed_at, run.last_error = now, error


@dataclass(frozen=True)
class JobStatus:
    job: str
    last_success_at: dt.datetime | None
    last_run_at: dt.datetime | None
    last_failed_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True)
class FailingItem:
    job: str
    item: str
    tracking_code: str | None
    attempts: int
    last_error: str | None
    last_failed_at: dt.datetime
    quarantined_at: dt.datetime | None


@dataclass(frozen=True)
class SchedulerStatus:
    jobs: list[JobStatus]
    quarantined: list[FailingItem]
    failing: list[FailingItem]  # failed, still being retried
    sms_pending: int
    sms_failed: int
    lease_holder: str | None = None
    lease_expires_at: dt.datetime | None = None


def scheduler_status(session: Session) -> SchedulerStatus:
    runs = {r.job: r for r in session.scalars(select(SchedulerJobRun))}
    jobs = [
        JobStatus(
            job,
            runs[job].last_success_at if job in runs else None,
            runs[job].last_run_at if job in runs else None,
            runs[job].last_failed_at if job in runs else None,
            runs[job].last_error if job in runs else None,
        )
        for job in JOBS
    ]
    items = [
        FailingItem(
            f.job, f.item, f.tracking_code, f.attempts, f.last_error, f.last_failed_at, f.quarantined_at
        )
        for f in session.scalars(select(SchedulerFailure).order_by(SchedulerFailure.job, SchedulerFailure.id))
    ]
    counts = dict(
        session.execute(
            select(OutboundMessage.status, func.count(OutboundMessage.id))
            .where(OutboundMessage.status.in_(("pending", "sending", "failed")))
            .group_by(OutboundMessage.status)
        ).all()
    )
    lease = session.scalar(select(SchedulerLease))
    return SchedulerStatus(
        jobs=jobs,
        quarantined=[i for i in items if i.quarantined_at is not None],
        failing=[i for i in items if i.quarantined_at is None],
        sms_pending=counts.get("pending", 0) + counts.get("sending", 0),
        sms_failed=counts.get("failed", 0),
        lease_holder=lease.holder if lease else None,
        lease_expires_at=lease.expires_at if lease else None,
    )


def _when(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "never"


def _item(i: FailingItem) -> str:
    what = {"returns": "referral", "sms": "message", "revocations": "user"}.get(i.job, "item")
    case = f"case {i.tracking_code}  " if i.tracking_code else ""
    return f"  {i.job:<12} {case}{what} {i.item}  attempts {i.attempts}  error: {i.last_error or '-'}"


def format_status(status: SchedulerStatus) -> str:
    lines = ["job          last success              last failure              last error"]
    for j in status.jobs:
        lines.append(
            f"{j.job:<12} {_when(j.last_success_at):<25} "
            f"{_when(j.last_failed_at) if j.last_failed_at else '-':<25} {j.last_error or '-'}"
        )
    if status.lease_holder:
        lines.append(f"lease: {status.lease_holder} until {_when(status.lease_expires_at)}")
    else:
        lines.append("lease: no scheduler has run yet")
    lines.append(f"sms outbox: {status.sms_pending} pending, {status.sms_failed} failed")
    lines.append(f"quarantined items: {len(status.quarantined)}")
    lines.extend(_item(i) for i in status.quarantined)
    if status.failing:
        lines.append(f"failing, to be retried: {len(status.failing)}")
        lines.extend(_item(i) for i in status.failing)
    return "\n".join(lines)
