"""What the console shows under a recording's audio player: the draft, word by word, with timings
(to seek the audio) and confidences (to mark doubtful words), beside the operator's final text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Case, Recording, Transcription

# Words below this confidence are shown as doubtful.
LOW_CONFIDENCE = 0.6


@dataclass
class RecordingDraft:
    recording_id: int
    kind: str
    seconds: float | None
    status: str  # waiting | working | done | failed
    text: str | None = None
    words: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    real_time_factor: float | None = None
    attempts: int = 0
    error: str | None = None


def draft_for_recording(session: Session, recording_id: int) -> RecordingDraft | None:
    """The draft of one recording (status "waiting" if no worker has reached it), None if there is
    no such recording. words: [{"word", "start", "end", "conf", "low"}], seconds from the start."""
    recording = session.get(Recording, recording_id)
    if recording is None:
        return None
    row = session.scalar(select(Transcription).where(Transcription.recording_id == recording_id))
    return _view(recording, row)


def drafts_for_case(session: Session, case: Case) -> list[RecordingDraft]:
    """Every recording of a case with its draft: the message first, then whole-call recordings."""
    rows = {
        t.recording_id: t
        for t in session.scalars(
            select(Transcription).where(Transcription.recording_id.in_([r.id for r in case.recordings]))
        )
    }
    recordings = sorted(case.recordings, key=lambda r: (r.kind != "message", r.id))
    return [_view(r, rows.get(r.id)) for r in recordings]


def _view(recording: Recording, row: Transcription | None) -> RecordingDraft:
    view = RecordingDraft(recording.id, recording.kind, recording.duration_seconds, "waiting")
    if row is None:
        return view
    view.status, view.attempts, view.error = row.status, row.attempts, row.error
    if row.status == "done":
        view.text, view.model, view.real_time_factor = row.text, row.model, row.real_time_factor
        view.words = [{**w, "low": w.get("conf", 0.0) < LOW_CONFIDENCE} for w in row.words or []]
    return view
