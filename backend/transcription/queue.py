"""The transcription queue in the database: one row per recording, claimed with a lease.

A claim is a conditional UPDATE (the SMS outbox's pattern), so two workers on two machines can never
both take a row: whichever commits first moves the lease ahead and the other's UPDATE matches nothing.
On PostgreSQL the candidate is also selected `FOR UPDATE SKIP LOCKED`, so busy workers pass over
each other's rows instead of queueing behind them. A worker that dies leaves its row "working" with a
lease that runs out; the next claim takes it again and counts the attempt. Every claim counts, so a
file that crashes the worker itself still stops after `max_attempts`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, literal, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.models import Case, Recording, Transcription
from backend.models.transcription import PRIORITY
from backend.transcription.engine import Draft

RETRY_AFTER = dt.timedelta(seconds=30)


def enqueue_new(session: Session, language: str, *, batch: int = 1000) -> int:
    """Add a waiting row for every recording that has none. Safe to run from several workers at once:
    a row another worker added first is skipped, not an error."""
    priority = case((Recording.kind == "message", PRIORITY["message"]), else_=PRIORITY["call"])
    missing = (
        select(
            Recording.id.label("recording_id"),
            priority.label("priority"),
            Recording.created_at.label("created_at"),
        )
        .outerjoin(Transcription, Transcription.recording_id == Recording.id)
        .where(Transcription.id.is_(None))
        .order_by(Recording.id)
        .limit(batch)
    ).subquery()
    rows = select(
        missing.c.recording_id,
        missing.c.priority,
        missing.c.created_at,
        literal("waiting"),
        literal(language),
        literal(0),
    ).where(missing.c.recording_id.is_not(None))  # a WHERE, so SQLite parses the ON CONFLICT
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(Transcription)
        .from_select(["recording_id", "priority", "created_at", "status", "language", "attempts"], rows)
        .on_conflict_do_nothing(index_elements=["recording_id"])
        .returning(Transcription.id)  # counted from the rows: rowcount is -1 here on psycopg
    )
    added = len(session.execute(statement).all())
    session.commit()
    return added


def _claimable(now: dt.datetime, max_attempts: int):
    return or_(
        and_(
            Transcription.status == "waiting",
            or_(Transcription.lease_until.is_(None), Transcription.lease_until <= now),
        ),
        # A lease run out: its worker died. Taken again while attempts remain.
        and_(
            Transcription.status == "working",
            Transcription.lease_until <= now,
            Transcription.attempts < max_attempts,
        ),
    )


def give_up_abandoned(session: Session, now: dt.datetime, max_attempts: int) -> int:
    """Rows whose workers died on every attempt: failed, so a file that kills workers stops."""
    result = session.execute(
        update(Transcription)
        .where(
            Transcription.status == "working",
            Transcription.lease_until <= now,
            Transcription.attempts >= max_attempts,
        )
        .values(
            status="failed",
            finished_at=now,
            lease_until=None,
            error=f"the worker stopped while transcribing it, {max_attempts} times",
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount or 0


def claim(
    session: Session, worker: str, now: dt.datetime, lease: dt.timedelta, max_attempts: int
) -> Transcription | None:
    """Take the most urgent claimable row for `worker`: messages before whole calls, oldest first."""
    postgres = session.bind.dialect.name == "postgresql"
    candidates = (
        select(Transcription.id)
        .where(_claimable(now, max_attempts))
        .order_by(Transcription.priority, Transcription.created_at, Transcription.id)
        .limit(1 if postgres else 5)
    )
    if postgres:
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates).all())
    if not postgres:
        session.commit()  # no read snapshot held into the write below (SQLite WAL would refuse it)
    for row_id in ids:
        result = session.execute(
            update(Transcription)
            .where(Transcription.id == row_id, _claimable(now, max_attempts))
            .values(
                status="working",
                worker=worker,
                lease_until=now + lease,
                attempts=Transcription.attempts + 1,
                started_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if result.rowcount == 1:
            row = session.get(Transcription, row_id)
            session.refresh(row)
            return row
    session.commit()
    return None


def _mine(row_id: int, worker: str):
    return and_(Transcription.id == row_id, Transcription.worker == worker, Transcription.status == "working")


def renew(session: Session, row_id: int, worker: str, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Move the lease ahead while working; False if the row is no longer this worker's."""
    result = session.execute(
        update(Transcription)
        .where(_mine(row_id, worker))
        .values(lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def finish(session: Session, row_id: int, worker: str, draft: Draft, now: dt.datetime) -> bool:
    """Store the draft; False (nothing stored) if another worker has taken the row meanwhile."""
    result = session.execute(
        update(Transcription)
        .where(_mine(row_id, worker))
        .values(
            status="done",
            text=draft.text,
            words=draft.words,
            model=draft.model,
            audio_seconds=draft.audio_seconds,
            wall_seconds=draft.wall_seconds,
            cpu_seconds=draft.cpu_seconds,
            real_time_factor=draft.real_time_factor,
            lease_until=None,
            error=None,
            finished_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def fail(
    session: Session, row_id: int, worker: str, error: str, now: dt.datetime, max_attempts: int
) -> str | None:
    """After a failed attempt: waiting again after a pause, or failed for good once attempts run
    out. Returns the new status, None if the row is no longer this worker's."""
    row = session.get(Transcription, row_id)
    if row is None:
        return None
    session.refresh(row)
    final = row.attempts >= max_attempts
    values = (
        {"status": "failed", "finished_at": now, "lease_until": None}
        if final
        else {"status": "waiting", "lease_until": now + RETRY_AFTER * row.attempts}
    )
    result = session.execute(
        update(Transcription)
        .where(_mine(row_id, worker))
        .values(error=error[:2000], **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return values["status"] if result.rowcount == 1 else None


@dataclass
class FailedItem:
    recording_id: int
    kind: str
    tracking_code: str | None
    attempts: int
    error: str | None


@dataclass
class Backlog:
    waiting: int = 0
    waiting_messages: int = 0
    working: int = 0
    failed: int = 0
    done_last_hour: int = 0
    audio_seconds_last_hour: float = 0.0
    oldest_waiting_message_at: dt.datetime | None = None
    oldest_waiting_message_age_seconds: float | None = None
    failed_items: list[FailedItem] = field(default_factory=list)


def backlog(session: Session, now: dt.datetime, *, failed_shown: int = 20) -> Backlog:
    """What is left to transcribe, how fast it goes, and what failed. Recordings no worker has
    queued yet count as waiting."""
    report = Backlog()
    # A literal, not a parameter: PostgreSQL must see the same expression in SELECT and GROUP BY.
    status = func.coalesce(Transcription.status, literal_column("'waiting'"))
    rows = session.execute(
        select(Recording.kind, status, func.count())
        .outerjoin(Transcription, Transcription.recording_id == Recording.id)
        .group_by(Recording.kind, status)
    ).all()
    for kind, status, count in rows:
        if status == "waiting":
            report.waiting += count
            if kind == "message":
                report.waiting_messages += count
        elif status == "working":
            report.working += count
        elif status == "failed":
            report.failed += count
    oldest = session.scalar(
        select(func.min(Recording.created_at))
        .outerjoin(Transcription, Transcription.recording_id == Recording.id)
        .where(
            Recording.kind == "message",
            or_(Transcription.id.is_(None), Transcription.status.in_(("waiting", "working"))),
        )
    )
    if oldest is not None:
        if oldest.tzinfo is None:  # an aggregate skips the column's type on some databases
            oldest = oldest.replace(tzinfo=dt.UTC)
        report.oldest_waiting_message_at = oldest
        report.oldest_waiting_message_age_seconds = max(0.0, (now - oldest).total_seconds())
    done, audio = session.execute(
        select(func.count(), func.coalesce(func.sum(Transcription.audio_seconds), 0.0)).where(
            Transcription.status == "done", Transcription.finished_at >= now - dt.timedelta(hours=1)
        )
    ).one()
    report.done_last_hour, report.audio_seconds_last_hour = done, float(audio or 0.0)
    failed = session.execute(
        select(Transcription, Recording.kind, Case.tracking_code)
        .join(Recording, Recording.id == Transcription.recording_id)
        .outerjoin(Case, Case.id == Recording.case_id)
        .where(Transcription.status == "failed")
        .order_by(Transcription.finished_at.desc(), Transcription.id.desc())
        .limit(failed_shown)
    ).all()
    report.failed_items = [
        FailedItem(t.recording_id, kind, code, t.attempts, t.error) for t, kind, code in failed
    ]
    return report
