"""The speech-recognition draft of a recording, kept beside the operator's final transcript
(Case.transcript), which the operator writes from it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, UTCDateTime, utcnow

# Lower first: what callers said for their case before whole-call logs.
PRIORITY = {"message": 0, "call": 1}


class Transcription(Base):
    """One recording's draft and the work queue entry that makes it.

    status: waiting -> working -> done | failed. A claim sets `worker` and moves `lease_until` ahead;
    a worker that dies leaves the row "working" with a lease that runs out, and the next claim takes
    it again. For a waiting row `lease_until` is when it may be tried again (after a failure)."""

    __tablename__ = "transcription"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recording.id"), unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(10), default="waiting", index=True)
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str | None] = mapped_column(Text)
    # [{"word", "start", "end", "conf"}], seconds from the start of the recording.
    words: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(120))
    audio_seconds: Mapped[float | None] = mapped_column(Float)
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    # Audio seconds per wall-clock second (above 1 is faster than real time).
    real_time_factor: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    worker: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)

    recording = relationship("Recording")
