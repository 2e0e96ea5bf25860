"""Registering a case, from the IVR or an operator (R5, R6, R18)."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Connection, any_, bindparam, select, text, update
from sqlalchemy.orm import Session

from backend.core.config import get_settings
from backend.core.security import IdentityVault
from backend.models import Caller, Case, CaseCode, CaseEvent, EvidenceToken, OutboundMessage, Recording
from backend.models.base import utcnow
from backend.services.evidence import evidence_link, evidence_token_row, issue_evidence_token, new_tokens
from backend.services.notifications import enqueue_sms
from backend.services.org import root_unit_id
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
    return registration_text(case.tracking_code, case.kind, profile, evidence_url)


def registration_text(
    tracking_code: str, kind: str, profile: ServiceProfile, evidence_url: str | None = None
) -> str:
    spaced = " ".join(to_persian_digits(tracking_code))
    text = (
        f"{profile.name_fa}: {profile.kinds[kind]} شما ثبت شد. کد رهگیری: {spaced}. "
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
    unit_id = root_unit_id(session, profile)
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
        current_unit_id=unit_id,
        due_at=due_at(received, rule, profile.calendar, profile.timezone),
        created_at=received,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    evidence_url = None
    if case.phone_enc:  # the link travels only by SMS: no number, no link
        token = issue_evidence_token(session, case, now=now)
        evidence_url = evidence_link(public_url or get_settings().public_url, token)
    session.add_all(_registration_rows(case, data, checked, profile, unit_id, received, evidence_url))
    session.flush()
    return case, True


def _registration_rows(
    case: Case,
    data: NewCase,
    checked: Checked,
    profile: ServiceProfile,
    unit_id: int,
    received: dt.datetime,
    evidence_url: str | None,
) -> list:
    """What a new case brings with it: its first event, its recording, its registration SMS. The
    case is new, so its SMS needs no look-up for an earlier one (the outbox's unique key still holds)."""
    note = "تماس پیش از پایان پیام قطع شد" if data.incomplete else None
    rows: list = [
        CaseEvent(
            case_id=case.id,
            at=received,
            action="register",
            to_status=case.status,
            actor=data.actor,
            unit_id=unit_id,
            note=note,
        )
    ]
    if checked.recording_path:
        rows.append(
            Recording(
                case_id=case.id,
                kind="message",
                path=checked.recording_path,
                duration_seconds=data.recording_seconds,
            )
        )
    if case.phone_enc:
        rows.append(
            OutboundMessage(
                case_id=case.id,
                dedupe_key=f"case:{case.id}:registered",
                to_enc=case.phone_enc,
                body=registration_sms(case, profile, evidence_url),
                next_attempt_at=received,
                created_at=received,
            )
        )
    return rows


# --- many cases at once (POST /api/v1/cases:batch) ----------------------------------------------


@dataclass
class BatchItem:
    """One case of a batch: its filing, or why it could not even be read (schema, service, time)."""

    data: NewCase | None = None
    profile: ServiceProfile | None = None
    error: IntakeError | None = None


@dataclass
class BatchResult:
    result: str  # created | replay | conflict | invalid
    tracking_code: str | None = None
    status: str | None = None
    due_at: dt.datetime | None = None
    error: IntakeError | None = None

    @classmethod
    def of(cls, result: str, case: Case) -> BatchResult:
        return cls(result, case.tracking_code, case.status, case.due_at)


CONFLICTS = ("tracking_code_taken", "call_id_conflict")


def refused(error: IntakeError) -> BatchResult:
    return BatchResult("conflict" if error.code in CONFLICTS else "invalid", error=error)


def register_new_cases(
    session: Session,
    vault: IdentityVault,
    items: list[BatchItem],
    *,
    backend_prefix: str,
    now: dt.datetime,
    offline_prefixes: Collection[str] = (),
    public_url: str | None = None,
) -> tuple[dict[int, BatchResult], list[int]]:
    """The new cases of a batch in a few statements: one look-up each for the call ids, the codes
    and the callers of the whole batch, then one multi-row INSERT a table (rows, not ORM objects:
    the unit of work costs more than the database here). Returns (results by item index, the
    indexes left for register_case one by one: replays, and a call id or code twice in the batch).
    Does not commit. Races surface as IntegrityError, as in register_case."""
    results: dict[int, BatchResult] = {}
    later: list[int] = []
    fresh: list[tuple[int, NewCase, ServiceProfile, Checked, str]] = []
    for index, item in enumerate(items):
        if item.error is not None or item.data is None or item.profile is None:
            results[index] = refused(item.error or IntakeError("invalid_request", "unreadable"))
            continue
        try:
            checked = validate(
                item.data, item.profile, offline_prefixes=offline_prefixes, backend_prefix=backend_prefix
            )
        except IntakeError as exc:
            results[index] = refused(exc)
            continue
        fresh.append((index, item.data, item.profile, checked, filing_hash(vault, item.data, checked)))

    conn = session.connection()
    # One new case (the single-case route) leans on the unique keys instead of looking first: a
    # call id or code already stored fails the INSERT, the caller's transaction rolls back, and the
    # case is filed again one by one, which tells a replay from a conflict. A batch looks first, so
    # one replayed item does not send the whole batch down the slow path.
    probe = len(fresh) > 1
    call_ids = [d.call_id for _, d, _, _, _ in fresh if d.call_id]
    codes = [c.tracking_code for _, _, _, c, _ in fresh if c.tracking_code]
    known_calls: set[str | None] = set()
    if probe and call_ids:
        known_calls = set(conn.scalars(_pick(conn, _KNOWN_CALLS), {"keys": call_ids}))
    taken: set[str] = set()
    if codes:
        # The aliases have no unique key shared with the cases' own codes: always looked up.
        taken = set(conn.scalars(_pick(conn, _TAKEN_CODES if probe else _TAKEN_ALIASES), {"keys": codes}))
    hashes = {index: vault.lookup_hash(c.national_id) for index, _, _, c, _ in fresh if c.national_id}
    # Callers known by national ID: (id, has a phone already).
    callers: dict[str, tuple[int, bool]] = {}
    if hashes and probe:
        callers = {
            digest: (caller_id, phone is not None)
            for caller_id, digest, phone in conn.execute(
                _pick(conn, _KNOWN_CALLERS), {"keys": list(set(hashes.values()))}
            )
        }

    seen_calls: set[str] = set()
    seen_codes: set[str] = set()
    new_callers: dict[str, dict] = {}  # by national ID hash, or "#<index>" for a number alone
    phones_for: dict[int, str] = {}  # known caller id -> the first number it is given now
    rows: list[dict] = []  # one a new case, in order
    extras: list[tuple[NewCase, ServiceProfile, Checked, dt.datetime]] = []
    for index, data, profile, checked, request_hash in fresh:
        code = checked.tracking_code
        if (data.call_id and (data.call_id in known_calls or data.call_id in seen_calls)) or (
            code and code in seen_codes
        ):
            later.append(index)  # a replay, or the batch's second word on one call or code
            continue
        if code and code in taken:
            if not probe:
                later.append(index)  # the call id was not looked up: a replay may hold this code
                continue
            # Another call's case holds this code (this call id is new, so it is no replay).
            results[index] = refused(
                IntakeError("tracking_code_taken", "this tracking code already belongs to another case")
            )
            continue
        if data.call_id:
            seen_calls.add(data.call_id)
        if code:
            seen_codes.add(code)
        phone = checked.phone
        phone_hash = vault.lookup_hash(phone) if phone else None
        phone_enc = vault.encrypt(phone) if phone else None
        caller_key: str | None = None
        caller_id: int | None = None
        if checked.national_id:
            digest = hashes[index]
            if digest in callers:
                caller_id, has_phone = callers[digest]
                if phone and not has_phone and caller_id not in phones_for:
                    phones_for[caller_id] = phone
            else:
                caller_key = digest
                if digest not in new_callers:
                    new_callers[digest] = {
                        "national_id_hash": digest,
                        "national_id_enc": vault.encrypt(checked.national_id),
                        "phone_hash": phone_hash,
                        "phone_enc": phone_enc,
                    }
                elif phone and new_callers[digest]["phone_enc"] is None:
                    new_callers[digest] |= {"phone_hash": phone_hash, "phone_enc": phone_enc}
        elif phone:
            caller_key = f"#{index}"
            new_callers[caller_key] = {
                "national_id_hash": None,
                "national_id_enc": None,
                "phone_hash": phone_hash,
                "phone_enc": phone_enc,
            }
        received = data.received_at or now
        unit_id = root_unit_id(session, profile)
        rule = profile.deadline_rule(data.kind, data.urgent)
        rows.append(
            {
                "tracking_code": code or _unused_code_of(conn, backend_prefix),
                "service": profile.number,
                "kind": data.kind,
                "category": data.category,
                "urgent": data.urgent,
                "channel": data.channel,
                "status": CaseStatus.RECEIVED.value,
                "description": data.description,
                "incomplete": data.incomplete,
                "call_id": data.call_id,
                "request_hash": request_hash,
                "phone_hash": phone_hash,
                "phone_enc": phone_enc,
                "caller_id": caller_id,
                "current_unit_id": unit_id,
                "due_at": due_at(received, rule, profile.calendar, profile.timezone),
                "escalation_level": 0,
                "created_at": received,
                "updated_at": now,
                "_index": index,
                "_caller": caller_key,
            }
        )
        extras.append((data, profile, checked, received))
    if not rows:
        return results, later

    if new_callers:
        made = _insert_callers(conn, new_callers)
        for key in set(new_callers) - set(made):
            # A national ID stored meanwhile (or, for one case, not probed first): a known caller,
            # given this number only if it has none yet, as _find_or_add_caller does.
            caller_id, has_phone = _known_caller(conn, key)
            made[key] = caller_id
            values = new_callers[key]
            if values["phone_enc"] and not has_phone and caller_id not in phones_for:
                conn.execute(
                    _GIVE_CALLER_PHONE,
                    {"caller": caller_id, "hash": values["phone_hash"], "enc": values["phone_enc"]},
                )
        for row in rows:
            if row["_caller"] is not None:
                row["caller_id"] = made[row["_caller"]]
    for caller_id, phone in phones_for.items():
        # Only the first number: as _find_or_add_caller does for a known caller without one.
        conn.execute(
            _GIVE_CALLER_PHONE,
            {"caller": caller_id, "hash": vault.lookup_hash(phone), "enc": vault.encrypt(phone)},
        )
    order = [(row.pop("_index"), row.pop("_caller")) for row in rows]
    case_ids = _drawn_ids(conn, _cases, len(rows))
    if case_ids is not None:
        conn.execute(
            _cases.insert(), [row | {"id": case_id} for row, case_id in zip(rows, case_ids, strict=True)]
        )
    else:
        ids = dict(conn.execute(_INSERT_CASES, rows).tuples().all())
        case_ids = [ids[row["tracking_code"]] for row in rows]
    events, recordings, messages, tokens = [], [], [], []
    link_base = public_url or get_settings().public_url
    unused_tokens = new_tokens(sum(1 for row in rows if row["phone_enc"]))
    for case_id, row, (data, profile, checked, received) in zip(case_ids, rows, extras, strict=True):
        events.append(
            {
                "case_id": case_id,
                "at": received,
                "action": "register",
                "to_status": row["status"],
                "actor": data.actor,
                "unit_id": row["current_unit_id"],
                "note": "تماس پیش از پایان پیام قطع شد" if data.incomplete else None,
            }
        )
        if checked.recording_path:
            recordings.append(
                {
                    "case_id": case_id,
                    "kind": "message",
                    "path": checked.recording_path,
                    "duration_seconds": data.recording_seconds,
                }
            )
        if row["phone_enc"]:
            token, token_row = evidence_token_row(case_id, now=now, token=unused_tokens.pop())
            tokens.append(token_row)
            messages.append(
                {
                    "case_id": case_id,
                    "dedupe_key": f"case:{case_id}:registered",
                    "to_enc": row["phone_enc"],
                    "body": registration_text(
                        row["tracking_code"], data.kind, profile, evidence_link(link_base, token)
                    ),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": received,
                    "created_at": received,
                }
            )
    # Core INSERTs (executemany): the ORM's bulk path costs more than the database here.
    for statement, batch in zip(_INSERT_EXTRAS, (events, recordings, messages, tokens), strict=True):
        if batch:
            conn.execute(statement, batch)
    for (index, _), row in zip(order, rows, strict=True):
        results[index] = BatchResult("created", row["tracking_code"], row["status"], row["due_at"])
    return results, later


# Statements built once: a statement object's cache key is computed once, not on every filing.
_cases, _callers, _aliases = Case.__table__, Caller.__table__, CaseCode.__table__


def _per_dialect(build: Callable[[Callable], Any]) -> dict[str, Any]:
    """A statement over a list of keys, by dialect: `col IN (...)` on SQLite; `col = ANY(array)` on
    PostgreSQL, one short statement whatever the list's length. psycopg parses again every statement
    over 4 kB or 50 parameters (10-20 ms for a batch's IN list or multi-row INSERT)."""
    return {
        "postgresql": build(lambda col: col == any_(bindparam("keys", type_=ARRAY(col.type)))),
        "sqlite": build(lambda col: col.in_(bindparam("keys", expanding=True))),
    }


def _pick(conn: Connection, statements: dict[str, Any]) -> Any:
    return statements.get(conn.dialect.name, statements["sqlite"])


_KNOWN_CALLS = _per_dialect(lambda keys: select(_cases.c.call_id).where(keys(_cases.c.call_id)))
_TAKEN_ALIASES = _per_dialect(lambda keys: select(_aliases.c.code).where(keys(_aliases.c.code)))
_TAKEN_CODES = _per_dialect(
    lambda keys: (
        select(_aliases.c.code)
        .where(keys(_aliases.c.code))
        .union_all(select(_cases.c.tracking_code).where(keys(_cases.c.tracking_code)))
    )
)
_KNOWN_CALLERS = _per_dialect(
    lambda keys: select(_callers.c.id, _callers.c.national_id_hash, _callers.c.phone_enc).where(
        keys(_callers.c.national_id_hash)
    )
)
# PostgreSQL, many rows: ids drawn from the table's sequence first, then a plain executemany (psycopg
# pipelines it, the statement short and kept), instead of one multi-row INSERT ... RETURNING.
_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


def _drawn_ids(conn: Connection, table: Any, count: int) -> list[int] | None:
    """`count` new ids for `table` on PostgreSQL when there are several rows; None otherwise."""
    if conn.dialect.name != "postgresql" or count < 2:
        return None
    return list(conn.scalars(_NEXT_IDS, {"table": table.name, "n": count}))


_KNOWN_CALLER = select(_callers.c.id, _callers.c.phone_enc).where(
    _callers.c.national_id_hash == bindparam("key")
)
_GIVE_CALLER_PHONE = (
    update(_callers)
    .where(_callers.c.id == bindparam("caller"), _callers.c.phone_enc.is_(None))
    .values(phone_hash=bindparam("hash"), phone_enc=bindparam("enc"))
)
_INSERT_EXTRAS = tuple(
    model.__table__.insert() for model in (CaseEvent, Recording, OutboundMessage, EvidenceToken)
)
_INSERT_CASES = _cases.insert().returning(_cases.c.tracking_code, _cases.c.id)
_CALLER_KEYS = (_callers.c.id, _callers.c.national_id_hash, _callers.c.phone_enc)
_INSERT_CALLERS = _callers.insert().returning(*_CALLER_KEYS)
_INSERT_CALLERS_SKIPPING = text(
    "INSERT INTO caller (id, national_id_hash, national_id_enc, phone_hash, phone_enc, created_at) "
    "VALUES (:id, :national_id_hash, :national_id_enc, :phone_hash, :phone_enc, :created_at) "
    "ON CONFLICT (national_id_hash) DO NOTHING"
).bindparams(bindparam("created_at", type_=_callers.c.created_at.type))
_PLAIN_CASE_INSERT = _cases.insert()
# One new caller whose national ID may be stored already (not probed for one case): left out and
# looked up after. Written as text because the dialects' ON CONFLICT constructs are never cached (each
# use would be compiled again); SQLite and PostgreSQL spell it alike.
_INSERT_NEW_CALLER = text(
    "INSERT INTO caller (national_id_hash, national_id_enc, phone_hash, phone_enc, created_at) "
    "VALUES (:national_id_hash, :national_id_enc, :phone_hash, :phone_enc, :created_at) "
    "ON CONFLICT (national_id_hash) DO NOTHING RETURNING id, national_id_hash, phone_enc"
).bindparams(bindparam("created_at", type_=_callers.c.created_at.type))


def _insert_callers(conn: Connection, new_callers: dict[str, dict]) -> dict[str, int]:
    """Caller ids by key for the rows inserted. Matched back by what is unique in each row (the
    national ID's hash, else the freshly sealed number), so the rows may come back in any order:
    one multi-row INSERT on SQLite too. A national ID already stored is left out of the answer when
    there is one caller, and on PostgreSQL (on SQLite, where writers take turns, a batch probed first)."""
    key_of = {(values["national_id_hash"], values["phone_enc"]): key for key, values in new_callers.items()}
    if len(new_callers) == 1:
        [values] = new_callers.values()
        rows = conn.execute(_INSERT_NEW_CALLER, {**values, "created_at": utcnow()})
    elif (drawn := _drawn_ids(conn, _callers, len(new_callers))) is not None:
        # A national ID stored meanwhile by a concurrent filing is skipped, not a failed batch (which
        # would then be filed again case by case): the ids read back tell which rows went in.
        stamp = utcnow()
        conn.execute(
            _INSERT_CALLERS_SKIPPING,
            [v | {"id": i, "created_at": stamp} for v, i in zip(new_callers.values(), drawn, strict=True)],
        )
        digests = [key for key in new_callers if not key.startswith("#")]
        stored = {
            digest: caller_id
            for caller_id, digest, _ in conn.execute(_pick(conn, _KNOWN_CALLERS), {"keys": digests})
        }
        made = dict(zip(new_callers, drawn, strict=True))
        return {key: i for key, i in made.items() if key.startswith("#") or stored.get(key) == i}
    else:
        rows = conn.execute(_INSERT_CALLERS, list(new_callers.values()))
    return {key_of[(digest, sealed)]: caller_id for caller_id, digest, sealed in rows}


def _known_caller(conn: Connection, digest: str) -> tuple[int, bool]:
    caller_id, phone = conn.execute(_KNOWN_CALLER, {"key": digest}).one()
    return caller_id, phone is not None


def _unused_code_of(conn: Connection, prefix: str) -> str:
    """A new backend code no case or alias holds: one look-up for both (a clash with a code issued
    in the same moment still fails the INSERT on the unique key, and the filing is tried again)."""
    for _ in range(20):
        code = new_tracking_code(prefix)
        if conn.scalar(_pick(conn, _TAKEN_CODES), {"keys": [code]}) is None:
            return code
    raise RuntimeError("could not find an unused tracking code: the code space of this prefix is full")
