"""Running vosk on one recording: the 8 kHz telephone audio as it is, fed in chunks, with each
word's timing and confidence. Models are loaded once per process and shared by its threads."""

from __future__ import annotations

import json
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Half a second of 8 kHz audio per call: small enough to renew a lease between chunks.
CHUNK_FRAMES = 4000

_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


class AudioProblem(ValueError):
    """A file vosk cannot be given: missing, not a WAV, or not 16-bit mono PCM."""


@dataclass
class Draft:
    text: str
    words: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float | None:
        """Audio seconds per wall-clock second (2.0: a minute of audio in half a minute)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else None

    @property
    def audio_per_cpu_second(self) -> float | None:
        return self.audio_seconds / self.cpu_seconds if self.cpu_seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "words": self.words,
            "model": self.model,
            "audio_seconds": round(self.audio_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "real_time_factor": _round(self.real_time_factor),
            "audio_per_cpu_second": _round(self.audio_per_cpu_second),
        }


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def load_model(path: Path) -> Any:
    """The vosk model in a folder, loaded once per process. Always by path: vosk.Model(lang=...)
    would try to download one."""
    import vosk

    path = Path(path).resolve()
    with _models_lock:
        if path not in _models:
            vosk.SetLogLevel(-1)  # Kaldi's start-up chatter is not our log
            if not path.is_dir():
                raise FileNotFoundError(f"no model folder at {path}")
            _models[path] = vosk.Model(str(path))
        return _models[path]


def transcribe_file(
    path: Path,
    model_path: Path,
    *,
    model_name: str | None = None,
    on_progress: Callable[[], None] | None = None,
) -> Draft:
    """The draft of one WAV file. `on_progress` is called between chunks (a worker renews its
    lease there; it may raise to stop)."""
    from vosk import KaldiRecognizer

    wall, cpu = time.perf_counter(), time.thread_time()  # vosk runs in the calling thread
    try:
        wav = wave.open(str(path), "rb")  # noqa: SIM115 - closed by the `with` below
    except FileNotFoundError:
        raise AudioProblem("the recording's file is not there") from None
    except (wave.Error, EOFError) as exc:
        raise AudioProblem(f"not a readable WAV file: {exc}") from None
    with wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2 or wav.getcomptype() != "NONE":
            raise AudioProblem(
                f"needs 16-bit mono PCM; this file has {wav.getnchannels()} channel(s), "
                f"{8 * wav.getsampwidth()}-bit {wav.getcomptype()}"
            )
        rate = wav.getframerate()
        # Only now: a bad file must fail as itself, never look like a broken model.
        model = load_model(model_path)
        recognizer = KaldiRecognizer(model, rate)
        recognizer.SetWords(True)
        results: list[dict[str, Any]] = []
        frames = 0
        while True:
            data = wav.readframes(CHUNK_FRAMES)
            if not data:
                break
            frames += len(data) // 2
            if recognizer.AcceptWaveform(data):
                results.append(json.loads(recognizer.Result()))
            if on_progress is not None:
                on_progress()
        results.append(json.loads(recognizer.FinalResult()))
    words = [
        {
            "word": w["word"],
            "start": round(float(w["start"]), 2),
            "end": round(float(w["end"]), 2),
            "conf": round(float(w["conf"]), 3),
        }
        for result in results
        for w in result.get("result", [])
    ]
    text = " ".join(r["text"] for r in results if r.get("text"))
    return Draft(
        text=text,
        words=words,
        model=model_name or Path(model_path).name,
        audio_seconds=frames / rate if rate else 0.0,
        wall_seconds=time.perf_counter() - wall,
        cpu_seconds=time.thread_time() - cpu,
    )
