"""Staff search cases by the words of drafts and final transcripts, each within their own scope."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from backend.models import Case, Transcription
from backend.transcription import queue
from tests.backend.api.test_staff import login
from tests.backend.transcription.conftest import add_recording


def _draft(db, recording, text: str) -> None:
    queue.enqueue_new(db, "fa")
    db.execute(
        update(Transcription)
        .where(Transcription.recording_id == recording.id)
        .values(text=text, status="done")
    )
    db.commit()


@pytest.fixture
def corpus(db, staff):
    """A draft in Mashhad, a final transcript in Neyshabur, a draft at 111, a call log with no case."""
    mashhad = add_recording(db, unit="1482-khr-mashhad")
    _draft(db, mashhad, "آب آشامیدنی مرکز قطع است")
    neyshabur = add_recording(db, unit="1482-khr-neyshabur")
    neyshabur.case.transcript = "غذای کودکان کم است و آب گرم نیست"
    abfa = add_recording(db, unit="111-khz-abfa")
    _draft(db, abfa, "قطعی آب در کوی ملت")
    call = add_recording(db, kind="call", unit="111-khz-abfa", case=False)
    _draft(db, call, "تماس درباره آب")
    db.commit()
    return {
        "mashhad": mashhad.case.tracking_code,
        "neyshabur": neyshabur.case.tracking_code,
        "abfa": abfa.case.tracking_code,
    }


def _search(client, user, q):
    r = client.get("/api/v1/staff/search", params={"q": q}, headers=login(client, user))
    assert r.status_code == 200, r.text
    return {(h["tracking_code"], h["source"]) for h in r.json()["results"]}


def test_search_is_scoped_like_the_inbox(client, corpus):
    c = corpus
    assert _search(client, "admin", "آب") == {
        (c["mashhad"], "draft"),
        (c["neyshabur"], "final"),
        (c["abfa"], "draft"),
        (None, "draft"),
    }
    assert _search(client, "op", "آب") == {(c["mashhad"], "draft"), (c["neyshabur"], "final")}  # 1482 only
    assert _search(client, "khorasan", "آب") == {(c["mashhad"], "draft"), (c["neyshabur"], "final")}
    assert _search(client, "mashhad", "آب") == {(c["mashhad"], "draft")}
    assert _search(client, "neyshabur", "آب") == {(c["neyshabur"], "final")}
    assert _search(client, "omid", "آب") == set()  # a centre below Mashhad does not hold the case


def test_every_word_must_match_and_arabic_letters_count_as_persian(client, corpus):
    assert _search(client, "admin", "آب قطع") == {(corpus["mashhad"], "draft")}
    assert _search(client, "admin", "كودكان") == {(corpus["neyshabur"], "final")}  # Arabic ك typed
    assert _search(client, "admin", "برق") == set()


def test_the_final_transcript_is_searchable_once_saved_and_edited(client, db, corpus):
    case = db.query(Case).filter(Case.tracking_code == corpus["neyshabur"]).one()
    case.transcript = "صدای بلند در شب"
    db.commit()
    assert _search(client, "admin", "کودکان") == set()
    assert _search(client, "admin", "صدای شب") == {(corpus["neyshabur"], "final")}


@pytest.mark.parametrize("q", ['"', "AND", "NEAR(", "*", "آب OR", "-- ;", "a:b"])
def test_search_syntax_in_the_query_is_never_an_error(client, corpus, q):
    r = client.get("/api/v1/staff/search", params={"q": q}, headers=login(client, "admin"))
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.json()["error"]["code"] in ("invalid_query", "invalid_request")


def test_search_needs_a_staff_session(client, corpus):
    assert client.get("/api/v1/staff/search", params={"q": "آب"}).status_code == 401


def test_the_backlog_is_for_supervisors(client, corpus):
    assert client.get("/api/v1/staff/transcription/backlog", headers=login(client, "op")).status_code == 403
    r = client.get("/api/v1/staff/transcription/backlog", headers=login(client, "admin"))
    assert r.status_code == 200 and r.json()["speech_model_installed"] is False


def test_search_survives_a_migration_that_rebuilds_case_file(client, db, corpus, database_url):
    """SQLite batch migrations copy a table anew, dropping its triggers: the upgrade puts them back
    and re-indexes what changed meanwhile."""
    from sqlalchemy import text

    from backend.core.migrate import upgrade

    if not database_url.startswith("sqlite"):
        pytest.skip("FTS5 triggers are SQLite's")
    db.execute(text("DROP TRIGGER case_transcript_search_au"))
    case = db.query(Case).filter(Case.tracking_code == corpus["neyshabur"]).one()
    case.transcript = "فریاد نیمه شب"
    db.commit()
    assert _search(client, "admin", "فریاد") == set()  # the index missed it
    upgrade(database_url)
    assert _search(client, "admin", "فریاد") == {(corpus["neyshabur"], "final")}
    assert _search(client, "admin", "آب قطع") == {(corpus["mashhad"], "draft")}
