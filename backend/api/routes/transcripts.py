"""Transcripts for staff: the speech drafts of a case's recordings (for the console's player),
search by the words of drafts and final transcripts, and the transcription backlog for supervisors.

Scope is the staff inbox's (`visible_unit_ids`): a case out of reach looks the same as an absent one.
No response carries a complainant's national ID or phone number (R9); a draft may hold what the
caller said, which staff who can see the case may read anyway.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from backend.api.deps import DbSession, Now, current_user
from backend.api.errors import ApiError, error_responses
from backend.api.routes.staff import load_visible, visible_unit_ids
from backend.api.schemas import TrackingCodePath
from backend.core.config import get_settings
from backend.models import User
from backend.transcription.drafts import LOW_CONFIDENCE, drafts_for_case
from backend.transcription.queue import backlog
from backend.transcription.search import BadQuery, search_transcripts
from backend.transcription.speech_models import ModelProblem, model_installed

router = APIRouter(prefix="/api/v1/staff", tags=["transcripts"])
Staff = Annotated[User, Depends(current_user)]


def _model_installed() -> bool:
    settings = get_settings()
    try:
        return model_installed(settings.speech_language, settings)
    except ModelProblem:
        return False


class WordOut(BaseModel):
    word: str
    start: float
    end: float
    conf: float
    low: bool


class RecordingDraftOut(BaseModel):
    recording_id: int
    kind: str
    seconds: float | None
    status: str
    text: str | None
    words: list[WordOut]
    model: str | None
    real_time_factor: float | None
    attempts: int
    error: str | None


class CaseTranscriptionOut(BaseModel):
    tracking_code: str
    # False: the console shows "no speech model installed" instead of waiting for a draft.
    speech_model_installed: bool
    low_confidence_below: float
    final_transcript: str | None
    recordings: list[RecordingDraftOut]


@router.get(
    "/cases/{code}/transcription",
    response_model=CaseTranscriptionOut,
    responses=error_responses(401, 404, 422, 429),
)
def case_transcription(code: TrackingCodePath, user: Staff, db: DbSession) -> dict[str, Any]:
    """The drafts of a case's recordings, word by word with timings and confidences, beside the
    operator's final transcript."""
    case = load_visible(db, user, code)
    return {
        "tracking_code": case.tracking_code,
        "speech_model_installed": _model_installed(),
        "low_confidence_below": LOW_CONFIDENCE,
        "final_transcript": case.transcript,
        "recordings": [vars(d) for d in drafts_for_case(db, case)],
    }


class SearchHitOut(BaseModel):
    tracking_code: str | None
    service: str | None
    status: str | None
    unit: str | None
    source: str
    recording_id: int | None
    recording_kind: str | None
    snippet: str


class SearchOut(BaseModel):
    query: str
    speech_model_installed: bool
    results: list[SearchHitOut]


@router.get("/search", response_model=SearchOut, responses=error_responses(401, 422, 429))
def search(
    user: Staff,
    db: DbSession,
    q: Annotated[str, Query(min_length=1, max_length=200, description="words of a transcript")],
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Cases in the caller's reach whose draft or final transcript holds every word of `q`."""
    try:
        hits = search_transcripts(db, q, visible_unit_ids(db, user), limit=limit)
    except BadQuery as exc:
        raise ApiError(422, "invalid_query", str(exc)) from None
    return {
        "query": q,
        "speech_model_installed": _model_installed(),
        "results": [
            {
                "tracking_code": h.case.tracking_code if h.case else None,
                "service": h.case.service if h.case else None,
                "status": h.case.status if h.case else None,
                "unit": h.case.current_unit.code if h.case and h.case.current_unit else None,
                "source": h.source,
                "recording_id": h.recording_id,
                "recording_kind": h.recording_kind,
                "snippet": h.snippet,
            }
            for h in hits
        ],
    }


class FailedOut(BaseModel):
    recording_id: int
    kind: str
    tracking_code: str | None
    attempts: int
    error: str | None


class BacklogOut(BaseModel):
    speech_model_installed: bool
    waiting: int
    waiting_messages: int
    working: int
    failed: int
    oldest_waiting_message_age_seconds: float | None
    done_last_hour: int
    audio_seconds_last_hour: float
    failed_items: list[FailedOut]


@router.get("/transcription/backlog", response_model=BacklogOut, responses=error_responses(401, 403, 429))
def transcription_backlog(user: Staff, db: DbSession, now: Now) -> dict[str, Any]:
    """For the supervisor's console: what waits, how old the oldest message is, the last hour's
    throughput, and the files that failed."""
    if user.role not in ("supervisor", "admin"):
        raise ApiError(403, "forbidden", "the transcription backlog is for supervisors")
    report = backlog(db, now)
    return {
        "speech_model_installed": _model_installed(),
        **{k: v for k, v in vars(report).items() if k not in ("failed_items", "oldest_waiting_message_at")},
        "failed_items": [vars(item) for item in report.failed_items],
    }
