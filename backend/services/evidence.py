"""The evidence link in every registration SMS (R5, R17): a short random token naming one case, good
for ONE upload (a few files at once) within EVIDENCE_LINK_DAYS days, stored only as its SHA-256 (a
random 72-bit token needs no key: nobody can guess it, and the hash cannot be walked back)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.models import Case, EvidenceToken

EVIDENCE_LINK_DAYS = 30
TOKEN_BYTES = 9  # 12 URL-safe characters: short enough for an SMS
TOKEN_MAX_CHARS = 64


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_evidence_token(session: Session, case: Case, *, now: dt.datetime) -> str:
    """A new token for a case already flushed (it has its id)."""
    token, row = evidence_token_row(case.id, now=now)
    session.add(EvidenceToken(**row))
    return token


def new_tokens(count: int) -> list[str]:
    """`count` tokens as secrets.token_urlsafe(TOKEN_BYTES) makes them, from one draw of the system's
    randomness: a batch's hundred tokens cost one getrandom, not a hundred (issue 13)."""
    drawn = secrets.token_bytes(TOKEN_BYTES * count)
    return [
        base64.urlsafe_b64encode(drawn[i : i + TOKEN_BYTES]).rstrip(b"=").decode("ascii")
        for i in range(0, len(drawn), TOKEN_BYTES)
    ]


def evidence_token_row(case_id: int, *, now: dt.datetime, token: str | None = None) -> tuple[str, dict]:
    """A token (`token`, else a new one) and its row (also for intake's multi-row INSERT of a batch:
    no ORM object per case)."""
    token = token or secrets.token_urlsafe(TOKEN_BYTES)
    row = {
        "case_id": case_id,
        "token_hash": token_hash(token),
        "expires_at": now + dt.timedelta(days=EVIDENCE_LINK_DAYS),
        "created_at": now,
    }
    return token, row


def evidence_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/e/{token}"


def usable_token(session: Session, token: str, *, now: dt.datetime) -> EvidenceToken | None:
    """The unused, unexpired token row, or None (unknown, used and expired look the same)."""
    if not token or len(token) > TOKEN_MAX_CHARS or not token.isascii():
        return None
    row = session.scalar(select(EvidenceToken).where(EvidenceToken.token_hash == token_hash(token)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def spend_token(session: Session, row: EvidenceToken, *, now: dt.datetime) -> bool:
    """Mark the token used; False if a concurrent upload spent it first (a conditional UPDATE, so two
    uploads racing on one link cannot both count)."""
    result = session.execute(
        update(EvidenceToken)
        .where(EvidenceToken.id == row.id, EvidenceToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
