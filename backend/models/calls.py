"""Call logs for supervisors (R19), filled from AMI events."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, utcnow


class CallLog(Base):
    __tablename__ = "call_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    unique_id: Mapped[str] = mapped_column(String(80), unique=True)
    service: Mapped[str | None] = mapped_column(String(16), index=True)
    caller_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    caller_enc: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    # The menus the caller went through, e.g. "menu:1>kind:1>urgent:2>nid>record>code".
    path: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(40))
    tracking_code: Mapped[str | None] = mapped_column(String(10), index=True)
    message_recording: Mapped[str | None] = mapped_column(Text)
    call_recording: Mapped[str | None] = mapped_column(Text)
    hangup_cause: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
