"""Delivering the SMS outbox: each message claimed before it is sent, retried with back-off, never
lost across a crash.

A claim is a conditional UPDATE (works the same on SQLite and PostgreSQL): status becomes "sending"
and next_attempt_at moves a lease ahead. A worker that dies mid-send leaves the row "sending" with a
lease that runs out, and the next run takes it again. A message is sent at least once and, because
the claim is committed before sending and the result right after, almost never twice; the message's
own reference travels to the gateway so a gateway that drops duplicates makes it exactly once.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.core.security import IdentityVault, mask_phone
from backend.models import OutboundMessage
from backend.notifications.senders import PermanentSendError, SmsSender, TransientSendError

log = logging.getLogger("sms")

LEASE = dt.timedelta(minutes=2)
MAX_ATTEMPTS = 8


def backoff(attempts: int, *, rng: random.Random | None = None) -> dt.timedelta:
    """30 s, 1 min, 2 min ... capped at an hour, with jitter so a recovering gateway is not stampeded."""
    base = min(3600.0, 30.0 * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=base * (0.8 + 0.4 * (rng or random).random()))


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def _claim(session: Session, message_id: int, now: dt.datetime) -> bool:
    result = session.execute(
        update(OutboundMessage)
        .where(
            OutboundMessage.id == message_id,
            OutboundMessage.status.in_(("pending", "sending")),
            OutboundMessage.next_attempt_at <= now,
        )
        .values(status="sending", next_attempt_at=now + LEASE, attempts=OutboundMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def due_message_ids(session: Session, now: dt.datetime, *, batch: int = 50) -> list[int]:
    """The messages to try now, oldest first."""
    return list(
        session.scalars(
            select(OutboundMessage.id)
            .where(
                or_(OutboundMessage.status == "pending", OutboundMessage.status == "sending"),
                OutboundMessage.next_attempt_at <= now,
            )
            .order_by(OutboundMessage.next_attempt_at)
            .limit(batch)
        ).all()
    )


def deliver_one(
    session: Session,
    sender: SmsSender,
    vault: IdentityVault,
    message_id: int,
    now: dt.datetime,
    report: DeliveryReport,
) -> bool:
    """Claim and send one message, recording the gateway's answer. False if another worker holds
    it. Anything but the gateway's own errors (an undecryptable number, a crash) escapes with the
    message left claimed: the caller decides whether to retry it or give it up."""
    if not _claim(session, message_id, now):
        return False  # another worker took it
    message = session.get(OutboundMessage, message_id)
    session.refresh(message)
    number = vault.decrypt(message.to_enc)  # decrypted only now, never logged in full
    try:
        provider_id = sender.send(number, message.body, f"didehban-{message.id}")
    except TransientSendError as exc:
        if message.attempts >= MAX_ATTEMPTS:
            message.status, message.last_error = "failed", str(exc)
            report.failed += 1
        else:
            message.status, message.last_error = "pending", str(exc)
            message.next_attempt_at = now + backoff(message.attempts)
            report.retried += 1
        log.warning("SMS %s to %s not sent (%s)", message.id, mask_phone(number), exc)
    except PermanentSendError as exc:
        message.status, message.last_error = "failed", str(exc)
        report.failed += 1
        log.error("SMS %s to %s refused: %s", message.id, mask_phone(number), exc)
    else:
        message.status, message.sent_at, message.provider_id = "sent", now, provider_id
        message.last_error = None
        report.sent += 1
    session.commit()
    return True


def give_back(session: Session, message_id: int, now: dt.datetime, error: str, *, final: bool) -> None:
    """After an unexpected error with a claimed message: due again after a back-off or, if `final`,
    failed for good (the scheduler quarantines it). Not committed here."""
    message = session.get(OutboundMessage, message_id)
    if message is None or message.status not in ("pending", "sending"):
        return
    message.last_error = error
    if final:
        message.status = "failed"
    else:
        message.status, message.next_attempt_at = "pending", now + backoff(max(1, message.attempts))


def deliver_due(
    sessions: sessionmaker[Session],
    sender: SmsSender,
    vault: IdentityVault,
    now: dt.datetime,
    *,
    batch: int = 50,
) -> DeliveryReport:
    report = DeliveryReport()
    with sessions() as session:
        for message_id in due_message_ids(session, now, batch=batch):
            deliver_one(session, sender, vault, message_id, now, report)
    return report
