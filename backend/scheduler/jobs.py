"""What the scheduler does on each tick, if it holds the lease."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from backend.core.config import Settings
from backend.core.db import get_sessionmaker
from backend.core.security import IdentityVault
from backend.notifications.outbox import deliver_due
from backend.notifications.senders import SmsSender
from backend.scheduler.lease import acquire
from backend.services.profiles import get_profiles
from backend.workflow.referrals import enforce_deadlines
from backend.workflow.staff import morning_digest, revoke_inactive

log = logging.getLogger("scheduler")


@dataclass
class TickReport:
    leader: bool
    returned: int = 0
    sms_sent: int = 0


def tick(settings: Settings, sender: SmsSender, holder: str, now: dt.datetime) -> TickReport:
    sessions = get_sessionmaker()
    with sessions() as session:
        if not acquire(session, holder, now):
            return TickReport(leader=False)
    vault = IdentityVault.from_settings(settings)
    with sessions() as session:
        returned = enforce_deadlines(session, vault, get_profiles(), now)
        revoked = revoke_inactive(session, now)
        digests = morning_digest(session, get_profiles(), now)
        session.commit()
    sent = deliver_due(sessions, sender, vault, now).sent
    if revoked or digests:
        log.info("revoked %d inactive manager password(s), %d digest notice(s)", revoked, digests)
    if returned or sent:
        log.info("returned %d late case(s), sent %d SMS", returned, sent)
    return TickReport(leader=True, returned=returned, sms_sent=sent)
