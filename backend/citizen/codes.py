"""One-time SMS codes proving a mobile number (R18): six digits, stored as a keyed hash next to a
random handle the page carries, dead after `web_code_minutes` or `web_code_attempts` wrong tries,
and spent by the one act they were sent for."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.core.security import IdentityVault
from backend.models import Case, OutboundMessage, PhoneChallenge
from backend.services.intake import IntakeError, normalise_phone
from domain.digits import normalise_digits, to_persian_digits

MOBILE = re.compile(r"09[0-9]{9}")
HANDLE_MAX = 64


class CodeError(ValueError):
    """`code`: bad_mobile, wrong_code, code_expired, too_many_attempts."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def mobile_number(raw: str) -> str:
    """An Iranian mobile number as 09xxxxxxxxx (SMS go only to mobiles), or CodeError."""
    try:
        number = normalise_phone(raw)
    except IntakeError:
        raise CodeError("bad_mobile") from None
    if not MOBILE.fullmatch(number):
        raise CodeError("bad_mobile")
    return number


def _handle_hash(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def _code_hash(vault: IdentityVault, handle: str, code: str) -> str:
    # Keyed: a million codes are quickly tried against a plain hash.
    return vault.lookup_hash(f"web-code:{handle}:{code}")


@dataclass(frozen=True)
class Sent:
    handle: str
    expires_at: dt.datetime


def send_code(
    session: Session,
    vault: IdentityVault,
    settings: Settings,
    phone: str,
    *,
    purpose: str,
    case: Case | None = None,
    now: dt.datetime,
) -> Sent:
    """A new challenge for `phone` and its SMS in the outbox (same transaction). Not committed."""
    handle = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(10**6):06d}"
    phone_enc = case.phone_enc if case is not None and case.phone_enc else vault.encrypt(phone)
    challenge = PhoneChallenge(
        handle_hash=_handle_hash(handle),
        purpose=purpose,
        case_id=case.id if case is not None else None,
        phone_hash=vault.lookup_hash(phone),
        phone_enc=phone_enc,
        code_hash=_code_hash(vault, handle, code),
        attempts=0,
        expires_at=now + dt.timedelta(minutes=settings.web_code_minutes),
        created_at=now,
    )
    session.add(challenge)
    session.flush()
    minutes = to_persian_digits(str(round(settings.web_code_minutes)))
    session.add(
        OutboundMessage(
            case_id=case.id if case is not None else None,
            dedupe_key=f"web-code:{challenge.id}",
            to_enc=phone_enc,
            body=f"دیده‌بان: کد تأیید شما {code} است. این کد تا {minutes} دقیقه اعتبار دارد. "
            "آن را به کسی ندهید.",
            next_attempt_at=now,
            created_at=now,
        )
    )
    return Sent(handle, challenge.expires_at)


def open_challenge(session: Session, handle: str, purpose: str) -> PhoneChallenge | None:
    if not handle or len(handle) > HANDLE_MAX or not handle.isascii():
        return None
    row = session.scalar(select(PhoneChallenge).where(PhoneChallenge.handle_hash == _handle_hash(handle)))
    return row if row is not None and row.purpose == purpose else None


def check_code(
    session: Session,
    vault: IdentityVault,
    settings: Settings,
    challenge: PhoneChallenge | None,
    handle: str,
    code: str,
    *,
    now: dt.datetime,
) -> PhoneChallenge:
    """The challenge once `code` is right; CodeError otherwise. A wrong try is counted (the caller
    commits it); used, expired and exhausted challenges refuse even the right code."""
    if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
        raise CodeError("code_expired")
    if challenge.attempts >= settings.web_code_attempts:
        raise CodeError("too_many_attempts")
    code = normalise_digits(code).strip()
    if not hmac.compare_digest(_code_hash(vault, handle, code), challenge.code_hash):
        # Counted in the database with a conditional UPDATE: parallel guesses cannot share one try.
        session.execute(
            update(PhoneChallenge)
            .where(PhoneChallenge.id == challenge.id, PhoneChallenge.attempts < settings.web_code_attempts)
            .values(attempts=PhoneChallenge.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        session.refresh(challenge)
        if challenge.attempts >= settings.web_code_attempts:
            raise CodeError("too_many_attempts")
        raise CodeError("wrong_code")
    return challenge


def spend(session: Session, challenge: PhoneChallenge, *, now: dt.datetime) -> bool:
    """Mark the challenge used; False if a concurrent request spent it first."""
    result = session.execute(
        update(PhoneChallenge)
        .where(PhoneChallenge.id == challenge.id, PhoneChallenge.used_at.is_(None))
        .values(used_at=now, verified_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
