"""Which scheduler process may act (one lease row, renewed while its holder lives), what each job last
did, and the items of work that keep failing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime


class SchedulerLease(Base):
    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SchedulerJobRun(Base):
    """When each scheduled job (returns, revocations, digest, sms) last ran, and last ran clean."""

    __tablename__ = "scheduler_job_run"

    job: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Every item it tried succeeded (quarantined items are not tried).
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str | None] = mapped_column(String(120))


class SchedulerFailure(Base):
    """One item of scheduled work that failed: retried on later ticks, quarantined after a few
    attempts (shown to administrators, no longer tried). Kept in the database so the count
    survives restarts and is shared by every scheduler."""

    __tablename__ = "scheduler_failure"
    __table_args__ = (UniqueConstraint("job", "item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(20))
    # The referral, message or user id: never an identity.
    item: Mapped[str] = mapped_column(String(40))
    tracking_code: Mapped[str | None] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    first_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    quarantined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
