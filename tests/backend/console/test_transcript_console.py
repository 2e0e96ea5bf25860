"""The speech draft on the console (issue 11): each word under the audio player carries its start
time, doubtful words are marked, the transcript box starts from the draft, saving the operator's text
keeps the draft beside it and writes a case event; no model, waiting and failed drafts are said so;
the supervisor's call page shows the transcription backlog and whole-call drafts."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import select

from backend.models import CallLog, Case, Recording, Transcription
from tests.backend.api.test_staff import START
from tests.backend.console.conftest import console_login
from tests.backend.console.test_console import file_case, post
from tests.backend.transcription.conftest import fake_model  # noqa: F401  (a model's layout, no engine)
from tests.conftest import clear_caches

WORDS = [
    {"word": "سلام", "start": 0.5, "end": 0.9, "conf": 0.97},
    {"word": "آب", "start": 1.25, "end": 1.6, "conf": 0.31},
    {"word": "نیست", "start": 1.7, "end": 2.2, "conf": 0.88},
]
DRAFT = "سلام آب نیست"
NO_MODEL = "مدل گفتار نصب نشده است"


def word_buttons(page: str) -> dict[str, str]:
    """Each draft word's button tag, by the word."""
    return {
        html.unescape(m.group(2)): m.group(1)
        for m in re.finditer(r'(<button type="button" class="word[^"]*"[^>]*>)([^<]*)</button>', page)
    }


def textarea(page: str) -> str:
    found = re.search(r'<textarea id="transcript" name="transcript"[^>]*>([^<]*)</textarea>', page)
    assert found, "no transcript box"
    return html.unescape(found.group(1))


def draft(db, code: str, **values) -> Transcription:
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    recording = next(r for r in case.recordings if r.kind == "message")
    row = Transcription(recording_id=recording.id, language="fa", priority=0, **values)
    db.add(row)
    db.commit()
    return row


def done_draft(db, code: str) -> Transcription:
    return draft(
        db, code, status="done", text=DRAFT, words=WORDS, model="vosk-model-small-fa-0.42", attempts=1
    )


@pytest.mark.usefixtures("fake_model")
def test_words_carry_their_start_and_doubtful_ones_are_marked(
    client, staff, clock, ivr_headers, settings_env, db
):
    code = file_case(client, ivr_headers, settings_env)
    done_draft(db, code)
    console_login(client, "op")
    page = client.get(f"/console/cases/{code}").text
    recording_id = db.scalar(select(Recording.id).where(Recording.kind == "message"))
    # The words sit under the message's player and name it.
    assert f'<audio id="audio-{recording_id}"' in page
    assert f'data-audio="audio-{recording_id}"' in page
    buttons = word_buttons(page)
    assert list(buttons) == ["سلام", "آب", "نیست"]
    assert 'data-start="0.50"' in buttons["سلام"] and 'data-start="1.25"' in buttons["آب"]
    assert 'class="word low"' in buttons["آب"] and "اطمینان کم" in buttons["آب"]
    for sure in ("سلام", "نیست"):
        assert 'class="word"' in buttons[sure] and "title=" not in buttons[sure]
    # No inline handlers: the seeking is transcript.js, served by us.
    assert "onclick" not in page
    assert '<script src="/console/static/transcript.js" defer></script>' in page
    script = client.get("/console/static/transcript.js")
    assert script.status_code == 200 and "currentTime" in script.text
    # No final transcript yet: the box starts from the draft.
    assert textarea(page) == DRAFT
    assert NO_MODEL not in page


@pytest.mark.usefixtures("fake_model")
def test_the_low_confidence_threshold_is_a_setting(
    client, staff, clock, ivr_headers, settings_env, db, monkeypatch
):
    code = file_case(client, ivr_headers, settings_env)
    done_draft(db, code)
    monkeypatch.setenv("DIDEHBAN_TRANSCRIPT_LOW_CONFIDENCE", "0.9")
    clear_caches()
    console_login(client, "op")
    buttons = word_buttons(client.get(f"/console/cases/{code}").text)
    assert [w for w, tag in buttons.items() if "low" in tag] == ["آب", "نیست"]


@pytest.mark.usefixtures("fake_model")
def test_saving_the_transcript_keeps_the_draft_and_writes_an_event(
    client, staff, clock, ivr_headers, settings_env, db
):
    code = file_case(client, ivr_headers, settings_env)
    row = done_draft(db, code)
    clock.now = START + dt.timedelta(minutes=7)
    csrf = console_login(client, "op")
    corrected = "سلام، آب ما قطع است."
    r = post(client, f"/console/cases/{code}/transcript", csrf, transcript=corrected)
    assert r.status_code == 303, r.text
    db.expire_all()
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    assert case.transcript == corrected
    kept = db.get(Transcription, row.id)
    assert kept.text == DRAFT and kept.words == WORDS and kept.status == "done"
    event = [e for e in case.events if e.action == "transcript"]
    assert len(event) == 1
    assert event[0].actor == "op" and event[0].at == START + dt.timedelta(minutes=7)
    assert event[0].actor_user_id is not None and event[0].note == corrected
    # The page shows the final text in the box and the draft still under the player.
    page = client.get(f"/console/cases/{code}").text
    assert textarea(page) == corrected
    assert list(word_buttons(page)) == ["سلام", "آب", "نیست"]


def test_no_model_waiting_and_failed_drafts_are_said_so(
    client, staff, clock, ivr_headers, settings_env, db, monkeypatch
):
    code = file_case(client, ivr_headers, settings_env)
    console_login(client, "op")
    page = client.get(f"/console/cases/{code}").text
    assert NO_MODEL in page and not word_buttons(page)
    assert textarea(page) == ""

    # With a model: the message waits for the worker.
    root = settings_env / "model"
    for part in ("am/final.mdl", "conf/mfcc.conf", "graph/HCLG.fst"):
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).write_text("x")
    monkeypatch.setenv("DIDEHBAN_SPEECH_MODELS", f'{{"fa": "{root}"}}')
    clear_caches()
    page = client.get(f"/console/cases/{code}").text
    assert NO_MODEL not in page and "در انتظار تبدیل گفتار به متن" in page

    row = draft(db, code, status="failed", attempts=3, error="vosk: bad file")
    page = client.get(f"/console/cases/{code}").text
    assert "تبدیل گفتار به متن این صدا ناموفق بود" in page and "vosk" not in page
    assert not word_buttons(page) and textarea(page) == ""

    # A draft made before the model was removed is still shown.
    row.status, row.text, row.words = "done", DRAFT, WORDS
    db.commit()
    monkeypatch.delenv("DIDEHBAN_SPEECH_MODELS")
    clear_caches()
    page = client.get(f"/console/cases/{code}").text
    assert list(word_buttons(page)) == ["سلام", "آب", "نیست"] and NO_MODEL not in page


@pytest.mark.usefixtures("fake_model")
def test_supervisor_sees_the_backlog_and_whole_call_drafts(
    client, staff, clock, ivr_headers, settings_env, db
):
    code = file_case(client, ivr_headers, settings_env)
    file_case(client, ivr_headers, settings_env, call_id="1700000000.2")
    done_draft(db, code)
    log = CallLog(
        unique_id="didehban-pbx1-1700000000.1",
        service="1482",
        started_at=START,
        outcome="filed",
        tracking_code=code,
        call_recording="1482/20261122/1700000000.1-call.wav",
    )
    db.add(log)
    db.add(Recording(kind="call", path=log.call_recording, duration_seconds=9.0))
    db.commit()
    call = db.scalar(select(Recording).where(Recording.kind == "call"))
    db.add(
        Transcription(
            recording_id=call.id,
            language="fa",
            priority=10,
            status="done",
            text="الو",
            words=[{"word": "الو", "start": 0.3, "end": 0.6, "conf": 0.9}],
            audio_seconds=9.0,
            finished_at=START - dt.timedelta(minutes=5),
            attempts=1,
        )
    )
    db.commit()
    console_login(client, "super")
    page = client.get("/console/calls").text
    assert "صف تبدیل گفتار به متن" in page
    backlog = page[page.index('id="backlog-h"') : page.index("</section>", page.index('id="backlog-h"'))]
    # One message waits (the second case's); the draft of the first and the call's are done.
    assert "<dt>در انتظار</dt><dd>۱ (۱ پیام)</dd>" in backlog
    assert "قدیمی‌ترین پیام در انتظار" in backlog and NO_MODEL not in backlog
    assert f'data-audio="call-{log.id}-call"' in page
    assert 'data-start="0.30"' in page
    # Operators do not get the supervisor's page.
    console_login(client, "op")
    assert client.get("/console/calls").status_code == 403
