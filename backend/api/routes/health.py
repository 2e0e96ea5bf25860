"""Is the backend up: a bare answer for anyone (load balancers, the supervisor), and for an
administrator the scheduler's health too: each job's last clean run, the quarantined items, the
SMS outbox."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.api.deps import (
    AppSettings,
    Credentials,
    DbSession,
    Now,
    current_session,
    current_user,
    staff_bearer,
)
from backend.api.errors import ApiError, error_responses
from backend.scheduler.health import FailingItem, scheduler_status

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class JobHealth(BaseModel):
    job: str
    last_success_at: dt.datetime | None
    last_run_at: dt.datetime | None
    last_failed_at: dt.datetime | None
    last_error: str | None


class FailingItemOut(BaseModel):
    job: str
    item: str
    tracking_code: str | None
    attempts: int
    last_error: str | None
    last_failed_at: dt.datetime
    quarantined_at: dt.datetime | None


class OutboxHealth(BaseModel):
    pending: int
    failed: int


class SchedulerHealth(BaseModel):
    jobs: list[JobHealth]
    quarantined: list[FailingItemOut]
    failing: list[FailingItemOut]
    sms_outbox: OutboxHealth
    lease_holder: str | None
    lease_expires_at: dt.datetime | None


class AdminHealth(Health):
    scheduler: SchedulerHealth


def _item(i: FailingItem) -> FailingItemOut:
    return FailingItemOut(
        job=i.job,
        item=i.item,
        tracking_code=i.tracking_code,
        attempts=i.attempts,
        last_error=i.last_error,
        last_failed_at=i.last_failed_at,
        quarantined_at=i.quarantined_at,
    )


def _is_admin(db: DbSession, settings: AppSettings, now: Now, credentials: Credentials) -> bool:
    if credentials is None:
        return False
    try:
        user = current_user(db, current_session(db, settings, now, credentials))
    except ApiError:
        return False  # a health check never fails on its caller: it just gets the public answer
    return user.role == "admin"


@router.get(
    "/healthz",
    response_model=AdminHealth | Health,
    responses=error_responses(503),
    # Anyone may ask; an administrator's session adds the detail. In OpenAPI: no credentials, or these.
    openapi_extra={"security": [{}, {"staffSession": []}]},
)
def healthz(
    db: DbSession,
    settings: AppSettings,
    now: Now,
    credentials: Annotated[Credentials, Depends(staff_bearer)],
) -> AdminHealth | Health:
    try:
        db.execute(text("SELECT 1"))
        if not _is_admin(db, settings, now, credentials):
            return Health(status="ok")
        status = scheduler_status(db)
    except SQLAlchemyError:
        raise ApiError(503, "database_unavailable", "the database does not answer") from None
    return AdminHealth(
        status="ok",
        scheduler=SchedulerHealth(
            jobs=[JobHealth(**vars(j)) for j in status.jobs],
            quarantined=[_item(i) for i in status.quarantined],
            failing=[_item(i) for i in status.failing],
            sms_outbox=OutboxHealth(pending=status.sms_pending, failed=status.sms_failed),
            lease_holder=status.lease_holder,
            lease_expires_at=status.lease_expires_at,
        ),
    )
