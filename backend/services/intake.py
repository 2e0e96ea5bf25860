"""Registering a case, from the IVR or an operator (R5, R6, R18)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.security import IdentityVault
from backend.models import Caller, Case, CaseEvent, Recording
from backend.services.notifications import enqueue_sms
from backend.services.org import root_unit
from domain.case_state import CaseStatus
from domain.deadlines import due_at
from domain.digits import normalise_digits, to_persian_digits
from domain.national_id import parse_national_id
from domain.profiles import ServiceProfile
from domain.tracking_code import new_tracking_code, parse_tracking_code


class IntakeError(ValueError):
    """Bad input: `code` is machine-readable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NewCase:
    service: str
    kind: str
    urgent: bool
    channel: str
    national_id: str | None = None
    caller_number: str | None = None
    description: str | None = None
    call_id: str | None = None
    tracking_code: str | None = None  # issued by an IVR node while the backend was unreachable
    incomplete: bool = False
    recording_path: str | None = None
    recording_seconds: float | None = None
    category: str | None = None
    received_at: dt.datetime | None = None  # when the call happened, if delivered late from a spool
    actor: str = "ivr"


def normalise_phone(raw: str) -> str:
    """Iranian numbers in one form: 09121234567 for +98 912..., 0098912..., 912...; other numbers kept."""
    digits = normalise_digits(raw).lstrip("+")
    if digits.startswith("0098"):
        digits = "0" + digits[4:]
    elif digits.startswith("98") and len(digits) == 12:
        digits = "0" + digits[2:]
    elif len(digits) == 10 and digits.startswith("9"):
        digits = "0" + digits
    if not digits.isdigit() or not 3 <= len(digits) <= 15:
        raise IntakeError("invalid_caller_number", "the caller's number must be 3 to 15 digits")
    return digits


def validate(data: NewCase, profile: ServiceProfile) -> tuple[str | None, str | None, str | None]:
    """Check everything before anything is stored. Returns (national_id, phone, tracking_code)."""
    if data.kind not in profile.kinds:
        raise IntakeError("invalid_kind", f"kind must be one of {', '.join(profile.kinds)}")
    if data.channel not in profile.channels:
        raise IntakeError("invalid_channel", f"channel must be one of {', '.join(profile.channels)}")
    if data.category is not None and data.category not in profile.categories:
        raise IntakeError("invalid_category", f"category must be one of {', '.join(profile.categories)}")
    national_id = None
    if data.national_id:
        try:
            national_id = parse_national_id(data.national_id)
        except ValueError as exc:
            raise IntakeError("invalid_national_id", str(exc)) from None
    elif data.channel == "phone" and not data.incomplete:
        raise IntakeError("invalid_national_id", "a case registered by phone needs the caller's national ID")
    phone = normalise_phone(data.caller_number) if data.caller_number else None
    code = None
    if data.tracking_code:
        try:
            code = parse_tracking_code(data.tracking_code)
        except ValueError as exc:
            raise IntakeError("invalid_tracking_code", str(exc)) from None
    return national_id, phone, code


def _find_or_add_caller(session: Session, vault: IdentityVault, national_id: str | None, phone: str | None):
    if not national_id and not phone:
        return None
    caller = None
    if national_id:
        caller = session.scalar(
            select(Caller).where(Caller.national_id_hash == vault.lookup_hash(national_id))
        )
    if caller is None:
        caller = Caller()
        session.add(caller)
    if national_id and not caller.national_id_enc:
        caller.national_id_hash = vault.lookup_hash(national_id)
        caller.national_id_enc = vault.encrypt(national_id)
    if phone:
        # The latest number is where the caller is reachable now.
        caller.phone_hash = vault.lookup_hash(phone)
        caller.phone_enc = vault.encrypt(phone)
    return caller


def _unused_code(session: Session, prefix: str) -> str:
    for _ in range(20):
        code = new_tracking_code(prefix)
        if session.scalar(select(Case.id).where(Case.tracking_code == code)) is None:
            return code
    raise RuntimeError("could not find an unused tracking code: the code space of this prefix is full")


def registration_sms(case: Case, profile: ServiceProfile) -> str:
    spaced = " ".join(to_persian_digits(case.tracking_code))
    return (
        f"{profile.name_fa}: {profile.kinds[case.kind]} شما ثبت شد. کد رهگیری: {spaced}. "
        f"برای پیگیری با شماره {to_persian_digits(profile.number)} تماس بگیرید."
    )


def register_case(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    data: NewCase,
    *,
    backend_prefix: str,
    now: dt.datetime,
) -> tuple[Case, bool]:
    """The case for this call, created if new. Returns (case, created)."""
    national_id, phone, proposed_code = validate(data, profile)
    if data.call_id:
        existing = session.scalar(select(Case).where(Case.call_id == data.call_id))
        if existing is not None:
            return existing, False
    if proposed_code:
        taken = session.scalar(select(Case).where(Case.tracking_code == proposed_code))
        if taken is not None:
            raise IntakeError("tracking_code_taken", "this tracking code already belongs to another case")
    received = data.received_at or now
    unit = root_unit(session, profile)
    rule = profile.deadline_rule(data.kind, data.urgent)
    case = Case(
        tracking_code=proposed_code or _unused_code(session, backend_prefix),
        service=profile.number,
        kind=data.kind,
        category=data.category,
        urgent=data.urgent,
        channel=data.channel,
        status=CaseStatus.RECEIVED.value,
        description=data.description,
        incomplete=data.incomplete,
        call_id=data.call_id,
        caller=_find_or_add_caller(session, vault, national_id, phone),
        current_unit=unit,
        due_at=due_at(received, rule, profile.calendar, profile.timezone),
        created_at=received,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    note = "تماس پیش از پایان پیام قطع شد" if data.incomplete else None
    session.add(
        CaseEvent(
            case=case,
            at=received,
            action="register",
            to_status=case.status,
            actor=data.actor,
            unit_id=unit.id,
            note=note,
        )
    )
    if data.recording_path:
        session.add(
            Recording(
                case=case, kind="message", path=data.recording_path, duration_seconds=data.recording_seconds
            )
        )
    enqueue_sms(session, vault, case, "registered", registration_sms(case, profile), now=received)
    return case, True
