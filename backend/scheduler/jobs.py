"""What the scheduler does on each tick, if it holds the lease.

Five jobs run every tick, each on its own: late referrals are returned, inactive managers'
passwords revoked, the morning digest written, the weekly and monthly reports written to unit heads'
inboxes, the SMS outbox delivered. One job failing does not
stop the others. Within a job every item (one late referral, one password, one message; the digest
as a whole) is its own transaction, so one bad item cannot stop the rest: its failure is logged with
the case's tracking code (never an identity), counted in the database, and the item is tried again
on the next tick; after QUARANTINE_AFTER failures it is quarantined, shown to administrators
(`didehban scheduler --status`, /healthz) and no longer tried.

Every item's transaction first renews the lease (a fence): if another scheduler has taken it over,
the tick stops before acting again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.config import Settings
from backend.core.db import get_sessionmaker
from backend.core.security import IdentityVault
from backend.models import Case, OutboundMessage, Referral
from backend.notifications.outbox import DeliveryReport, deliver_one, due_message_ids, give_back
from backend.notifications.senders import SmsSender
from backend.reports.notices import periodic_reports
from backend.scheduler.health import (
    QUARANTINE_AFTER,
    clear_failure,
    describe,
    failures_of,
    record_failure,
    record_run,
)
from backend.scheduler.lease import TTL, acquire, renew
from backend.services.profiles import get_profiles
from backend.workflow.referrals import late_referrals, return_late
from backend.workflow.staff import inactive_manager_ids, morning_digest, revoke_if_inactive
from domain.profiles import ServiceProfile

log = logging.getLogger("scheduler")

SMS_BATCH = 50
T = TypeVar("T")


class LeaseLost(RuntimeError):
    """Another scheduler holds the lease now: this one must not act again this tick."""


@dataclass
class TickReport:
    leader: bool
    returned: int = 0
    sms_sent: int = 0
    revoked: int = 0
    digests: int = 0
    reports: int = 0
    failed: int = 0  # items that failed this tick (retried on the next)
    quarantined: int = 0  # items set aside this tick
    failed_jobs: list[str] = field(default_factory=list)
    lease_lost: bool = False


class _Tick:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        sender: SmsSender,
        vault: IdentityVault,
        profiles: dict[str, ServiceProfile],
        holder: str,
        now: dt.datetime,
        clock: Callable[[], dt.datetime],
        ttl: dt.timedelta,
    ) -> None:
        self.sessions, self.sender, self.vault, self.profiles = sessions, sender, vault, profiles
        self.holder, self.now, self.clock, self.ttl = holder, now, clock, ttl
        self.report = TickReport(leader=True)
        self._clean = True  # no item of the running job has failed

    # --- the frame every act runs in ---------------------------------------------------------

    def fence(self, session: Session) -> None:
        """Renew the lease in the act's own transaction: the act is written only by the holder."""
        if not renew(session, self.holder, self.clock(), ttl=self.ttl):
            raise LeaseLost(f"{self.holder} no longer holds the scheduler lease")

    def item(
        self,
        job: str,
        key: str,
        act: Callable[[Session], T],
        *,
        failures: dict[str, bool],
        tracking_code: str | None = None,
        on_failure: Callable[[Session, bool, str], None] | None = None,
    ) -> T | None:
        """Run one item's act in its own transaction. A failure is counted, not raised; None then."""
        with self.sessions() as session:
            try:
                self.fence(session)
                result = act(session)
                if key in failures:
                    clear_failure(session, job, key)
                session.commit()
                return result
            except LeaseLost:
                session.rollback()
                raise
            except Exception as exc:
                session.rollback()
                error = describe(exc)
        self._failed(job, key, error, tracking_code, on_failure)
        return None

    def _failed(
        self,
        job: str,
        key: str,
        error: str,
        tracking_code: str | None,
        on_failure: Callable[[Session, bool, str], None] | None,
    ) -> None:
        self._clean = False
        self.report.failed += 1
        with self.sessions() as session:
            row = record_failure(session, job, key, error, self.now, tracking_code=tracking_code)
            attempts, quarantined = row.attempts, row.quarantined_at is not None
            if on_failure is not None:
                on_failure(session, quarantined, error)
            session.commit()
        what = f"case {tracking_code}" if tracking_code else f"item {key}"
        if quarantined:
            self.report.quarantined += 1
            log.error("%s: %s quarantined after %d failed attempts: %s", job, what, attempts, error)
        else:
            log.warning(
                "%s: %s failed (attempt %d of %d, tried again next tick): %s",
                job,
                what,
                attempts,
                QUARANTINE_AFTER,
                error,
            )

    def run(self) -> None:
        for job, work in (
            ("returns", self.returns),
            ("revocations", self.revocations),
            ("digest", self.digest),
            ("reports", self.reports),
            ("sms", self.sms),
        ):
            self._clean = True
            try:
                work()
            except LeaseLost:
                self.report.lease_lost = True
                log.warning("lost the scheduler lease during %s: stopping this tick", job)
                return
            except Exception as exc:  # the job as a whole (its query, say): the others still run
                error = describe(exc)
                self.report.failed_jobs.append(job)
                log.error("%s: the job failed, tried again next tick: %s", job, error)
                self._record_run(job, clean=False, error=error)
            else:
                self._record_run(job, clean=self._clean, error=None if self._clean else "some items failed")

    def _record_run(self, job: str, *, clean: bool, error: str | None) -> None:
        try:
            with self.sessions() as session:
                record_run(session, job, self.now, self.holder, clean=clean, error=error)
                session.commit()
        except Exception as exc:  # bookkeeping must not stop the work
            log.error("%s: could not record the run: %s", job, describe(exc))

    # --- the jobs ----------------------------------------------------------------------------

    def returns(self) -> None:
        with self.sessions() as session:
            late = late_referrals(session, self.now)
            failures = failures_of(session, "returns")
            # A failing referral that is no longer open and late was dealt with another way.
            current = {str(referral_id) for referral_id, _ in late}
            for key in set(failures) - current:
                clear_failure(session, "returns", key)
            session.commit()
        for referral_id, code in late:
            key = str(referral_id)
            if failures.get(key):  # quarantined
                continue
            if self.item(
                "returns", key, partial(self._return_one, referral_id), failures=failures, tracking_code=code
            ):
                self.report.returned += 1

    def _return_one(self, referral_id: int, session: Session) -> bool:
        referral = session.get(Referral, referral_id)
        if referral is None:
            return False
        profile = self.profiles.get(referral.case.service)
        if profile is None:
            raise LookupError(f"no service profile for {referral.case.service}")
        return return_late(session, self.vault, profile, referral, now=self.now)

    def revocations(self) -> None:
        with self.sessions() as session:
            stale = inactive_manager_ids(session, self.now)
            failures = failures_of(session, "revocations")
            for key in set(failures) - {str(user_id) for user_id in stale}:
                clear_failure(session, "revocations", key)
            session.commit()
        for user_id in stale:
            key = str(user_id)
            if failures.get(key):  # quarantined
                continue
            if self.item(
                "revocations",
                key,
                partial(self._revoke_one, user_id),
                failures=failures,
            ):
                self.report.revoked += 1

    def _revoke_one(self, user_id: int, session: Session) -> bool:
        return revoke_if_inactive(session, user_id, self.now)

    def digest(self) -> None:
        # One unit of work: a failure fails the job, which runs again on the next tick.
        with self.sessions() as session:
            self.fence(session)
            self.report.digests = morning_digest(session, self.profiles, self.now)
            session.commit()

    def reports(self) -> None:
        # One unit of work, like the digest: each notice is written once (its key names the period).
        with self.sessions() as session:
            self.fence(session)
            self.report.reports = periodic_reports(session, self.now)
            session.commit()

    def sms(self) -> None:
        with self.sessions() as session:
            due = due_message_ids(session, self.now, batch=SMS_BATCH)
            codes: dict[int, str] = {}
            if due:
                codes = dict(
                    session.execute(
                        select(OutboundMessage.id, Case.tracking_code)
                        .join(Case, Case.id == OutboundMessage.case_id)
                        .where(OutboundMessage.id.in_(due))
                    ).all()
                )
            failures = failures_of(session, "sms")
        delivery = DeliveryReport()
        try:
            for message_id in due:
                key = str(message_id)
                if failures.get(key):  # quarantined
                    continue
                self.item(
                    "sms",
                    key,
                    partial(self._send_one, message_id, delivery),
                    failures=failures,
                    tracking_code=codes.get(message_id),
                    on_failure=partial(self._give_back, message_id),
                )
        finally:  # what was sent counts, even in a tick that lost the lease
            self.report.sms_sent += delivery.sent

    def _send_one(self, message_id: int, delivery: DeliveryReport, session: Session) -> bool:
        return deliver_one(session, self.sender, self.vault, message_id, self.now, delivery)

    def _give_back(self, message_id: int, session: Session, quarantined: bool, error: str) -> None:
        give_back(session, message_id, self.now, error, final=quarantined)


def tick(
    settings: Settings,
    sender: SmsSender,
    holder: str,
    now: dt.datetime,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    ttl: dt.timedelta = TTL,
) -> TickReport:
    """One tick at `now`. `clock` tells the lease's time as the tick goes on (by default `now` plus
    the time the tick has taken): a slow tick renews the lease, or finds it lost and stops."""
    started = time.monotonic()
    lease_clock = clock or (lambda: now + dt.timedelta(seconds=time.monotonic() - started))
    sessions = get_sessionmaker()
    with sessions() as session:
        if not acquire(session, holder, lease_clock(), ttl=ttl):
            return TickReport(leader=False)
    vault = IdentityVault.from_settings(settings)
    work = _Tick(sessions, sender, vault, get_profiles(), holder, now, lease_clock, ttl)
    work.run()
    report = work.report
    if report.revoked or report.digests:
        log.info(
            "revoked %d inactive manager password(s), %d digest notice(s)", report.revoked, report.digests
        )
    if report.returned or report.sms_sent:
        log.info("returned %d late case(s), sent %d SMS", report.returned, report.sms_sent)
    return report
