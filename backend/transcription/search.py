"""Searching cases by the words of their transcripts, the speech drafts and the operators' final
text alike: SQLite's FTS5 index (migration 0009) or PostgreSQL's full text ('simple' configuration,
GIN indexes), within the staff member's scope."""

from __future__ import annotations

import re
from dataclasses import dataclass

from persiantools import characters
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.models import Case, Recording, Transcription

MAX_WORDS = 10
_WORD = re.compile(r"\w+")


class BadQuery(ValueError):
    pass


@dataclass
class Hit:
    case: Case | None
    source: str  # "draft" (speech recognition) or "final" (the operator's transcript)
    recording_id: int | None
    recording_kind: str | None
    snippet: str


def query_words(query: str) -> list[str]:
    """The words searched for: Arabic letter forms made Persian (ي -> ی, ك -> ک), as the drafts are."""
    words = _WORD.findall(characters.ar_to_fa(query))
    if not words:
        raise BadQuery("the search has no words")
    if len(words) > MAX_WORDS:
        raise BadQuery(f"at most {MAX_WORDS} words")
    return words


def snippet(body: str, words: list[str], width: int = 80) -> str:
    folded = body.casefold()
    at = min((i for i in (folded.find(w.casefold()) for w in words) if i >= 0), default=0)
    start, end = max(0, at - width), min(len(body), at + width)
    return ("…" if start else "") + body[start:end] + ("…" if end < len(body) else "")


def _matching_ids(session: Session, words: list[str], limit: int) -> tuple[list[int], list[int]]:
    """(transcription ids, case ids) whose text has every word, best first."""
    if session.bind.dialect.name == "postgresql":
        q = " ".join(words)
        drafts = session.scalars(
            text(
                "SELECT id FROM transcription WHERE to_tsvector('simple', coalesce(text, '')) "
                "@@ plainto_tsquery('simple', :q) ORDER BY id DESC LIMIT :limit"
            ),
            {"q": q, "limit": limit},
        ).all()
        finals = session.scalars(
            text(
                "SELECT id FROM case_file WHERE to_tsvector('simple', coalesce(transcript, '')) "
                "@@ plainto_tsquery('simple', :q) ORDER BY id DESC LIMIT :limit"
            ),
            {"q": q, "limit": limit},
        ).all()
        return list(drafts), list(finals)
    # Each word quoted: a word is searched as itself, never read as FTS5 syntax (AND, NEAR, *, ").
    match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    rowids = session.scalars(
        text(
            "SELECT rowid FROM transcript_search WHERE transcript_search MATCH :m ORDER BY rank LIMIT :limit"
        ),
        {"m": match, "limit": limit * 2},
    ).all()
    # Even rowids are drafts (transcription id * 2), odd ones final transcripts (case id * 2 + 1).
    return [r // 2 for r in rowids if r % 2 == 0], [r // 2 for r in rowids if r % 2 == 1]


def search_transcripts(
    session: Session, query: str, visible_units: set[int] | None, *, limit: int = 50
) -> list[Hit]:
    """Cases (and, for those who see every unit, whole-call logs with no case) whose transcripts
    hold every word of `query`. `visible_units` None: every unit."""
    words = query_words(query)
    draft_ids, case_ids = _matching_ids(session, words, limit * 4)

    def in_scope(case: Case | None) -> bool:
        if visible_units is None:
            return True
        return case is not None and case.current_unit_id in visible_units

    hits: list[Hit] = []
    if case_ids:
        for case in session.scalars(select(Case).where(Case.id.in_(case_ids))):
            if in_scope(case) and case.transcript:
                hits.append(Hit(case, "final", None, None, snippet(case.transcript, words)))
    if draft_ids:
        rows = session.execute(
            select(Transcription, Recording)
            .join(Recording, Recording.id == Transcription.recording_id)
            .where(Transcription.id.in_(draft_ids))
        ).all()
        for draft, recording in rows:
            if in_scope(recording.case) and draft.text:
                hits.append(
                    Hit(recording.case, "draft", recording.id, recording.kind, snippet(draft.text, words))
                )
    # Newest cases first; the operator's final text before the machine's draft of the same case.
    hits.sort(key=lambda h: (-(h.case.id if h.case else 0), h.source != "final", h.recording_id or 0))
    return hits[:limit]
