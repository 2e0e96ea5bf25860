from __future__ import annotations

import array
import wave
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from persiantools import digits as fa_digits

from prompts.catalog import load_catalog
from prompts.say import say_digits, say_jalali_date, say_number, say_time

FLOW_PROMPTS = [
    "welcome-1482",
    "welcome-111",
    "main-menu",
    "kind-menu",
    "urgency-menu",
    "enter-national-id",
    "national-id-invalid",
    "you-entered",
    "confirm-menu",
    "record-instructions",
    "beep",
    "recording-menu",
    "no-message-recorded",
    "case-registered",
    "your-tracking-code-is",
    "tracking-code-repeat-menu",
    "sms-will-follow",
    "enter-tracking-code",
    "tracking-code-invalid",
    "case-not-found",
    "case-waiting-for-review",
    "status-intro",
    "case-kind-is",
    "urgent-word",
    "handled-by",
    "registered-on",
    "last-action-on",
    "deadline-is",
    "answer-is",
    "answer-only-for-owner",
    "no-answer-yet",
    "escalate-offer",
    "escalated",
    "already-escalated",
    "invalid-key",
    "no-input",
    "transfer-to-operator",
    "too-many-failures-goodbye",
    "operator-connecting",
    "operator-closed-leave-message",
    "leave-message-after-beep",
    "message-received",
    "goodbye",
    "system-unavailable-leave-message",
    "backend-slow-please-wait",
    "satisfaction-survey",
    "thanks-for-rating",
    "hour-word",
    "minute-word",
]


def _text(ids: list[str]) -> str:
    catalog = load_catalog()
    # espeak needs the vowel mark on نُه (nine); the reference spelling has none.
    return " ".join(catalog[i] for i in ids).replace("نُه", "نه")


def test_every_flow_prompt_and_unit_has_text():
    from backend.services.profiles import get_profiles

    catalog = load_catalog()
    missing = [p for p in FLOW_PROMPTS if not catalog.get(p)]
    assert missing == []
    for profile in get_profiles().values():
        for spec, _ in profile.all_units():
            assert catalog[f"unit-{spec.code}"] == spec.name_fa
        for kind in profile.kinds:
            assert f"kind-{kind}" in catalog


def test_menus_name_their_keys():
    catalog = load_catalog()
    assert "یک" in catalog["main-menu"] and "دو" in catalog["main-menu"] and "صفر" in catalog["main-menu"]
    assert "نُه" in catalog["escalate-offer"]  # espeak reads unmarked نه as "no"


@settings(max_examples=300)
@given(st.integers(0, 999_999_999))
def test_numbers_compose_to_the_standard_words(n):
    ids = say_number(n)
    assert all(i in load_catalog() for i in ids)
    assert _text(ids).replace("and-word", "و") == fa_digits.to_word(n)


@given(st.text(alphabet="0123456789۰۱۲۳۴۵۶۷۸۹", min_size=1, max_size=12))
def test_digits_are_read_one_by_one(digits):
    ids = say_digits(digits)
    assert len(ids) == len(digits)
    assert all(i.startswith("digit-") and i in load_catalog() for i in ids)


def test_dates_and_times_in_words():
    assert _text(say_jalali_date(1403, 5, 12)) == "دوازدهم مرداد یک هزار و چهارصد و سه"
    assert _text(say_time(10, 15)) == "ساعت ده و پانزده دقیقه"
    assert _text(say_time(17, 0)) == "ساعت هفده"
    with pytest.raises(ValueError):
        say_jalali_date(1403, 13, 1)
    with pytest.raises(ValueError):
        say_number(-1)


def _wav_stats(path: Path) -> tuple[int, int, int, float, float]:
    with wave.open(str(path)) as w:
        frames = w.readframes(w.getnframes())
        samples = array.array("h", frames)
        rms = (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate(), rms


@pytest.fixture
def prompts_dir(settings_env, monkeypatch, tmp_path):
    from tests.conftest import clear_caches

    monkeypatch.setenv("DIDEHBAN_PROMPTS_DIR", str(tmp_path / "prompts"))
    clear_caches()
    return tmp_path / "prompts"


def test_render_text_makes_real_8khz_speech(prompts_dir):
    from prompts.paths import audio_dir
    from prompts.render import render_text

    prompt_id = render_text("مرکز بازرسی شد و مسئول آن در تاریخ ۱۴۰۵/۰۹/۰۲ توبیخ شد.")
    assert prompt_id.startswith("dyn-")
    rate, channels, width, seconds, rms = _wav_stats(audio_dir() / f"{prompt_id}.wav")
    assert (rate, channels, width) == (8000, 1, 2)
    assert 2.0 < seconds < 15.0 and rms > 500
    assert _wav_stats(audio_dir() / f"{prompt_id}.wav16")[0] == 16000
    assert render_text("مرکز بازرسی شد و مسئول آن در تاریخ ۱۴۰۵/۰۹/۰۲ توبیخ شد.") == prompt_id


def test_an_answer_that_looks_like_an_option_is_spoken_not_obeyed(prompts_dir, settings_env):
    """Issue 9 fault 8: the answer was espeak-ng's last argument, so `-f.env` made espeak read the
    working directory's .env aloud to the caller. The text now goes on stdin."""
    from prompts.paths import audio_dir
    from prompts.render import render_text

    # A long secret file in the working directory (settings_env made tmp_path the working directory).
    (settings_env / ".env").write_text(("DIDEHBAN_SECRET_KEY=" + "abcdefghij" * 8 + "\n") * 30)
    prompt_id = render_text("-f.env")
    seconds = _wav_stats(audio_dir() / f"{prompt_id}.wav")[3]
    assert seconds < 4.0  # a few syllables, not thirty lines of key read letter by letter


def test_the_answer_text_never_reaches_the_command_line_or_the_disk(prompts_dir, monkeypatch):
    import subprocess

    from prompts import render

    seen: list[tuple[list[str], bytes | None]] = []
    real_run = subprocess.run

    def spy(argv, *args, **kwargs):
        seen.append((list(map(str, argv)), kwargs.get("input")))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(render.subprocess, "run", spy)
    answer = "--version پاسخ محرمانه"
    prompt_id = render.render_text(answer)
    espeak = [(argv, given) for argv, given in seen if argv[0].endswith("espeak-ng")]
    assert espeak and all(answer not in " ".join(argv) and "--stdin" in argv for argv, _ in espeak)
    assert espeak[0][1] == render.speakable(answer).encode()
    kept = sorted(p.name for p in render.audio_dir().iterdir())
    assert kept == [f"{prompt_id}.wav", f"{prompt_id}.wav16"]  # audio only, no text beside it


def test_spoken_answers_are_swept_after_an_hour(prompts_dir):
    import time

    from prompts.render import audio_dir, render_text, sweep_spoken_answers

    prompt_id = render_text("پاسخ")
    (audio_dir() / "dyn-old.txt").write_text("an answer an older version kept")
    assert sweep_spoken_answers() == 1  # the text goes at once; fresh audio stays for the call
    assert (audio_dir() / f"{prompt_id}.wav").exists()
    assert sweep_spoken_answers(now=time.time() + 7200) == 2
    assert not list(audio_dir().glob("dyn-*"))


def test_speakable_text_has_no_raw_digits_or_slashes():
    from prompts.render import speakable

    text = speakable("کد ۱۰۲۳۴۵۶۷۸۹ در تاریخ 1405/9/2")
    assert "/" not in text and not any(ch.isdigit() for ch in text)
    assert "یک صفر دو سه" in text  # long codes digit by digit


def test_build_is_incremental_and_recordings_override(prompts_dir, tmp_path):
    from prompts.build import build

    recorded = tmp_path / "recorded"
    recorded.mkdir()
    import subprocess

    # A "human" recording at 44.1 kHz stereo: converted, and it wins over the generated voice.
    subprocess.run(
        ["sox", "-n", "-r", "44100", "-c", "2", str(recorded / "goodbye.wav"), "synth", "1.5", "sine", "440"],
        check=True,
    )
    only = ["goodbye", "main-menu", "beep", "digit-9"]
    first = build(only=only, recorded_dir=recorded)
    assert sorted(first.rendered) == ["beep", "digit-9", "main-menu"] and first.overridden == ["goodbye"]
    assert not first.failed
    second = build(only=only, recorded_dir=recorded)
    assert sorted(second.skipped) == sorted(only) and not second.rendered
    out = prompts_dir / "audio" / "fa"
    rate, channels, _, seconds, _ = _wav_stats(out / "goodbye.wav")
    assert (rate, channels) == (8000, 1) and abs(seconds - 1.5) < 0.05
    assert 0.25 < _wav_stats(out / "beep.wav")[3] < 0.35
    # Three options, worded short (issue 9: time to the tone) but still spoken in full seconds.
    assert 4 < _wav_stats(out / "main-menu.wav")[3] < 12


def _ulaw_to_linear(byte: int) -> int:
    """G.711 mu-law to 16-bit linear (ITU-T G.711)."""
    byte = ~byte & 0xFF
    magnitude = ((((byte & 0x0F) << 3) + 0x84) << ((byte & 0x70) >> 4)) - 0x84
    return -magnitude if byte & 0x80 else magnitude


def test_catalog_prompts_ship_in_the_calls_codecs(prompts_dir):
    """Issue 13 (500 SIP calls): with only .wav (16-bit linear) Asterisk transcoded every 20 ms frame
    of every prompt to the call's G.711. The build writes .ulaw and .alaw beside the .wav, the same
    audio at one byte a sample, and a build made before them fills them in rather than skip."""
    from prompts.build import build

    out = prompts_dir / "audio" / "fa"
    assert build(only=["goodbye"]).rendered == ["goodbye"]
    with wave.open(str(out / "goodbye.wav")) as w:
        linear = array.array("h", w.readframes(w.getnframes()))
    ulaw = (out / "goodbye.ulaw").read_bytes()
    assert len(ulaw) == len(linear) == (out / "goodbye.alaw").stat().st_size
    # The same speech: mu-law keeps a sample within its step (under 1/16 of the sample's size).
    assert all(abs(_ulaw_to_linear(b) - x) <= abs(x) / 16 + 40 for b, x in zip(ulaw, linear, strict=True))
    assert max(abs(x) for x in linear) > 5000

    (out / "goodbye.ulaw").unlink()
    (out / "goodbye.alaw").unlink()
    again = build(only=["goodbye"])
    assert again.rendered == ["goodbye"] and (out / "goodbye.ulaw").stat().st_size == len(ulaw)


def test_gtts_refuses_persian_at_once(prompts_dir, tmp_path):
    import time

    from prompts.render import RenderError, synthesize

    started = time.monotonic()
    with pytest.raises(RenderError, match="no voice for 'fa'"):
        synthesize("سلام", tmp_path / "x.wav", engine="gtts", lang="fa")
    assert time.monotonic() - started < 1.0


def test_gtts_unreachable_fails_within_its_timeout(prompts_dir, tmp_path, monkeypatch):
    import time

    from prompts.render import RenderError, synthesize

    # No route to Google from here (or a dead proxy): it must fail clearly, not hang.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(RenderError, match="gTTS failed"):
        synthesize("hello", tmp_path / "x.wav", engine="gtts", lang="en", timeout=2.0)
    assert time.monotonic() - started < 20.0


def test_cli_reports_gtts_without_persian(settings_env):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "backend.cli", "prompts", "build", "--engine", "gtts"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "gTTS has no voice for 'fa'" in r.stdout
