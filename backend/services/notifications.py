"""Queueing SMS to the caller. Sending is the outbox worker's job; queueing happens in the same
transaction as the act it tells about, so a stage is never recorded without its message."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.security import IdentityVault
from backend.models import Case, OutboundMessage


def enqueue_sms(
    session: Session, vault: IdentityVault, case: Case, stage: str, body: str, *, now: dt.datetime
) -> OutboundMessage | None:
    """Queue `body` for the caller of `case`, once per (case, stage), due at the act's own time (so a
    controlled clock controls the outbox too). None when there is no phone. The number is the case's
    own, the one it was filed from, whatever number its caller used later."""
    if not case.phone_enc:
        return None
    key = f"case:{case.id}:{stage}"
    existing = session.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key == key))
    if existing is not None:
        return existing
    msg = OutboundMessage(
        case_id=case.id,
        dedupe_key=key,
        to_enc=case.phone_enc,
        body=body,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(msg)
    return msg
