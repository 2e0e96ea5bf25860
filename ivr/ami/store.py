"""Writing call-log records: one row per call, filled by whichever source saw more (AMI live events,
or the CDR after a reconnect). Caller numbers are encrypted like every identity (R9)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.core.security import IdentityVault
from backend.models import CallLog, Case, Recording
from ivr.ami.book import CallRecord


def relative_recording(path: str | None, settings: Settings) -> str | None:
    """A recording path as Asterisk saw it, relative to the recordings folder."""
    if not path:
        return None
    for prefix in (settings.pbx_recording_path(), str(settings.recordings_dir), "/srv/ivr/recordings"):
        prefix = prefix.rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def conventional_call_file(record: CallRecord, settings: Settings) -> str | None:
    """The dial plan's MixMonitor name, for records rebuilt from the CDR."""
    if record.started_at is None:
        return None
    relative = f"calls/{record.started_at:%Y%m%d}/{record.unique_id}-call.wav"
    return relative if (Path(settings.recordings_dir) / relative).exists() else None


def save(session: Session, vault: IdentityVault, settings: Settings, record: CallRecord) -> CallLog:
    log = session.scalar(select(CallLog).where(CallLog.unique_id == record.unique_id))
    if log is None:
        log = CallLog(unique_id=record.unique_id)
        session.add(log)
    call_file = relative_recording(record.call_file, settings) or conventional_call_file(record, settings)
    fill = {
        "service": record.service,
        "started_at": record.started_at,
        "answered_at": record.answered_at,
        "ended_at": record.ended_at,
        "duration_seconds": record.duration_seconds,
        "path": record.path,
        "outcome": record.outcome,
        "tracking_code": record.tracking_code,
        "message_recording": record.message_file,
        "call_recording": call_file,
        "hangup_cause": record.hangup_cause,
    }
    for name, value in fill.items():
        if value is not None and getattr(log, name) is None:
            setattr(log, name, value)
    if record.caller and log.caller_hash is None:
        log.caller_hash = vault.lookup_hash(record.caller)
        log.caller_enc = vault.encrypt(record.caller)
    session.flush()
    case = (
        session.scalar(select(Case).where(Case.tracking_code == log.tracking_code))
        if log.tracking_code
        else None
    )
    if (
        log.call_recording
        and session.scalar(
            select(Recording.id).where(Recording.call_log_id == log.id, Recording.kind == "call")
        )
        is None
    ):
        session.add(
            Recording(
                call_log_id=log.id,
                case_id=case.id if case else None,
                kind="call",
                path=log.call_recording,
                duration_seconds=log.duration_seconds,
            )
        )
    return log
