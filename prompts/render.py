"""Turning text into Asterisk-ready audio: 8 kHz 16-bit mono .wav and 16 kHz .wav16, and for the
catalog also the calls' own codecs, .ulaw and .alaw (G.711 at 8 kHz).

Asterisk plays the file whose format costs least to send: with .ulaw beside .wav a ulaw call (an
alaw call with .alaw) is sent the file's bytes as they are, with no transcoding on every 20 ms frame
of every prompt (measured: about 6% of Asterisk's CPU at 200 concurrent calls).

espeak-ng speaks Persian offline (robotic but clear). gTTS is optional, for the languages it has:
it has no Persian, and it needs servers these machines may not reach, so it runs behind a timeout.
Files are written to a temporary name and renamed, so Asterisk never reads half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from persiantools import digits as fa_digits

from domain.digits import normalise_digits
from prompts.paths import audio_dir

ESPEAK_VOICES = {"fa": "fa", "en": "en", "ar": "ar", "ur": "ur"}


class RenderError(RuntimeError):
    pass


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        package = "sox" if tool == "sox" else "espeak-ng"
        raise RenderError(f"{tool} is not installed (apt-get install {package})")
    return path


def speakable(text: str) -> str:
    """Text espeak reads right: short numbers as words, long digit strings digit by digit, no slashes."""

    def number(match: re.Match[str]) -> str:
        digits = normalise_digits(match.group(0))
        if len(digits) > 4:  # codes and phone numbers: one digit at a time
            return " ".join(fa_digits.to_word(int(d)) for d in digits)
        return fa_digits.to_word(int(digits))

    text = re.sub(r"[0-9۰-۹٠-٩]+", number, text)
    return text.replace("/", " ")


def _espeak(text: str, lang: str, out: Path) -> None:
    """The text goes on stdin, never on the command line: an answer such as `-f.env` is words to
    say, not an option that makes espeak read a file aloud."""
    voice = ESPEAK_VOICES.get(lang, lang)
    subprocess.run(
        [_require("espeak-ng"), "-v", voice, "-s", "150", "-w", str(out), "--stdin"],
        input=speakable(text).encode(),
        check=True,
        capture_output=True,
        timeout=60,
    )


def _gtts(text: str, lang: str, out: Path, timeout: float) -> None:
    from gtts import gTTS
    from gtts.lang import tts_langs

    # Checked before any network call: asking Google for Persian would only fail slowly.
    if lang not in tts_langs():
        raise RenderError(f"gTTS has no voice for {lang!r}: use --engine espeak for it")
    mp3 = out.with_suffix(".mp3")
    try:
        gTTS(text, lang=lang, timeout=timeout).save(str(mp3))
    except Exception as exc:  # gTTS raises its own and requests' errors
        raise RenderError(f"gTTS failed (its servers may be unreachable from here): {exc}") from exc
    subprocess.run([_require("sox"), str(mp3), str(out)], check=True, capture_output=True, timeout=60)


def synthesize(
    text: str, out_wav: Path, *, engine: str = "espeak", lang: str = "fa", timeout: float = 10.0
) -> None:
    if engine == "espeak":
        _espeak(text, lang, out_wav)
    elif engine == "gtts":
        _gtts(text, lang, out_wav, timeout)
    else:
        raise RenderError(f"unknown speech engine {engine!r} (espeak or gtts)")


def make_tone(out_wav: Path, *, freq: int = 1000, seconds: float = 0.3) -> None:
    subprocess.run(
        [
            _require("sox"),
            "-n",
            "-r",
            "16000",
            "-c",
            "1",
            "-b",
            "16",
            str(out_wav),
            "synth",
            str(seconds),
            "sine",
            str(freq),
            "vol",
            "0.5",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


# The codecs calls are answered in (asterisk_conf/pjsip.conf: allow = alaw,ulaw), as sox writes them.
TELEPHONE_FORMATS = ((".ulaw", "ul"), (".alaw", "al"))


def install_audio(source: Path, target_base: Path, *, telephone: bool = True) -> None:
    """Convert any audio sox reads into <base>.wav (8 kHz) and <base>.wav16 (16 kHz), atomically;
    with `telephone`, also <base>.ulaw and <base>.alaw, made from the 8 kHz .wav."""
    sox = _require("sox")
    target_base.parent.mkdir(parents=True, exist_ok=True)
    _convert(sox, source, target_base, ((".wav", "8000"), (".wav16", "16000")))
    if telephone:
        wav = Path(f"{target_base}.wav")
        for suffix, kind in TELEPHONE_FORMATS:
            fd, tmp = tempfile.mkstemp(dir=target_base.parent, suffix=suffix, prefix=".tmp-")
            os.close(fd)
            try:
                subprocess.run([sox, str(wav), "-t", kind, tmp], check=True, capture_output=True, timeout=60)
                os.replace(tmp, f"{target_base}{suffix}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)


def _convert(sox: str, source: Path, target_base: Path, targets: tuple[tuple[str, str], ...]) -> None:
    for suffix, rate in targets:
        fd, tmp = tempfile.mkstemp(dir=target_base.parent, suffix=".wav", prefix=".tmp-")
        os.close(fd)
        try:
            subprocess.run(
                [
                    sox,
                    str(source),
                    "-r",
                    rate,
                    "-c",
                    "1",
                    "-b",
                    "16",
                    "-e",
                    "signed-integer",
                    tmp,
                    "norm",
                    "-3",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            os.replace(tmp, f"{target_base}{suffix}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def render_to(
    text: str, target_base: Path, *, engine: str = "espeak", lang: str = "fa", telephone: bool = True
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        synthesize(text, raw, engine=engine, lang=lang)
        install_audio(raw, target_base, telephone=telephone)


DYNAMIC_PREFIX = "dyn-"
# An answer's audio lives as long as a call may need it, then goes (sweep_spoken_answers).
SPOKEN_ANSWER_SECONDS = 3600.0


def render_text(text: str) -> str:
    """A dynamic prompt for free text (an answer read aloud); returns its prompt id. Cached by text.
    No text is written to disk, only the audio Asterisk plays. Blocking (runs espeak and sox): call
    it off the event loop."""
    prompt_id = DYNAMIC_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:20]
    base = audio_dir() / prompt_id
    if not Path(f"{base}.wav").exists():
        # Played once, while the caller waits for it: no G.711 copies (two more sox runs).
        render_to(text, base, telephone=False)
    return prompt_id


def sweep_spoken_answers(max_age: float = SPOKEN_ANSWER_SECONDS, *, now: float | None = None) -> int:
    """Delete rendered answers older than max_age (and any answer text an older version left)."""
    folder = audio_dir()
    now = time.time() if now is None else now
    removed = 0
    for path in folder.glob(DYNAMIC_PREFIX + "*") if folder.is_dir() else []:
        try:
            if path.suffix == ".txt" or now - path.stat().st_mtime > max_age:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
