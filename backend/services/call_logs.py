"""Call logs for supervisors (R19), as the IVR nodes report them: one row per call, merged from
whichever source saw more (AMI live events, or the CDR after a reconnect). A replay fills what is
still empty and never duplicates. Caller numbers are encrypted like every identity (R9)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.core.security import IdentityVault
from backend.models import CallLog, Recording
from backend.services.intake import case_by_code


@dataclass(frozen=True)
class CallReport:
    unique_id: str
    service: str | None = None
    caller_number: str | None = None
    started_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    duration_seconds: float | None = None
    outcome: str | None = None
    tracking_code: str | None = None
    path: str | None = None
    message_recording: str | None = None  # relative to the recordings folder
    call_recording: str | None = None  # relative to the recordings folder
    hangup_cause: str | None = None


FIELDS = (
    "service",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_seconds",
    "path",
    "outcome",
    "tracking_code",
    "message_recording",
    "call_recording",
    "hangup_cause",
)


def _merge(session: Session, vault: IdentityVault, log: CallLog, report: CallReport) -> bool:
    """Fill what is still empty; returns whether the call recording is linked to a case."""
    for name in FIELDS:
        value = getattr(report, name)
        if value is not None and getattr(log, name) is None:
            setattr(log, name, value)
    if log.duration_seconds is None and log.started_at and log.ended_at:
        log.duration_seconds = round((log.ended_at - log.started_at).total_seconds(), 3)
    if report.caller_number and log.caller_hash is None:
        log.caller_hash = vault.lookup_hash(report.caller_number)
        log.caller_enc = vault.encrypt(report.caller_number)
    session.flush()
    case = case_by_code(session, log.tracking_code) if log.tracking_code else None
    if not log.call_recording:
        return False
    recording = session.scalar(
        select(Recording).where(Recording.call_log_id == log.id, Recording.kind == "call")
    )
    if recording is None:
        session.add(
            Recording(
                call_log_id=log.id,
                case_id=case.id if case else None,
                kind="call",
                path=log.call_recording,
                duration_seconds=log.duration_seconds,
            )
        )
    elif recording.case_id is None and case is not None:
        recording.case_id = case.id  # the case arrived after the call log (it was spooled)
    session.flush()
    return case is not None


@dataclass(frozen=True)
class Saved:
    log: CallLog
    created: bool  # false: the call was logged already and this report merged into it
    case_linked: bool


def save_call_log(session: Session, vault: IdentityVault, report: CallReport) -> Saved:
    """Create or merge the call's log. Two reports of one call at once (Hangup
    and Cdr, or two listeners) meet the unique index: the loser merges into the winner's row."""
    for _attempt in range(3):
        log = session.scalar(select(CallLog).where(CallLog.unique_id == report.unique_id))
        created = log is None
        try:
            with session.begin_nested():
                if log is None:
                    log = CallLog(unique_id=report.unique_id)
                    session.add(log)
                linked = _merge(session, vault, log, report)
        except IntegrityError:
            continue  # another request inserted it first: read it and merge
        return Saved(log, created, linked)
    raise RuntimeError(f"could not save the call log of {report.unique_id}")
