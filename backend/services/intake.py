"""Registering a case, from the IVR or an operator (R5, R6, R18)."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import get_settings
from backend.core.security import IdentityVault
from backend.models import Caller, Case, CaseCode, CaseEvent, Recording
from backend.services.evidence import evidence_link, issue_evidence_token
from backend.services.notifications import enqueue_sms
from backend.services.org import root_unit
from domain.case_state import CaseStatus
from domain.deadlines import due_at
from domain.digits import is_ascii_digits, normalise_digits, to_persian_digits
from domain.national_id import parse_national_id
from domain.profiles import ServiceProfile
from domain.tracking_code import issuer_prefix, new_tracking_code, parse_tracking_code

# A recording's name as the IVR writes it: <service>/<yyyymmdd>/<call id>-message.wav, well under this.
RECORDING_PATH_MAX = 255


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
    if not is_ascii_digits(digits) or not 3 <= len(digits) <= 15:
        raise IntakeError("invalid_caller_number", "the caller's number must be 3 to 15 digits")
    return digits


def recording_path_in_folder(raw: str) -> str:
    """The recording's path relative to the recordings folder, normalised; IntakeError for anything
    that could name a file elsewhere (absolute, `..`, a URL or drive, control characters)."""

    def refuse(why: str) -> IntakeError:
        return IntakeError("invalid_recording_path", f"recording_path {why}")

    if not raw or len(raw) > RECORDING_PATH_MAX:
        raise refuse(f"must be 1 to {RECORDING_PATH_MAX} characters")
    # Control and format characters (NUL, newlines, direction marks) have no place in a file name.
    if any(unicodedata.category(ch).startswith("C") for ch in raw):
        raise refuse("has control characters")
    if ":" in raw or "\\" in raw:
        raise refuse("must be a path inside the recordings folder, not a URL or drive")
    if raw.startswith("/"):
        raise refuse("must be relative to the recordings folder")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise refuse("must stay inside the recordings folder")
    return posixpath.join(*parts)


@dataclass(frozen=True)
class Checked:
    """A filing's values after validation, normalised."""

    national_id: str | None
    phone: str | None
    tracking_code: str | None
    recording_path: str | None


def validate(
    data: NewCase,
    profile: ServiceProfile,
    *,
    offline_prefixes: Collection[str] = (),
    backend_prefix: str | None = None,
) -> Checked:
    """Check everything before anything is stored. An offline code must carry the prefix of a
    configured IVR node, never the backend's own."""
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
        if issuer_prefix(code) not in offline_prefixes or issuer_prefix(code) == backend_prefix:
            raise IntakeError(
                "invalid_tracking_code", "this tracking code was not issued by a known IVR node"
            )
    recording = recording_path_in_folder(data.recording_path) if data.recording_path is not None else None
    return Checked(national_id, phone, code, recording)


def filing_hash(vault: IdentityVault, data: NewCase, checked: Checked) -> str:
    """Keyed hash of what a filing says (normalised), to tell a replay from a different call that
    reuses a call_id. The offline code and received_at are left out: a replay may carry a new code."""
    said = {
        "service": data.service,
        "kind": data.kind,
        "urgent": data.urgent,
        "channel": data.channel,
        "category": data.category,
        "national_id": checked.national_id,
        "phone": checked.phone,
        "description": data.description,
        "incomplete": data.incomplete,
        "recording_path": checked.recording_path,
        "recording_seconds": data.recording_seconds,
    }
    # Keyed: the hash covers the national ID, so a plain digest could be reversed by trying them all.
    return vault.lookup_hash(json.dumps(said, sort_keys=True, ensure_ascii=False))


def case_by_code(session: Session, code: str) -> Case | None:
    """The case a (parsed) tracking code names: its own code, or a code an IVR node told the caller."""
    case = session.scalar(select(Case).where(Case.tracking_code == code))
    if case is None:
        case = session.scalar(
            select(Case).join(CaseCode, CaseCode.case_id == Case.id).where(CaseCode.code == code)
        )
    return case


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
    if phone and not caller.phone_enc:
        # Only the first number: each case keeps its own (Case.phone_*), and a later call from
        # another number must not change where someone else's messages go.
        caller.phone_hash = vault.lookup_hash(phone)
        caller.phone_enc = vault.encrypt(phone)
    return caller


def code_in_use(session: Session, code: str) -> bool:
    return case_by_code(session, code) is not None


def _unused_code(session: Session, prefix: str) -> str:
    for _ in range(20):
        code = new_tracking_code(prefix)
        if not code_in_use(session, code):
            return code
    raise RuntimeError("could not find an unused tracking code: the code space of this prefix is full")


def registration_sms(case: Case, profile: ServiceProfile, evidence_url: str | None = None) -> str:
    spaced = " ".join(to_persian_digits(case.tracking_code))
    text = (
        f"{profile.name_fa}: {profile.kinds[case.kind]} شما ثبت شد. کد رهگیری: {spaced}. "
        f"برای پیگیری با شماره {to_persian_digits(profile.number)} تماس بگیرید."
    )
    if evidence_url:
        # R5: evidence may be brought later; the link is good for one upload.
        text += f" افزودن مدرک: {evidence_url}"
    return text


def alias_sms(case: Case, alias: str, profile: ServiceProfile) -> str:
    kept = " ".join(to_persian_digits(case.tracking_code))
    told = " ".join(to_persian_digits(alias))
    return (
        f"{profile.name_fa}: {profile.kinds.get(case.kind, case.kind)} شما با کد رهگیری {kept} ثبت شده است. "
        f"کد {told} که در تماس شنیدید نیز به همین پرونده می‌رسد."
    )


def _replay(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    case: Case,
    checked: Checked,
    request_hash: str,
    *,
    now: dt.datetime,
) -> Case:
    """The same call delivered again. If it carries a code an IVR node told the caller (the backend's
    answer was lost), that code becomes an alias of the case and the caller is told the kept code."""
    if case.request_hash is not None and case.request_hash != request_hash:
        raise IntakeError("call_id_conflict", "this call_id already filed a case that says something else")
    told = checked.tracking_code
    if told is None:
        return case
    # One look-up decides (a concurrent replay may have just stored the same alias).
    holder = case_by_code(session, told)
    if holder is not None and holder.id == case.id:
        return case
    if holder is not None:
        raise IntakeError("tracking_code_taken", "this tracking code already belongs to another case")
    session.add(CaseCode(code=told, case=case, created_at=now))
    session.flush()
    enqueue_sms(session, vault, case, f"alias:{told}", alias_sms(case, told, profile), now=now)
    return case


def register_case(
    session: Session,
    vault: IdentityVault,
    profile: ServiceProfile,
    data: NewCase,
    *,
    backend_prefix: str,
    now: dt.datetime,
    offline_prefixes: Collection[str] = (),
    public_url: str | None = None,
) -> tuple[Case, bool]:
    """The case for this call, created if new. Returns (case, created).

    Races (the same call_id, offline code or national ID filed at once) surface as IntegrityError
    from the flush: roll the transaction back and call again, and the second pass finds what the
    winner stored (a replay, or a taken code).

    The registration SMS carries a one-time link for adding evidence, under `public_url` (the
    setting DIDEHBAN_PUBLIC_URL when not given)."""
    checked = validate(data, profile, offline_prefixes=offline_prefixes, backend_prefix=backend_prefix)
    national_id, phone, proposed_code = checked.national_id, checked.phone, checked.tracking_code
    request_hash = filing_hash(vault, data, checked)
    if data.call_id:
        existing = session.scalar(select(Case).where(Case.call_id == data.call_id))
        if existing is not None:
            return _replay(session, vault, profile, existing, checked, request_hash, now=now), False
    if proposed_code and code_in_use(session, proposed_code):
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
        request_hash=request_hash,
        phone_hash=vault.lookup_hash(phone) if phone else None,
        phone_enc=vault.encrypt(phone) if phone else None,
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
    if checked.recording_path:
        session.add(
            Recording(
                case=case,
                kind="message",
                path=checked.recording_path,
                duration_seconds=data.recording_seconds,
            )
        )
    evidence_url = None
    if case.phone_enc:  # the link travels only by SMS: no number, no link
        token = issue_evidence_token(session, case, now=now)
        evidence_url = evidence_link(public_url or get_settings().public_url, token)
    enqueue_sms(
        session, vault, case, "registered", registration_sms(case, profile, evidence_url), now=received
    )
    session.flush()
    return case, True
