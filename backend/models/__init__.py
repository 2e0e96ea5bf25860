"""All tables, imported here so `Base.metadata` knows them (alembic and tests use it)."""

from backend.models.base import Base, utcnow
from backend.models.calls import CallLog
from backend.models.case import Attachment, Caller, Case, CaseCode, CaseEvent, Recording, Referral
from backend.models.messages import OutboundMessage
from backend.models.org import Unit, User
from backend.models.scheduling import SchedulerFailure, SchedulerJobRun, SchedulerLease
from backend.models.staff import AccountEvent, Notice, StaffSession
from backend.models.transcription import Transcription

__all__ = [
    "AccountEvent",
    "Attachment",
    "Base",
    "CallLog",
    "Caller",
    "Case",
    "CaseCode",
    "CaseEvent",
    "Notice",
    "OutboundMessage",
    "Recording",
    "Referral",
    "SchedulerFailure",
    "SchedulerJobRun",
    "SchedulerLease",
    "StaffSession",
    "Transcription",
    "Unit",
    "User",
    "utcnow",
]
